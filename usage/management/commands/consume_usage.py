"""`manage.py consume_usage [--once]`: the Redis usage stream's consumer without Celery."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from usage.services import usage_stream_consume


class Command(BaseCommand):
    help = (
        "Write the records of the Redis usage stream to the database (what the Celery task "
        "usage.tasks.consume_usage_stream does every second). Runs until stopped, or once with --once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Consume what is in the stream now, then exit.")
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between runs (default 1).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not (settings.REDIS_URL and settings.USAGE_STREAM):
            raise CommandError("No usage stream: REDIS_URL is not set (or USAGE_STREAM is off).")
        while True:
            written = usage_stream_consume()
            if options["once"]:
                self.stdout.write(f"{written} usage records written")
                return
            time.sleep(options["interval"])
