"""Writing usage records: the recorder's batches, priced and scrubbed of secrets, with their
request logs (same batch, same transaction)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from django.db import connection, models, transaction

from ..models import RequestLog, UsageRecord
from ..pricing import PriceTable, cost_of, price_table
from ..redaction import text_redact
from .request_logs import request_log_row

if TYPE_CHECKING:
    from gateway.recorder import Record

log = logging.getLogger(__name__)
MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class _KnownConfig:
    """What a batch needs from the config snapshot, derived once per snapshot."""

    snapshot: object
    key_names: dict[int, str]
    secrets: tuple[str, ...]
    no_log_ids: frozenset[int] = frozenset()


_known_lock = threading.Lock()
_known: _KnownConfig | None = None


def _known_config() -> _KnownConfig:
    from gateway.snapshot import get_snapshot_sync

    global _known
    snapshot = get_snapshot_sync()
    with _known_lock:
        if _known is None or _known.snapshot is not snapshot:
            _known = _KnownConfig(
                snapshot=snapshot,
                key_names={entry.id: entry.name for entry in snapshot.keys_by_hash.values()},
                secrets=tuple({c.api_key for creds in snapshot.credentials.values() for c in creds if c.api_key}),
                no_log_ids=frozenset(e.id for e in snapshot.keys_by_hash.values() if e.no_log),
            )
        return _known


def _error_text(error: str, *, known: _KnownConfig) -> str:
    # Cut generously before redacting (bounded work), exactly after (a redaction shortens).
    return text_redact(error[: 4 * MAX_ERROR_LENGTH], secrets=known.secrets)[:MAX_ERROR_LENGTH] if error else ""


def _row(record: Record, *, prices: PriceTable, known: _KnownConfig) -> dict[str, Any]:
    """Column values by field attname (a dict, not a model instance: instances cost ~25 µs each)."""
    return dict(
        created_at=datetime.fromtimestamp(record.created_at, tz=UTC),
        request_id=record.request_id,
        endpoint=record.endpoint,
        client_format=record.client_format,
        api_key_id=record.api_key_id,
        api_key_name=known.key_names.get(record.api_key_id, "") if record.api_key_id is not None else "",
        provider=record.provider,
        model=record.model,
        connection_id=record.connection_id,
        status_code=record.status_code,
        stream=record.stream,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        cached_tokens=record.cached_tokens,
        cache_creation_tokens=record.cache_creation_tokens,
        reasoning_tokens=record.reasoning_tokens,
        images=record.images,
        audio_seconds=round(record.audio_seconds, 3),
        cost_usd=cost_of(provider=record.provider, model=record.model, usage=record, prices=prices),
        latency_ms=round(record.latency_ms, 3),
        ttfb_ms=None if record.ttfb_ms is None else round(record.ttfb_ms, 3),
        error=_error_text(record.error, known=known),
    )


def usage_record_batch(*, records: Sequence[Record]) -> int:
    """Write a batch of gateway records with their cost; returns how many rows were created.

    Runs in the recorder's writer thread, off the request path: prices, key names and the
    secrets to scrub from errors come from the config snapshot.
    """
    try:
        prices, known = price_table(), _known_config()
    except Exception:  # never lose records over pricing: store them unpriced, say so loudly
        log.exception("Prices or key names unavailable; %d usage records stored with cost 0", len(records))
        prices, known = PriceTable(entries={}), _KnownConfig(snapshot=None, key_names={}, secrets=())
    rows = [_row(r, prices=prices, known=known) for r in records]
    logs = [
        request_log_row(r, row, secrets=known.secrets, no_log=r.api_key_id in known.no_log_ids)
        for r, row in zip(records, rows, strict=True)
        if r.body_log is not None
    ]
    with transaction.atomic():
        _insert(UsageRecord, rows)
        if logs:
            _insert(RequestLog, logs)
    return len(rows)


# Rows per multi-row INSERT statement, at most: one statement (one sqlite3_step, one GIL
# release and re-acquisition, one PostgreSQL round trip) for up to this many rows.
MAX_ROWS_PER_STATEMENT = 64


def _insert(model: type[models.Model], rows: list[dict[str, Any]]) -> None:
    """Multi-row INSERT statements (`VALUES (...), (...), ...`) for many rows.

    bulk_create costs ~100 µs of CPU per row in SQL compilation (measured); this costs a few,
    which matters because the writer thread shares the GIL with the event loop. One statement
    per row (executemany) was the writer's bottleneck under load: each row's step releases
    the GIL and waits to get it back from the busy event loop, so the writer fell behind and
    its queue grew without bound (see gateway/recorder.py).
    """
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    ops = connection.ops
    converters: list[Callable[[Any], Any]] = []
    for f in fields:
        if isinstance(f, models.DateTimeField):
            converters.append(ops.adapt_datetimefield_value)
        elif isinstance(f, models.DecimalField):
            converters.append(partial(_adapt_decimal, ops, f.max_digits, f.decimal_places))
        elif isinstance(f, models.JSONField):
            converters.append(partial(f.get_db_prep_save, connection=connection))
        else:
            converters.append(_same)
    table = ops.quote_name(model._meta.db_table)
    columns = ", ".join(ops.quote_name(f.column or f.attname) for f in fields)
    placeholders = f"({', '.join(['%s'] * len(fields))})"
    attnames = [f.attname for f in fields]
    start = 0
    with connection.cursor() as cursor:
        for size in _statement_sizes(len(rows), _rows_per_statement(len(fields))):
            chunk = rows[start : start + size]
            start += size
            params = [convert(row[name]) for row in chunk for convert, name in zip(converters, attnames, strict=True)]
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * size)}", params)


def _statement_sizes(rows: int, largest: int) -> list[int]:
    """Rows per statement: as many of the largest as fit, then the rest in powers of two.

    The driver caches each statement text it prepared, and SQLite keeps the values last bound
    to a cached statement (copies of the request-log bodies) until it runs again: with only
    powers of two, a table has at most log2(largest) + 1 statement shapes, which keep fewer
    than 2 x largest rows' values alive, whatever the batch sizes.
    """
    sizes = [largest] * (rows // largest)
    rest = rows % largest
    size = largest
    while rest:
        size //= 2
        if rest >= size:
            sizes.append(size)
            rest -= size
    return sizes


def _rows_per_statement(columns: int) -> int:
    """The largest power of two up to MAX_ROWS_PER_STATEMENT whose parameters the database
    accepts in one statement (SQLite's compiled limit, read from the connection: 999 in old
    builds, 32766 and more in current ones; PostgreSQL's protocol: 65535)."""
    if connection.vendor == "sqlite":
        import sqlite3

        connection.ensure_connection()
        limit = connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    else:
        limit = 65535
    size = MAX_ROWS_PER_STATEMENT
    while size > 1 and size * columns > limit:
        size //= 2
    return size


def _same(value: Any) -> Any:
    return value


def _adapt_decimal(ops: Any, max_digits: int | None, decimal_places: int | None, value: Any) -> Any:
    return ops.adapt_decimalfield_value(value, max_digits, decimal_places)
