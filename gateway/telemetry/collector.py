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


def _le(bounds: tuple[float, ...], seconds: float) -> str:
    index = bisect_left(bounds, seconds)
    return "+Inf" if index == len(bounds) else repr(bounds[index])


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
        from usage.pricing import cost_of, price_table

        prices = price_table()
        counters: dict[SeriesKey, float] = {}
        live: dict[LiveKey, int] = {}

        def add(name: str, labels: Labels, value: float = 1.0) -> None:
            key = (name, labels)
            counters[key] = counters.get(key, 0.0) + value

        def observe_seconds(name: str, labels: Labels, seconds: float) -> None:
            add(f"{name}_bucket", (*labels, ("le", _le(HISTOGRAMS[name], seconds))))
            add(f"{name}_sum", labels, seconds)

        for r in records:
            # An unresolved request's model is whatever the client sent: not a label.
            provider, model = (r.provider, r.model) if r.provider else ("", "")
            pm: Labels = (("provider", provider), ("model", model))
            add("omniroute_requests_total", (*pm, ("status", str(r.status_code))))
            if r.status_code >= 400:
                add("omniroute_errors_total", (*pm, ("status", str(r.status_code))))
            for kind in TOKEN_TYPES:
                tokens = getattr(r, f"{kind}_tokens")
                if tokens:
                    add("omniroute_tokens_total", (*pm, ("type", kind)), tokens)
            if provider:
                cost = cost_of(provider=provider, model=model, usage=r, prices=prices)
                if cost:
                    add("omniroute_cost_usd_total", pm, float(cost))
            p: Labels = (("provider", provider),)
            observe_seconds("omniroute_request_duration_seconds", p, r.latency_ms / 1000)
            if r.ttfb_ms is not None:
                observe_seconds("omniroute_ttfb_seconds", p, r.ttfb_ms / 1000)
            if r.upstream_ms > 0:
                observe_seconds("omniroute_gateway_overhead_seconds", p, max(0.0, r.latency_ms - r.upstream_ms) / 1000)
            if provider and 200 <= r.status_code < 400:
                minute = int(r.created_at // 60)
                key = (minute, provider, "lat", bucket_of(r.latency_ms))
                live[key] = live.get(key, 0) + 1
                if r.stream and r.ttfb_ms is not None:
                    key = (minute, provider, "ttft", bucket_of(r.ttfb_ms))
                    live[key] = live.get(key, 0) + 1
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
        with contextlib.suppress(Exception):  # logged by publish
            self.publish()

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


def _merge(total: dict[Any, Any], more: dict[Any, Any]) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0) + value


collector = Collector()
