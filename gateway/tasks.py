"""Celery tasks of the gateway app: thin, each calls one service. Scheduled in omniroute_site/celery.py."""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True)
def cache_purge_expired() -> int:
    """Delete expired response-cache rows (the database tier; Redis expires its own keys)."""
    from .cache_db import purge_expired

    return purge_expired()
