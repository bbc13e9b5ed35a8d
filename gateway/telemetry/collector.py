"""Per-process telemetry: Prometheus counters and per-minute latency histograms.

Fed by the recorder's writer thread with each batch of records (`observe`), so the event
loop does no work for it beyond the recorder's queue append. Increments collect in
`pending` dicts; `publish()` hands them to the sink, which aggregates every gateway process
of the deployment: Redis hashes when REDIS_URL is set, per-process files under DATA_DIR
otherwise (gateway/telemetry/sinks.py). A daemon thread publishes every second; readers
(/metrics, /api/telemetry/summary) publish their own process's pending increments first.

Series keys are `(name, ((label, value), ...))`; live keys are
`(minute, provider, kind, bucket)` with kind "lat" (end-to-end latency of successful
requests) or "ttft" (time to first byte of successful streams).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .histogram import bucket_of

if TYPE_CHECKING:
    from gateway.recorder import Record

    from .sinks import Sink

log = logging.getLogger(__name__)

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]
LiveKey = tuple[int, str, str, int]

PUBLISH_INTERVAL = 1.0
HEARTBEAT_INTERVAL = 5.0
# Prometheus histogram bounds in seconds (coarse: few series per label set).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
HISTOGRAMS = {
    "omniroute_request_duration_seconds": DURATION_BUCKETS,
    "omniroute_ttfb_seconds": DURATION_BUCKETS,
    "omniroute_gateway_overhead_seconds": OVERHEAD_BUCKETS,
}
TOKEN_TYPES = ("prompt", "completion", "cached", "cache_creation", "reasoning")


# The `le` label of each bucket index (the last one is +Inf).
LE_LABELS = {name: [*(repr(b) for b in bounds), "+Inf"] for name, bounds in HISTOGRAMS.items()}


class Collector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()
        self.pending: dict[SeriesKey, float] = {}
        self.pending_live: dict[LiveKey, int] = {}
        self._sink: Sink | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_error = 0.0

    # -- writing (recorder thread) ---------------------------------------------------------

    def observe(self, records: Iterable[Record]) -> None:
        """Count a batch of finished requests. Never raises: telemetry must not cost records."""
        try:
            self._observe(records)
        except Exception:
            log.exception("Telemetry could not count a batch of records")
        self.start()

    def _observe(self, records: Iterable[Record]) -> None:
        # Sums per label set first, series keys once per batch: ~4 µs per record instead of ~25.
        usage: dict[tuple[str, str, int], _Usage] = {}
        timings: dict[tuple[str, str], _Timing] = {}
        live: dict[LiveKey, int] = {}
        for r in records:
            # An unresolved request's model is whatever the client sent: not a label.
            provider, model = (r.provider, r.model) if r.provider else ("", "")
            group = usage.get((provider, model, r.status_code))
            if group is None:
                group = usage[(provider, model, r.status_code)] = _Usage()
            group.add(r)
            _timing(timings, "omniroute_request_duration_seconds", provider).add(r.latency_ms)
            if r.ttfb_ms is not None:
                _timing(timings, "omniroute_ttfb_seconds", provider).add(r.ttfb_ms)
            if r.upstream_ms > 0:
                overhead = max(0.0, r.latency_ms - r.upstream_ms)
                _timing(timings, "omniroute_gateway_overhead_seconds", provider).add(overhead)
            if provider and 200 <= r.status_code < 400:
                minute = int(r.created_at // 60)
                key = (minute, provider, "lat", bucket_of(r.latency_ms))
                live[key] = live.get(key, 0) + 1
                if r.stream and r.ttfb_ms is not None:
                    key = (minute, provider, "ttft", bucket_of(r.ttfb_ms))
                    live[key] = live.get(key, 0) + 1
        counters = _usage_series(usage)
        for (name, provider), timing in timings.items():
            timing.series(counters, name, (("provider", provider),))
        with self._lock:
            _merge(self.pending, counters)
            _merge(self.pending_live, live)

    # -- publishing ------------------------------------------------------------------------

    @property
    def sink(self) -> Sink:
        if self._sink is None:
            from .sinks import make_sink

            self._sink = make_sink()
        return self._sink

    def publish(self, *, heartbeat: bool = False) -> None:
        """Hand the pending increments to the sink; kept for the next try if it fails."""
        with self._publish_lock:
            with self._lock:
                counters, live = self.pending, self.pending_live
                self.pending, self.pending_live = {}, {}
            if not counters and not live and not heartbeat:
                return
            try:
                self.sink.push(counters, live)
            except Exception as exc:
                with self._lock:
                    _merge(self.pending, counters)
                    _merge(self.pending_live, live)
                if time.monotonic() - self._last_error > 60:
                    self._last_error = time.monotonic()
                    log.warning("Telemetry could not be published (kept for the next try): %s", exc)
                raise

    def publish_quietly(self) -> None:
        """publish() for readers: a failure (logged, increments kept) must not stop the read."""
        with contextlib.suppress(Exception):
            self.publish()

    def start(self) -> None:
        """Start the publishing thread (idempotent)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="omniroute-telemetry", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Stop the thread and publish what is left (graceful shutdown)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(5)
        self.publish_quietly()
        with contextlib.suppress(Exception):
            self.sink.leave()

    def _run(self) -> None:
        beat = 0.0
        while not self._stop.wait(PUBLISH_INTERVAL):
            now = time.monotonic()
            heartbeat = now - beat >= HEARTBEAT_INTERVAL
            try:
                self.publish(heartbeat=heartbeat)
                if heartbeat:
                    beat = now
            except Exception:
                pass  # logged by publish, retried next second

    def reset_for_tests(self) -> None:
        """Forget every process's telemetry of this deployment, and this process's pending."""
        with self._publish_lock:
            with self._lock:
                self.pending, self.pending_live = {}, {}
            self.sink.clear()


class _Usage:
    """Requests and usage of one (provider, model, status) in a batch; quacks like a
    Record for usage.pricing.cost_of (cost is linear in the counts)."""

    __slots__ = ("requests", *(f"{t}_tokens" for t in TOKEN_TYPES), "images", "audio_seconds")

    def __init__(self) -> None:
        self.requests = 0
        self.prompt_tokens = self.completion_tokens = self.cached_tokens = 0
        self.cache_creation_tokens = self.reasoning_tokens = self.images = 0
        self.audio_seconds = 0.0

    def add(self, r: Record) -> None:
        self.requests += 1
        self.prompt_tokens += r.prompt_tokens
        self.completion_tokens += r.completion_tokens
        self.cached_tokens += r.cached_tokens
        self.cache_creation_tokens += r.cache_creation_tokens
        self.reasoning_tokens += r.reasoning_tokens
        self.images += r.images
        self.audio_seconds += r.audio_seconds


def _usage_series(usage: dict[tuple[str, str, int], _Usage]) -> dict[SeriesKey, float]:
    from usage.pricing import cost_of, price_table

    prices = price_table()
    out: dict[SeriesKey, float] = {}
    for (provider, model, status), group in usage.items():
        pm: Labels = (("provider", provider), ("model", model))
        _add(out, ("omniroute_requests_total", (*pm, ("status", str(status)))), group.requests)
        if status >= 400:
            _add(out, ("omniroute_errors_total", (*pm, ("status", str(status)))), group.requests)
        for kind in TOKEN_TYPES:
            tokens = getattr(group, f"{kind}_tokens")
            if tokens:
                _add(out, ("omniroute_tokens_total", (*pm, ("type", kind))), tokens)
        if provider:
            cost = cost_of(provider=provider, model=model, usage=group, prices=prices)
            if cost:
                _add(out, ("omniroute_cost_usd_total", pm), float(cost))
    return out


class _Timing:
    """One Prometheus histogram's observations of a batch: counts per bucket, and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def add(self, ms: float) -> None:
        seconds = ms / 1000
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.total += seconds

    def series(self, out: dict[SeriesKey, float], name: str, labels: Labels) -> None:
        les = LE_LABELS[name]
        for index, count in enumerate(self.counts):
            if count:
                _add(out, (f"{name}_bucket", (*labels, ("le", les[index]))), count)
        _add(out, (f"{name}_sum", labels), self.total)


def _timing(timings: dict[tuple[str, str], _Timing], name: str, provider: str) -> _Timing:
    timing = timings.get((name, provider))
    if timing is None:
        timing = timings[(name, provider)] = _Timing(HISTOGRAMS[name])
    return timing


def _add(out: dict[SeriesKey, float], key: SeriesKey, value: float) -> None:
    out[key] = out.get(key, 0.0) + value


def _merge(total: dict[Any, Any], more: dict[Any, Any]) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0) + value


collector = Collector()
