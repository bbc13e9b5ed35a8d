"""The response cache's persistent tier on the embedded default: `CacheEntry` rows, read and
written on one worker thread so the event loop never waits on the ORM; expired rows are
ignored by lookups and deleted by a periodic task (`purge_expired`)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from django.db import close_old_connections
from django.db.models import Q

from .cache_store import Entry
from .cache_vectors import best_match


class DatabaseTier:
    """`CacheEntry` rows; every ORM call runs on one dedicated thread (one connection)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omniroute-cache-db")

    async def _run(self, fn: Any, *args: Any) -> Any:
        def call() -> Any:
            try:
                return fn(*args)
            finally:
                close_old_connections()

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def get(self, key: str) -> bytes | None:
        return await self._run(_db_get, key)

    async def put(self, entry: Entry, ttl: int) -> None:
        await self._run(_db_put, entry, ttl)

    async def nearest(self, scope: str, vector: bytes, threshold: float) -> tuple[str, bytes] | None:
        return await self._run(_db_nearest, scope, vector, threshold)

    def count(self) -> int:
        from .models import CacheEntry

        return CacheEntry.objects.filter(expires_at__gt=_now()).count()

    def clear(self, model: str | None) -> int:
        from .models import CacheEntry

        rows = CacheEntry.objects.all()
        if model is not None:
            rows = rows.filter(Q(model=model) | Q(requested=model))
        return int(rows.delete()[0])


def purge_expired() -> int:
    """Delete expired `CacheEntry` rows (lookups already ignore them); the periodic task."""
    from .models import CacheEntry

    return int(CacheEntry.objects.filter(expires_at__lte=_now()).delete()[0])


# The most recent entries of one scope compared for a semantic match.
SEMANTIC_CANDIDATES = 500


def _now() -> datetime:
    return datetime.now(UTC)


def _db_get(key: str) -> bytes | None:
    from .models import CacheEntry

    body = CacheEntry.objects.filter(key=key, expires_at__gt=_now()).values_list("body", flat=True).first()
    return bytes(body) if body is not None else None


def _db_put(entry: Entry, ttl: int) -> None:
    from .models import CacheEntry

    now = _now()
    CacheEntry.objects.update_or_create(
        key=entry.key,
        defaults={
            "model": entry.model[:300],
            "requested": entry.requested[:300],
            "scope": entry.scope,
            "embedding": entry.vector,
            "body": entry.blob,
            "size": len(entry.blob),
            "created_at": now,
            "expires_at": datetime.fromtimestamp(now.timestamp() + ttl, UTC),
        },
    )


def _db_nearest(scope: str, vector: bytes, threshold: float) -> tuple[str, bytes] | None:
    from .models import CacheEntry

    rows = (
        CacheEntry.objects.filter(scope=scope, expires_at__gt=_now(), embedding__isnull=False)
        .order_by("-created_at")
        .values_list("key", "embedding")[:SEMANTIC_CANDIDATES]
    )
    found = best_match(vector, [(key, bytes(emb or b"")) for key, emb in rows], threshold)
    body = _db_get(found) if found is not None else None
    return (found, body) if found is not None and body is not None else None
