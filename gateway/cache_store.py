"""Where cached answers live: an in-process LRU in front of a persistent tier with a TTL.

The LRU is bounded by entry count and total bytes. The persistent tier is Redis when
REDIS_URL is set (gateway/cache_redis.py, shared by every process) and the database
otherwise (gateway/cache_db.py). A DELETE through the management API
clears this process's LRU at once and bumps the configuration version, so every other
process drops its LRU when it next sees a new snapshot (within CONFIG_POLL_INTERVAL).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from .redis_client import redis_configured


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


# This process's lookups (the shared counters are in Redis when configured).
counts = {"hits": 0, "misses": 0}
_persistent: tuple[str, PersistentTier] | None = None


def persistent_tier() -> PersistentTier:
    """Redis when configured, else the database; rebuilt if REDIS_URL changes (tests)."""
    global _persistent
    from .state import state_namespace

    kind = "redis:" + state_namespace() if redis_configured() else "db"
    if _persistent is None or _persistent[0] != kind:
        from .cache_db import DatabaseTier
        from .cache_redis import RedisTier

        tier: PersistentTier = RedisTier(kind.removeprefix("redis:")) if redis_configured() else DatabaseTier()
        _persistent = (kind, tier)
    return _persistent[1]


memory = MemoryTier()
