"""Celery tasks of the usage app: thin, each calls one service. Scheduled in omniroute_site/celery.py."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .services import usage_purge, usage_rollup, usage_rollup_purge, usage_stream_consume


@shared_task(ignore_result=True)
def usage_purge_old() -> int:
    """Delete usage records and request logs older than USAGE_RETENTION_DAYS."""
    return usage_purge(older_than_days=settings.USAGE_RETENTION_DAYS)


@shared_task(ignore_result=True)
def consume_usage_stream() -> int:
    """Write the Redis usage stream's records to the database (every second, by beat).

    Bounded to a few seconds per run so that runs do not pile up; overlapping runs on
    several workers share the stream through its consumer group.
    """
    if not (settings.REDIS_URL and settings.USAGE_STREAM):
        return 0
    return usage_stream_consume(max_seconds=5.0)


@shared_task(ignore_result=True)
def usage_rollup_hours() -> int:
    """Roll up the completed hours (idempotent: hours are recomputed, never added to)."""
    return usage_rollup()


@shared_task(ignore_result=True)
def usage_rollup_purge_old() -> int:
    """Delete hourly roll-ups older than ROLLUP_RETENTION_DAYS (kept longer than records)."""
    return usage_rollup_purge(older_than_days=settings.ROLLUP_RETENTION_DAYS)
