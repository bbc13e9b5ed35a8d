"""Hourly roll-ups of the usage records (UsageRollup), for long telemetry windows.

Each hour is recomputed whole, inside one transaction that first deletes the hour's rows:
running the roll-up again (or over an hour that got late records) replaces, never adds.
Concurrent runs are serialized by a PostgreSQL advisory lock (SQLite serializes writers).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from gateway.telemetry.histogram import bucket_of, dense

from ..models import UsageRecord, UsageRollup

log = logging.getLogger(__name__)
HOUR = timedelta(hours=1)
# Completed hours recomputed on every run, for records written late (recorder batches, a
# queue consumer catching up).
RECOMPUTE_HOURS = 2
_LOCK_ID = 0x6F6D6E69  # "omni": the advisory lock of the roll-up on PostgreSQL
_FIELDS = (
    "provider",
    "model",
    "api_key_id",
    "connection_id",
    "status_code",
    "stream",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "cost_usd",
    "latency_ms",
    "ttfb_ms",
)
_TOKENS = ("prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens", "reasoning_tokens")


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class _Group:
    requests: int = 0
    errors: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_TOKENS, 0))
    cost: Decimal = Decimal(0)
    latency_sum: float = 0.0
    latency: dict[int, int] = field(default_factory=dict)
    ttft: dict[int, int] = field(default_factory=dict)


def _groups(start: datetime) -> dict[tuple[str, str, int | None, int | None], _Group]:
    rows = (
        UsageRecord.objects.filter(created_at__gte=start, created_at__lt=start + HOUR)
        .order_by()
        .values_list(*_FIELDS)
        .iterator(chunk_size=5000)
    )
    groups: dict[tuple[str, str, int | None, int | None], _Group] = {}
    for row in rows:
        values = dict(zip(_FIELDS, row, strict=True))
        group = groups.setdefault((row[0], row[1], row[2], row[3]), _Group())
        group.requests += 1
        for name in _TOKENS:
            group.tokens[name] += values[name]
        group.cost += values["cost_usd"] or 0
        if not 100 <= values["status_code"] < 400:  # an error, or a request that got no status
            group.errors += 1
            continue
        group.latency_sum += values["latency_ms"]
        index = bucket_of(values["latency_ms"])
        group.latency[index] = group.latency.get(index, 0) + 1
        if values["stream"] and values["ttfb_ms"] is not None:
            index = bucket_of(values["ttfb_ms"])
            group.ttft[index] = group.ttft.get(index, 0) + 1
    return groups


def usage_rollup_hour(*, start: datetime) -> int:
    """Recompute the roll-up rows of the hour starting at `start`; returns how many."""
    start = hour_floor(start)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_ID])
        UsageRollup.objects.filter(hour=start).delete()
        rows = [
            UsageRollup(
                hour=start,
                provider=provider,
                model=model,
                api_key_id=key_id,
                connection_id=connection_id,
                requests=g.requests,
                errors=g.errors,
                cost_usd=g.cost,
                latency_histogram=dense(g.latency),
                latency_ms_sum=round(g.latency_sum, 3),
                ttft_histogram=dense(g.ttft),
                **g.tokens,
            )
            for (provider, model, key_id, connection_id), g in _groups(start).items()
        ]
        UsageRollup.objects.bulk_create(rows, batch_size=500)
    return len(rows)


def rollup_covered_until() -> datetime | None:
    """The end of the newest rolled-up hour (None before the first roll-up)."""
    newest = UsageRollup.objects.order_by("-hour").values_list("hour", flat=True).first()
    return newest + HOUR if newest else None


def _next_hour_with_records(since: datetime | None, before: datetime) -> datetime | None:
    records = UsageRecord.objects.filter(created_at__lt=before)
    if since is not None:
        records = records.filter(created_at__gte=since)
    first = records.order_by("created_at").values_list("created_at", flat=True).first()
    return hour_floor(first) if first else None


def usage_rollup(*, now: datetime | None = None) -> int:
    """Roll up every completed hour not rolled up yet, plus the last RECOMPUTE_HOURS again.

    Hours without records are skipped (a jump to the next record's hour); the first run
    rolls up all the history there is. Returns the number of hours computed.
    """
    end = hour_floor(now or timezone.now())
    recent = end - RECOMPUTE_HOURS * HOUR
    covered = rollup_covered_until()
    cursor = recent
    if covered is None or covered < recent:
        cursor = _next_hour_with_records(covered, recent) or recent
    hours = 0
    while cursor < end:
        usage_rollup_hour(start=cursor)
        hours += 1
        cursor += HOUR
        if cursor < recent:
            cursor = _next_hour_with_records(cursor, recent) or recent
    log.info("Usage roll-up: %d hours computed up to %s", hours, end)
    return hours


def usage_rollup_purge(*, older_than_days: int) -> int:
    """Delete roll-ups of hours older than `older_than_days` days; returns how many."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = UsageRollup.objects.filter(hour__lt=cutoff).delete()
    return deleted
