"""`manage.py ensure_admin`: the superuser `admin` exists; its password comes from
INITIAL_PASSWORD until an operator changes it (`--reset` sets it from INITIAL_PASSWORD again)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from gateway.services import admin_user_ensure

USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Create the superuser 'admin' with the password from INITIAL_PASSWORD, or keep it up to date with "
        "INITIAL_PASSWORD while nobody has changed its password since. Idempotent."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Set the password from INITIAL_PASSWORD even if an operator has changed it",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = settings.INITIAL_PASSWORD
        if not password:
            self.stderr.write(
                "INITIAL_PASSWORD is not set: operator login (dashboard, admin, /api sessions) is unavailable "
                "until it is set and `manage.py ensure_admin` runs again. Admin-scope API keys still work "
                "(`manage.py create_api_key --name NAME --scope admin`)."
            )
            return
        outcome = admin_user_ensure(username=USERNAME, password=password, reset=options["reset"])
        if outcome == "kept":
            self.stdout.write(
                f"Superuser '{USERNAME}': kept its current password (changed since it was set from INITIAL_PASSWORD); "
                "`manage.py ensure_admin --reset` sets it from INITIAL_PASSWORD"
            )
        else:
            self.stdout.write(f"Superuser '{USERNAME}': {outcome}")
