"""Latency telemetry per provider over a window: live minutes, hourly roll-ups, records.

- Short windows (`5m`, `15m`, `1h`): the per-minute histograms every gateway process keeps
  and shares (gateway.telemetry; through Redis, or DATA_DIR files without Redis): the
  current minute and the N-1 before it.
- Long windows (`6h`, `24h`, `7d`, `30d`): the current hour and the N-1 before it. Completed
  hours come from the hourly roll-ups (UsageRollup); hours after the newest roll-up come
  from the live minutes when they reach back that far, else from the usage records.

Everything is a histogram in the fixed buckets of gateway.telemetry.histogram, so the
percentiles are estimates within one bucket (~9 %) of the exact nearest-rank value.
Only successful requests (status < 400) with a provider count; time to first token only
for streamed ones.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from gateway.telemetry import collector
from gateway.telemetry.histogram import add_into, bucket_of, estimate
from gateway.telemetry.sinks import LIVE_KEEP_MINUTES, Live

from ..models import UsageRecord, UsageRollup

LIVE_WINDOWS = {"5m": 5, "15m": 15, "1h": 60}  # minutes
ROLLUP_WINDOWS = {"6h": 6, "24h": 24, "7d": 7 * 24, "30d": 30 * 24}  # hours
WINDOWS = [*LIVE_WINDOWS, *ROLLUP_WINDOWS]
DEFAULT_WINDOW = "1h"


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50: float | None
    p95: float | None
    p99: float | None

    @classmethod
    def of(cls, counts: dict[int, int]) -> Percentiles:
        return cls(sum(counts.values()), estimate(counts, 50), estimate(counts, 95), estimate(counts, 99))


@dataclass(frozen=True)
class ProviderLatency:
    latency: Percentiles
    ttft: Percentiles


@dataclass(frozen=True)
class TelemetrySummary:
    window: str
    source: str
    providers: dict[str, ProviderLatency]


def percentile(values: list[float], pct: float) -> float | None:
    """Exact nearest-rank percentile of sorted `values` (what the estimates approximate)."""
    if not values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(values)))
    return round(values[rank - 1], 3)


def _live(first_minute: int, last_minute: int) -> Live:
    collector.publish_quietly()  # this process's latest requests, before reading everyone's
    return collector.sink.live(first_minute, last_minute)


def _records(start: datetime, end: datetime) -> Live:
    out: Live = {}
    ok = UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end, status_code__lt=400).exclude(provider="")
    rows = ok.order_by().values_list("provider", "latency_ms", "stream", "ttfb_ms").iterator(chunk_size=5000)
    for provider, latency, stream, ttfb in rows:
        add_into(out.setdefault((provider, "lat"), {}), {bucket_of(latency): 1})
        if stream and ttfb is not None:
            add_into(out.setdefault((provider, "ttft"), {}), {bucket_of(ttfb): 1})
    return out


def _rollups(start: datetime, end: datetime) -> Live:
    out: Live = {}
    rows = UsageRollup.objects.filter(hour__gte=start, hour__lt=end).exclude(provider="").order_by()
    for provider, latency, ttft in rows.values_list("provider", "latency_histogram", "ttft_histogram"):
        add_into(out.setdefault((provider, "lat"), {}), latency)
        add_into(out.setdefault((provider, "ttft"), {}), ttft)
    return out


def _long(hours: int, now: datetime) -> Live:
    from usage.services import rollup_covered_until

    current = now.replace(minute=0, second=0, microsecond=0)
    start = current - timedelta(hours=hours - 1)
    covered = min(max(rollup_covered_until() or start, start), current)
    parts = [_rollups(start, covered)]
    oldest_live = datetime.fromtimestamp((int(now.timestamp() // 60) - LIVE_KEEP_MINUTES + 10) * 60, tz=UTC)
    if covered < oldest_live:
        parts.append(_records(covered, now))
    else:
        parts.append(_live(int(covered.timestamp() // 60), int(now.timestamp() // 60)))
    total: Live = {}
    for part in parts:
        for key, counts in part.items():
            add_into(total.setdefault(key, {}), counts)
    return total


def telemetry_summary(*, window: str, now: datetime | None = None) -> TelemetrySummary:
    """Latency (end to end) and time to first token, in ms, per provider over `window`."""
    if window in LIVE_WINDOWS:
        minute = int((now.timestamp() if now else time.time()) // 60)
        source, histograms = "live", _live(minute - LIVE_WINDOWS[window] + 1, minute)
    else:
        source, histograms = "rollups", _long(ROLLUP_WINDOWS[window], now or timezone.now())
    providers = {
        provider: ProviderLatency(Percentiles.of(counts), Percentiles.of(histograms.get((provider, "ttft"), {})))
        for (provider, kind), counts in sorted(histograms.items())
        if kind == "lat" and any(counts.values())
    }
    return TelemetrySummary(window=window, source=source, providers=providers)
