"""The usage recorder: one record per /v1 request, written in batches off the request path.

The event loop only appends to a thread-safe queue; a writer thread drains it, writes
batches (multi-row INSERTs, usage.services.records) and logs one line per request. The queue
is not bounded, so the writer must outpace the event loop: a writer that fell behind takes
everything already queued (up to CATCH_UP_FACTOR batches) into one transaction and one
telemetry pass, and catches up instead of holding a growing backlog of records in memory.
`flush()` waits until everything queued so far is in the database; `stop()` flushes and
ends the thread (called on graceful shutdown and at interpreter exit).

With the Redis usage stream (gateway.usage_stream) records go to Redis instead, and the
queue only takes what falls back while Redis is unavailable. `flush()` and `stop()` then
also push what is pending and run the stream's consumer once, so that the database holds
every record when they return, as without Redis.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from .options.effective import log_requests_enabled
from .telemetry.collector import collector

log = logging.getLogger("omniroute.recorder")
request_log = logging.getLogger("omniroute.requests")


@dataclass(slots=True)
class Record:
    request_id: str
    endpoint: str
    status_code: int
    api_key_id: int | None = None
    provider: str = ""
    model: str = ""
    connection_id: int | None = None
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0
    images: int = 0
    audio_seconds: float = 0.0
    client_format: str = ""
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    # Time spent in upstream attempts (ms); latency minus this is the gateway's own overhead.
    upstream_ms: float = 0.0
    # When the attempt in progress started (ms into the request); None between attempts.
    attempt_started_ms: float | None = None
    error: str = ""
    created_at: float = field(default_factory=time.time)
    # The request log's bodies and headers (gateway.usage_capture.Capture, or its dict once it went
    # through the usage stream); None when bodies are not logged.
    body_log: Any = None
    # Already handed to the usage stream (before the response's last bytes): not again.
    published: bool = False

    def attempt_end(self, now_ms: float) -> None:
        """Count the attempt in progress into `upstream_ms`, once: the usage stream closes it
        when the record travels (its latency is frozen then), the router when it returns."""
        if self.attempt_started_ms is not None:
            self.upstream_ms += now_ms - self.attempt_started_ms
            self.attempt_started_ms = None


class _Observed(list["Record"]):
    """Records already written elsewhere (the Redis usage stream): counted for telemetry and
    logged by the writer thread, not written again."""


class _Marker:
    """Put in the queue by flush(); set once every record before it is written."""

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()
# A writer that fell behind takes up to this many times RECORDER_BATCH_SIZE records at once.
CATCH_UP_FACTOR = 10


class Recorder:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.written = 0
        self.failed = 0
        self.batches = 0  # transactions written: fewer than records / RECORDER_BATCH_SIZE when catching up

    def record(self, record: Record) -> None:
        """Called on the event loop when a request ends (a no-op if already published)."""
        if record.published:
            return
        from .usage_stream import current_publisher, usage_stream_enabled

        if usage_stream_enabled() and (publisher := current_publisher()) is not None:
            publisher.add(record)
            return
        self.record_locally(record)

    def record_locally(self, record: Record) -> None:
        """Through the writer thread, whatever the configuration."""
        if self._thread is None:
            self._start()
        self._queue.put(record)

    def observe_only(self, records: list[Record]) -> None:
        """Records that went through the usage stream: the writer thread counts them in the
        live telemetry and /metrics (off the event loop) but does not write them."""
        if self._thread is None:
            self._start()
        self._queue.put(_Observed(records))

    def flush(self, timeout: float = 30.0) -> bool:
        done = self._flush_local(timeout)
        return self._consume_stream(timeout) and done

    def _flush_local(self, timeout: float) -> bool:
        if self._thread is None:
            return True
        marker = _Marker()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        self._consume_stream(timeout)  # first: what it drains may fall back to the thread
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
            self._thread = None

    def _consume_stream(self, timeout: float) -> bool:
        """Push what the event loops hold, then write the stream's entries (Redis mode only)."""
        from .usage_stream import publishers_drain, usage_stream_enabled

        if not usage_stream_enabled():
            return True
        publishers_drain(timeout)
        # Records that fell back to the writer thread while draining.
        self._flush_local(timeout)
        from usage.services import usage_stream_consume

        try:
            usage_stream_consume(max_seconds=timeout)
        except Exception:
            log.exception("Consuming the usage stream failed; its entries stay for the next consumer")
            return False
        return True

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="omniroute-recorder", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        batch_size = settings.RECORDER_BATCH_SIZE
        interval = settings.RECORDER_FLUSH_INTERVAL
        while True:
            item = self._queue.get()
            batch: list[Record] = []
            observed: list[Record] = []
            markers: list[_Marker] = []
            stop = False
            deadline = time.monotonic() + interval
            while True:
                if item is _STOP:
                    stop = True
                elif isinstance(item, _Marker):
                    markers.append(item)
                elif isinstance(item, Record):
                    batch.append(item)
                elif isinstance(item, _Observed):
                    observed.extend(item)
                size = len(batch) + len(observed)
                if stop or markers or size >= batch_size * CATCH_UP_FACTOR:
                    break
                if size >= batch_size:
                    # Behind: what is already queued goes into this batch too (one transaction
                    # and one telemetry pass for all of it), so the writer catches up.
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if batch:
                collector.observe(batch)
                self._write(batch)
            if observed:
                collector.observe(observed)
                self._log(observed)
            for marker in markers:
                marker.done.set()
            if stop:
                self._drain_rest()
                close_old_connections()
                return

    def _drain_rest(self) -> None:
        rest: list[Record] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Record):
                rest.append(item)
            elif isinstance(item, _Observed):
                collector.observe(item)
                self._log(item)
            elif isinstance(item, _Marker):
                item.done.set()
        if rest:
            collector.observe(rest)
            self._write(rest)

    def _write(self, batch: list[Record]) -> None:
        from usage.services import usage_record_batch

        for attempt in range(3):
            try:
                usage_record_batch(records=batch)
                self.written += len(batch)
                self.batches += 1
                break
            except Exception:
                log.exception("Writing %d usage records failed (attempt %d)", len(batch), attempt + 1)
                close_old_connections()
                time.sleep(0.2 * (attempt + 1))
        else:
            self.failed += len(batch)
        self._log(batch)

    def _log(self, batch: list[Record]) -> None:
        # One line per request costs the event loop GIL time at thousands of requests per
        # second; the usage records are the request log, these lines are opt-in.
        if log_requests_enabled() and request_log.isEnabledFor(logging.INFO):
            for r in batch:
                request_log.info(
                    "%s %s %s/%s status=%d tokens=%d/%d latency=%.1fms%s",
                    r.request_id,
                    r.endpoint,
                    r.provider or "-",
                    r.model or "-",
                    r.status_code,
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.latency_ms,
                    f" error={r.error[:200]!r}" if r.error else "",
                )


recorder = Recorder()
atexit.register(recorder.stop)
