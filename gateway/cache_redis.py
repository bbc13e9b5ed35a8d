"""The response cache's persistent tier when REDIS_URL is set: shared by every process."""

from __future__ import annotations

import asyncio
from typing import Any

from .cache_store import Entry
from .cache_vectors import best_match
from .redis_client import get_async_redis, get_sync_redis


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
