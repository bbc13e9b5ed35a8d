"""The producer side of the Redis usage stream (REDIS_URL set and USAGE_STREAM on).

A record is durable once it is in the stream: `publish_durably` (awaited before a
response's last bytes, see gateway.usage_capture) returns when its XADD is done. The records of
one event-loop tick go in one stream entry (one XADD: a JSON array of records), and while
one XADD is in flight the next batch collects, so under load a request waits for about one
round trip and Redis sees a few commands per millisecond, not one per request. (One entry
per record, even pipelined, cost ~8x more CPU in redis-py: ~80 µs against ~10 µs a record.)

If Redis fails, the batch and the records after it go to the in-process recorder (the
writer thread and the database, as without Redis) for USAGE_STREAM_RETRY_SECONDS; the
outage is logged once. Requests never fail because of the usage stream.

The consumer (usage.services.stream, run by Celery) writes the entries to the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import weakref
from typing import Any

import orjson
from django.conf import settings

from .recorder import Record, recorder
from .redis_client import get_async_redis
from .snapshot import Snapshot, get_snapshot
from .state import state_namespace

log = logging.getLogger(__name__)

GROUP = "omniroute-usage"
_FIELDS = tuple(
    f.name for f in dataclasses.fields(Record) if f.name not in ("body_log", "published", "attempt_started_ms")
)
_FIELD_SET = frozenset(_FIELDS)


def usage_stream_enabled() -> bool:
    return bool(settings.REDIS_URL) and settings.USAGE_STREAM


def stream_key() -> str:
    """Namespaced like the shared state (gateway.state): one deployment, one stream."""
    return f"omniroute:usage:{state_namespace()}:stream"


def _as_dict(record: Record) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(record, name) for name in _FIELDS}
    log_ = record.body_log
    if log_ is not None:
        data["body_log"] = log_ if isinstance(log_, dict) else log_.as_dict()
    return data


def records_encode(records: list[Record]) -> bytes:
    """The value of one stream entry's field `r`."""
    return orjson.dumps([_as_dict(r) for r in records])


def records_decode(payload: bytes) -> list[Record]:
    """The records of a stream entry; fields this version does not know are ignored."""
    records = []
    for data in orjson.loads(payload):
        record = Record(**{k: v for k, v in data.items() if k in _FIELD_SET})
        record.body_log = data.get("body_log")
        records.append(record)
    return records


class StreamPublisher:
    """One per event loop: one XADD per batch, one in flight at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: list[Record] = []
        self.waiter: asyncio.Future[None] | None = None
        self.writing: asyncio.Task[None] | None = None
        self.down_until = 0.0
        self.idle = asyncio.Event()
        self.idle.set()

    def add(self, record: Record) -> asyncio.Future[None] | None:
        """Queue `record`; the future resolves once it is in Redis (or fell back)."""
        record.published = True
        if self.down_until and time.monotonic() < self.down_until:
            recorder.record_locally(record)
            return None
        self.pending.append(record)
        if self.waiter is None:
            self.waiter = self.loop.create_future()
            self.idle.clear()
            if self.writing is None:
                self.loop.call_soon(self._next)
        return self.waiter

    def _next(self) -> None:
        if self.writing is not None or not self.pending:
            return
        batch, waiter = self.pending, self.waiter
        self.pending, self.waiter = [], None
        assert waiter is not None
        self.writing = self.loop.create_task(self._write(batch, waiter))

    async def _write(self, batch: list[Record], waiter: asyncio.Future[None]) -> None:
        try:
            no_log = no_log_key_ids(await get_snapshot())
            for record in batch:  # bodies of noLog keys never leave the process
                if record.body_log is not None and record.api_key_id in no_log:
                    record.body_log.suppressed = True
            await get_async_redis().xadd(stream_key(), {"r": records_encode(batch)})
            recorder.observe_only(batch)  # the writer thread still counts them for /metrics
            if self.down_until:
                log.warning("Redis is back: usage records go through the stream again")
                self.down_until = 0.0
        except Exception as exc:  # Redis down or slow: the records still get written
            if not self.down_until:
                log.error("Usage stream unavailable (%s); records go directly to the database", exc)
            self.down_until = time.monotonic() + settings.USAGE_STREAM_RETRY_SECONDS
            for record in batch:
                recorder.record_locally(record)
        finally:
            if not waiter.done():
                waiter.set_result(None)
            self.writing = None
            if self.pending:
                self._next()
            else:
                self.idle.set()

    async def drain(self) -> None:
        """Until everything queued so far is in Redis (or fell back)."""
        while not self.idle.is_set():
            await self.idle.wait()


_publishers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StreamPublisher] = weakref.WeakKeyDictionary()


def current_publisher() -> StreamPublisher | None:
    """The running loop's publisher; None outside an event loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    publisher = _publishers.get(loop)
    if publisher is None:
        publisher = _publishers[loop] = StreamPublisher(loop)
    return publisher


async def publish_durably(record: Record) -> None:
    publisher = current_publisher()
    assert publisher is not None
    done = publisher.add(record)
    if done is not None:
        # Shielded: a client leaving now must not cancel the batch other requests await.
        await asyncio.shield(done)


def publishers_drain(timeout: float) -> None:
    """From a thread that is not an event loop's: wait for every loop's pending records."""
    try:
        own = asyncio.get_running_loop()
    except RuntimeError:
        own = None
    for loop, publisher in list(_publishers.items()):
        if loop is own or loop.is_closed() or not loop.is_running():
            continue
        try:
            asyncio.run_coroutine_threadsafe(publisher.drain(), loop).result(timeout)
        except Exception:
            log.exception("Could not drain the usage stream publisher of a loop")


_no_log: tuple[Snapshot | None, frozenset[int]] = (None, frozenset())


def no_log_key_ids(snap: Snapshot) -> frozenset[int]:
    """Ids of the keys whose bodies are never logged, derived once per snapshot."""
    global _no_log
    if _no_log[0] is not snap:
        _no_log = (snap, frozenset(e.id for e in snap.keys_by_hash.values() if e.no_log))
    return _no_log[1]
