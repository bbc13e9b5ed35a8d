"""The consumer side of the Redis usage stream: entries -> database rows, acknowledged only
after the commit.

Each entry holds the records of one gateway batch (gateway.usage_stream). Consumers read
through one consumer group (XREADGROUP), so several Celery workers share the work without
writing an entry twice. An entry is acknowledged and deleted (XACK + XDEL)
once its batch is committed: the stream holds only what is not yet in the database. A
consumer that dies between reading and acknowledging leaves its entries pending; after
USAGE_STREAM_CLAIM_IDLE_SECONDS another consumer takes them over (XAUTOCLAIM) and skips
those whose records are already stored (the dead consumer may have committed them).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings

from ..models import UsageRecord
from .records import usage_record_batch

if TYPE_CHECKING:
    from gateway.recorder import Record

log = logging.getLogger(__name__)
Entry = tuple[bytes, dict[bytes, bytes]]
# Entries per read: each holds one gateway batch (one event-loop tick, often tens of records).
ENTRIES_PER_READ = 20
IDLE_CONSUMER_MS = 24 * 3600 * 1000


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _ensure_group(client: redis.Redis, key: str, group: str) -> None:
    try:
        client.xgroup_create(key, group, id="0", mkstream=True)
    except redis.ResponseError as err:
        if "BUSYGROUP" not in str(err):
            raise


def usage_stream_consume(
    *,
    consumer: str | None = None,
    entries_per_read: int = ENTRIES_PER_READ,
    max_seconds: float = 10.0,
    claim_idle_seconds: float | None = None,
) -> int:
    """Write the stream's entries to the database until it is empty or `max_seconds` passed;
    first take over entries another consumer left pending for `claim_idle_seconds`.
    Returns how many records were written."""
    from gateway.redis_client import get_sync_redis
    from gateway.usage_stream import GROUP, stream_key

    client, key = get_sync_redis(), stream_key()
    consumer = consumer or consumer_name()
    count = entries_per_read
    idle = claim_idle_seconds if claim_idle_seconds is not None else settings.USAGE_STREAM_CLAIM_IDLE_SECONDS
    _ensure_group(client, key, GROUP)
    written = 0
    start: bytes | str = "0-0"
    while True:  # entries of dead consumers
        start, claimed, *_ = client.xautoclaim(key, GROUP, consumer, int(idle * 1000), start_id=start, count=count)
        if claimed:
            written += _write(client, key, GROUP, claimed, reclaimed=True)
        if start in (b"0-0", "0-0"):
            break
    _forget_idle_consumers(client, key, GROUP)
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        response: Any = client.xreadgroup(GROUP, consumer, {key: ">"}, count=count)
        entries: list[Entry] = response[0][1] if response else []
        if not entries:
            break
        written += _write(client, key, GROUP, entries, reclaimed=False)
    return written


def _forget_idle_consumers(client: redis.Redis, key: str, group: str) -> None:
    """Consumers (worker processes) long gone with nothing pending: their names would pile
    up in the group with every worker restart."""
    for info in client.xinfo_consumers(key, group):
        if info["pending"] == 0 and info["idle"] > IDLE_CONSUMER_MS:
            client.xgroup_delconsumer(key, group, info["name"])


def _write(client: redis.Redis, key: str, group: str, entries: Sequence[Entry], *, reclaimed: bool) -> int:
    from gateway.usage_stream import records_decode

    records: list[Record] = []
    ids: list[bytes] = []
    for entry_id, fields in entries:
        ids.append(entry_id)
        try:
            records.extend(records_decode(fields[b"r"]))
        except Exception:  # unreadable: nothing to retry, it would block the stream
            log.exception("Dropping unreadable usage stream entry %r", entry_id)
    if reclaimed:
        records = _not_stored(records)
    written = _store(records)
    pipe = client.pipeline(transaction=False)
    pipe.xack(key, group, *ids)
    pipe.xdel(key, *ids)
    pipe.execute()
    return written


def _store(records: list[Record]) -> int:
    """The batch in one transaction; if it fails, record by record, dropping (and logging) the
    ones that fail while others succeed. All failing means the database is the problem: the
    exception propagates and the entries stay pending."""
    if not records:
        return 0
    try:
        return usage_record_batch(records=records)
    except Exception:
        if len(records) == 1:
            raise
        log.exception("Writing a batch of %d usage records failed; writing them one by one", len(records))
    written, failed = 0, []
    for record in records:
        try:
            written += usage_record_batch(records=[record])
        except Exception as exc:
            failed.append((record, exc))
    if not written:
        raise failed[0][1]
    for record, error in failed:
        log.error("Dropping usage record %s that cannot be stored: %s", record.request_id, error)
    return written


def _not_stored(records: list[Record]) -> list[Record]:
    """Records a dead consumer has not committed (same request id and creation time)."""
    if not records:
        return records
    stored: set[tuple[str, Any]] = set(
        UsageRecord.objects.filter(request_id__in={r.request_id for r in records}).values_list(
            "request_id", "created_at"
        )
    )
    return [r for r in records if (r.request_id, datetime.fromtimestamp(r.created_at, tz=UTC)) not in stored]
