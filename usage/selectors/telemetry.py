"""Latency telemetry per provider, from the usage records in the database.

Percentiles are computed in Python (portable across SQLite and PostgreSQL) over at most
SAMPLE_LIMIT of each provider's most recent successful requests in the window; `count` is
the exact number. An in-memory live window in each gateway process, and hourly roll-ups for
long windows, come later with the data plane's telemetry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, QuerySet
from django.utils import timezone

from ..models import UsageRecord

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
SAMPLE_LIMIT = 10_000


@dataclass(frozen=True)
class ProviderLatency:
    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    ttft_p50: float | None


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of sorted `values`; None when empty."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return round(values[rank - 1], 3)


def _recent(qs: QuerySet[UsageRecord], column: str) -> list[float]:
    values = qs.order_by("-created_at").values_list(column, flat=True)[:SAMPLE_LIMIT]
    return sorted(v for v in values if v is not None)


def telemetry_summary(*, window: timedelta, now: datetime | None = None) -> dict[str, ProviderLatency]:
    """Latency (ms, end to end) and time to first token (ms, streams) of successful requests
    per provider over the last `window`."""
    since = (now or timezone.now()) - window
    ok = UsageRecord.objects.filter(created_at__gte=since, status_code__gte=200, status_code__lt=400).exclude(
        provider=""
    )
    counts = ok.order_by().values("provider").annotate(count=Count("id")).order_by("provider")
    summary: dict[str, ProviderLatency] = {}
    for row in counts:
        mine = ok.filter(provider=row["provider"])
        latencies = _recent(mine, "latency_ms")
        ttfts = _recent(mine.filter(stream=True, ttfb_ms__isnull=False), "ttfb_ms")
        summary[row["provider"]] = ProviderLatency(
            count=row["count"],
            p50=percentile(latencies, 50),
            p95=percentile(latencies, 95),
            p99=percentile(latencies, 99),
            ttft_p50=percentile(ttfts, 50),
        )
    return summary
