"""Celery tasks of the usage app: thin, each calls one service. Scheduled in omniroute_site/celery.py."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .services import usage_purge, usage_rollup, usage_rollup_purge


@shared_task(ignore_result=True)
def usage_purge_old() -> int:
    """Delete usage records older than USAGE_RETENTION_DAYS."""
    return usage_purge(older_than_days=settings.USAGE_RETENTION_DAYS)


@shared_task(ignore_result=True)
def usage_rollup_hours() -> int:
    """Roll up the completed hours (idempotent: hours are recomputed, never added to)."""
    return usage_rollup()


@shared_task(ignore_result=True)
def usage_rollup_purge_old() -> int:
    """Delete hourly roll-ups older than ROLLUP_RETENTION_DAYS (kept longer than records)."""
    return usage_rollup_purge(older_than_days=settings.ROLLUP_RETENTION_DAYS)
