"""`manage.py create_api_key --name NAME [--scope admin|inference]`: prints only the new key."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from gateway.api.errors import DomainError
from gateway.models import ApiKey
from gateway.services import api_key_create


class Command(BaseCommand):
    help = "Create a gateway API key and print it (once, on stdout, nothing else)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", required=True, help="A label to recognise the key by")
        parser.add_argument(
            "--scope",
            choices=[scope for scope, _ in ApiKey.SCOPES],
            default=ApiKey.SCOPE_INFERENCE,
            help="inference (the /v1 API, default) or admin (also the management API)",
        )

    def handle(self, *args: Any, name: str, scope: str, **options: Any) -> None:
        try:
            _, plain = api_key_create(name=name, scope=scope)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(plain)
