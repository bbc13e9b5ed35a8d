"""Retention: usage records and request logs older than the configured number of days are deleted."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone

from gateway.api.errors import InvalidInput

from ..models import RequestLog, UsageRecord

PURGE_BATCH_SIZE = 5000


def usage_purge(*, older_than_days: int, batch_size: int = PURGE_BATCH_SIZE) -> int:
    """Delete usage records and request logs created more than `older_than_days` days ago;
    returns how many rows.

    In batches of `batch_size` rows, each its own short transaction, so that the recorder's
    writes are never held up behind one long delete.
    """
    if older_than_days < 1:
        raise InvalidInput("older_than_days must be at least 1", field="older_than_days")
    cutoff = timezone.now() - timedelta(days=older_than_days)
    return sum(_purge(model, cutoff, batch_size) for model in (UsageRecord, RequestLog))


def _purge(model: type[models.Model], cutoff: datetime, batch_size: int) -> int:
    deleted = 0
    while True:
        old = model._default_manager.filter(created_at__lt=cutoff).order_by()
        ids = list(old.values_list("id", flat=True)[:batch_size])
        if not ids:
            return deleted
        count, _ = model._default_manager.filter(id__in=ids).delete()
        deleted += count
