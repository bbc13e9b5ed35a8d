"""Celery tasks of the usage app: thin, each calls one service. Scheduled in omniroute_site/celery.py."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .services import usage_purge


@shared_task(ignore_result=True)
def usage_purge_old() -> int:
    """Delete usage records older than USAGE_RETENTION_DAYS."""
    return usage_purge(older_than_days=settings.USAGE_RETENTION_DAYS)
