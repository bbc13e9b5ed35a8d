"""`manage.py ensure_admin`: the superuser `admin` exists with the password INITIAL_PASSWORD."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from gateway.services import admin_user_ensure

USERNAME = "admin"


class Command(BaseCommand):
    help = "Create or update the superuser 'admin' with the password from INITIAL_PASSWORD. Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        password = settings.INITIAL_PASSWORD
        if not password:
            self.stderr.write(
                "INITIAL_PASSWORD is not set: operator login (dashboard, admin, /api sessions) is unavailable "
                "until it is set and `manage.py ensure_admin` runs again. Admin-scope API keys still work "
                "(`manage.py create_api_key --name NAME --scope admin`)."
            )
            return
        outcome = admin_user_ensure(username=USERNAME, password=password)
        self.stdout.write(f"Superuser '{USERNAME}': {outcome}")
