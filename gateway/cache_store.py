"""Where cached answers live: an in-process LRU in front of a persistent tier with a TTL.

The LRU is bounded by entry count and total bytes. The persistent tier is Redis when
REDIS_URL is set (shared by every process: `SET ... EX`) and the database otherwise
(`CacheEntry` rows, read and written on one worker thread so the event loop never waits on
the ORM; expired rows are purged by a periodic task). A DELETE through the management API
clears this process's LRU at once and bumps the configuration version, so every other
process drops its LRU when it next sees a new snapshot (within CONFIG_POLL_INTERVAL).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from django.db import close_old_connections
from django.db.models import Q

from .cache_vectors import best_match
from .redis_client import get_async_redis, get_sync_redis, redis_configured

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class Entry:
    key: str
    blob: bytes  # orjson: {"response": canonical, "provider": id, "model": model id}
    model: str  # "provider/model" that answered
    requested: str  # the model name the client sent
    scope: str = ""
    vector: bytes | None = None  # unit float32 vector of the last user message
    expires: float = 0.0  # epoch seconds


class MemoryTier:
    """Per-process LRU; thread-safe (the management API clears it from a worker thread)."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.version: int | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def follow(self, version: int) -> None:
        """Forget everything when the configuration version moved (see the module docstring)."""
        if version != self.version:
            self.clear()
            self.version = version

    def get(self, key: str) -> Entry | None:
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            if entry.expires <= time.time():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return entry

    def put(self, entry: Entry, *, max_entries: int, max_bytes: int) -> None:
        if len(entry.blob) > max_bytes:
            return
        with self._lock:
            self._drop(entry.key)
            self._items[entry.key] = entry
            self._bytes += len(entry.blob)
            while len(self._items) > max_entries or self._bytes > max_bytes:
                self._drop(next(iter(self._items)))

    def clear(self, model: str | None = None) -> int:
        with self._lock:
            keys = [k for k, e in self._items.items() if model is None or model in (e.model, e.requested)]
            for key in keys:
                self._drop(key)
            return len(keys)

    def _drop(self, key: str) -> None:
        entry = self._items.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.blob)


class PersistentTier(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def put(self, entry: Entry, ttl: int) -> None: ...
    async def nearest(self, scope: str, vector: bytes, threshold: float) -> tuple[str, bytes] | None: ...
    def count(self) -> int: ...
    def clear(self, model: str | None) -> int: ...


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


def _aredis() -> Any:
    return get_async_redis()


def _sredis() -> Any:
    return get_sync_redis()


class RedisTier:
    """Keys under `omniroute:cache:<namespace>:` — `e:<key>` the answer (SET EX), `s:<scope>`
    a hash key -> vector for semantic matching, `m:<model>` the keys of a model (for DELETE
    ?model=), `stats` hits and misses of every process."""

    def __init__(self, namespace: str) -> None:
        self.prefix = f"omniroute:cache:{namespace}:"

    async def get(self, key: str) -> bytes | None:
        value = await _aredis().get(self.prefix + "e:" + key)
        return bytes(value) if value is not None else None

    async def put(self, entry: Entry, ttl: int) -> None:
        pipe = _aredis().pipeline(transaction=False)
        pipe.set(self.prefix + "e:" + entry.key, entry.blob, ex=ttl)
        for name in {entry.model, entry.requested}:
            pipe.sadd(self.prefix + "m:" + name, entry.key)
            pipe.expire(self.prefix + "m:" + name, ttl)
        if entry.scope and entry.vector is not None:
            pipe.hset(self.prefix + "s:" + entry.scope, entry.key, entry.vector)
            pipe.expire(self.prefix + "s:" + entry.scope, ttl)
        await pipe.execute()

    async def nearest(self, scope: str, vector: bytes, threshold: float) -> tuple[str, bytes] | None:
        client = _aredis()
        stored = await client.hgetall(self.prefix + "s:" + scope)
        candidates = [(k.decode(), bytes(v)) for k, v in stored.items()]
        while candidates:
            found = best_match(vector, candidates, threshold)
            if found is None:
                return None
            body = await self.get(found)
            if body is not None:
                return found, body
            await client.hdel(self.prefix + "s:" + scope, found)  # expired: forget its vector
            candidates = [c for c in candidates if c[0] != found]
        return None

    def count(self) -> int:
        return sum(1 for _ in _sredis().scan_iter(match=self._escaped("e:") + "*", count=1000))

    def clear(self, model: str | None) -> int:
        client = _sredis()
        if model is not None:
            index = self.prefix + "m:" + model
            keys = [self.prefix + "e:" + k.decode() for k in client.smembers(index)]
            removed = int(client.delete(*keys)) if keys else 0
            client.delete(index)
            return removed
        removed = 0
        batch: list[bytes] = []
        for name in client.scan_iter(match=self._escaped("") + "*", count=1000):
            removed += name.startswith((self.prefix + "e:").encode())
            batch.append(name)
            if len(batch) >= 500:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
        return removed

    def _escaped(self, suffix: str) -> str:
        return "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix + suffix)

    def count_hit(self, hit: bool) -> None:
        """Shared hit/miss counters, written without making the request wait."""
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(
            _aredis().hincrby(self.prefix + "stats", "hits" if hit else "misses", 1)
        )
        _pending.add(task)
        task.add_done_callback(_pending.discard)

    def hit_counts(self) -> tuple[int, int]:
        raw = _sredis().hmget(self.prefix + "stats", ["hits", "misses"])
        return int(raw[0] or 0), int(raw[1] or 0)

    def reset_counts(self) -> None:
        _sredis().delete(self.prefix + "stats")


_pending: set[asyncio.Task[Any]] = set()
# This process's lookups (the shared counters are in Redis when configured).
counts = {"hits": 0, "misses": 0}
_persistent: tuple[str, PersistentTier] | None = None


def persistent_tier() -> PersistentTier:
    """Redis when configured, else the database; rebuilt if REDIS_URL changes (tests)."""
    global _persistent
    from .state import state_namespace

    kind = "redis:" + state_namespace() if redis_configured() else "db"
    if _persistent is None or _persistent[0] != kind:
        tier: PersistentTier = RedisTier(kind.removeprefix("redis:")) if redis_configured() else DatabaseTier()
        _persistent = (kind, tier)
    return _persistent[1]


memory = MemoryTier()
