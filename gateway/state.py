"""Runtime routing state: cooldowns, circuit breakers, round-robin counters, latency.

Two implementations behind one interface, chosen by settings:

- `LocalState` (embedded default): plain dicts in this process.
- `RedisState` (REDIS_URL set): the same dicts become a *mirror* of shared state. Every
  change is written to Redis (with a TTL) and published; each process applies published
  changes to its mirror. Reads on the request path therefore never leave the process; only
  failures, recoveries and round-robin picks talk to Redis. A process loads the current
  state from Redis when its listener starts (before its first chat request is routed).

Keys are strings such as `conn:12`, `provider:openai`, `member:combo-name:openai/gpt-4o`.
Redis keys live under `omniroute:state:<namespace>:`; the namespace is `STATE_NAMESPACE`
when set, else derived from the database name: processes that share a database are one
deployment and share state; other deployments (or test runs) on the same Redis do not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson

from .redis_client import share_periodically

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
_LATENCY_WINDOW = 200
_LOAD_WAIT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    reset_seconds: float = 30.0
    half_open_probes: int = 1


@dataclass(slots=True)
class Cooldown:
    until: float
    reason: str
    since: float


@dataclass(slots=True)
class Breaker:
    state: str = CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probes: int = 0  # probes let through since the breaker went half-open
    probe_at: float = 0.0  # when the last probe was let through


@dataclass
class LocalState:
    cooldowns: dict[str, Cooldown] = field(default_factory=dict)
    breakers: dict[str, Breaker] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    counter_expiry: dict[str, float] = field(default_factory=dict)
    latency: dict[str, deque[float]] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Whether requests may route on this state now; RedisState needs its listener (`start`)."""
        return True

    # -- reads (sync, no I/O: used on the request path) ------------------------------------

    def cooldown_remaining(self, key: str, now: float | None = None) -> float:
        entry = self.cooldowns.get(key)
        if entry is None:
            return 0.0
        remaining = entry.until - (now if now is not None else time.time())
        if remaining <= 0:
            self.cooldowns.pop(key, None)
            return 0.0
        return remaining

    def breaker_allows(self, key: str, policy: BreakerPolicy, now: float | None = None) -> bool:
        """Closed: yes. Open: no, until reset_seconds passed; then half-open: `half_open_probes`
        probes. A probe that never reports back (its request ended in a way that says nothing
        about the provider) frees its slot after another reset_seconds."""
        breaker = self.breakers.get(key)
        if breaker is None or breaker.state == CLOSED:
            return True
        now = now if now is not None else time.time()
        if breaker.state == OPEN and now - breaker.opened_at >= policy.reset_seconds:
            breaker.state, breaker.probes = HALF_OPEN, 0
        if breaker.state != HALF_OPEN:
            return False
        if breaker.probes >= max(policy.half_open_probes, 1):
            if now - breaker.probe_at < policy.reset_seconds:
                return False
            breaker.probes = 0  # the probes never reported back: free their slots
        breaker.probes += 1
        breaker.probe_at = now
        return True

    def breaker_retry_after(self, key: str, policy: BreakerPolicy, now: float | None = None) -> float:
        breaker = self.breakers.get(key)
        if breaker is None or breaker.state == CLOSED:
            return 0.0
        now = now if now is not None else time.time()
        return max(1.0, policy.reset_seconds - (now - breaker.opened_at))

    def latency_p50(self, key: str) -> float | None:
        samples = self.latency.get(key)
        if not samples:
            return None
        ordered = sorted(samples)
        return ordered[len(ordered) // 2]

    def usage_count(self, key: str) -> int:
        return self.counters.get(f"used:{key}", 0)

    # -- writes ----------------------------------------------------------------------------

    async def set_cooldown(self, key: str, seconds: float, reason: str) -> None:
        now = time.time()
        self._apply({"op": "cooldown", "key": key, "until": now + seconds, "reason": reason, "since": now})

    async def clear_cooldown(self, key: str) -> bool:
        existed = self.cooldown_remaining(key) > 0
        self._apply({"op": "clear", "key": key})
        return existed

    async def record_failure(self, key: str, policy: BreakerPolicy) -> None:
        breaker = self.breakers.setdefault(key, Breaker())
        failures = breaker.failures + 1
        self._apply(self._failure_event(key, failures, policy))

    async def record_success(self, key: str) -> None:
        breaker = self.breakers.get(key)
        if breaker is not None and (breaker.failures or breaker.state != CLOSED):
            self._apply({"op": "close", "key": key})

    async def close_breaker(self, key: str) -> bool:
        """Close a breaker by hand; True when it was not closed (or had failures)."""
        breaker = self.breakers.get(key)
        existed = breaker is not None and (breaker.failures > 0 or breaker.state != CLOSED)
        self._apply({"op": "close", "key": key})
        return existed

    async def next_counter(self, key: str, *, ttl: float | None = None) -> int:
        """0, 1, 2, ... per key; with `ttl`, the sequence starts over after `ttl` quiet seconds."""
        now = time.time()
        if ttl is not None and self.counter_expiry.get(key, now + 1) <= now:
            self.counters.pop(key, None)
        value = self.counters.get(key, -1) + 1
        self.counters[key] = value
        if ttl is not None:
            self.counter_expiry[key] = now + ttl
        return value

    async def note_used(self, key: str) -> None:
        name = f"used:{key}"
        self.counters[name] = self.counters.get(name, 0) + 1

    def observe_latency(self, key: str, ms: float) -> None:
        samples = self.latency.get(key)
        if samples is None:
            samples = self.latency[key] = deque(maxlen=_LATENCY_WINDOW)
        samples.append(ms)

    async def reset(self) -> None:
        """Forget everything: cooldowns, breakers, backoff levels, round-robin positions, usage
        counts and latency samples."""
        self._apply({"op": "reset"})

    # -- management views ------------------------------------------------------------------

    async def view(self) -> LocalState:
        """The current state for management endpoints (shared state is read from Redis)."""
        return self

    # -- shared mechanics --------------------------------------------------------------------

    @staticmethod
    def _failure_event(key: str, failures: int, policy: BreakerPolicy) -> dict[str, Any]:
        if failures >= policy.failure_threshold:
            return {"op": "open", "key": key, "failures": failures, "at": time.time()}
        return {"op": "failures", "key": key, "failures": failures}

    def _apply(self, event: dict[str, Any]) -> None:
        op, key = event["op"], event.get("key", "")
        if op == "cooldown":
            self.cooldowns[key] = Cooldown(until=event["until"], reason=event["reason"], since=event["since"])
        elif op == "clear":
            self.cooldowns.pop(key, None)
        elif op == "failures":
            breaker = self.breakers.setdefault(key, Breaker())
            breaker.failures = max(breaker.failures, event["failures"])
            if breaker.state == HALF_OPEN:  # the probe failed
                breaker.state, breaker.opened_at, breaker.probes = OPEN, time.time(), 0
        elif op == "open":
            self.breakers[key] = Breaker(state=OPEN, failures=event["failures"], opened_at=event["at"])
        elif op == "close":
            self.breakers.pop(key, None)
        elif op == "reset":
            self.cooldowns.clear()
            self.breakers.clear()
            self.counters.clear()
            self.counter_expiry.clear()
            self.latency.clear()

    async def start(self) -> None:
        return None


def state_namespace() -> str:
    """Which deployment this process belongs to (see the module docstring)."""
    from django.conf import settings
    from django.db import connection

    explicit = settings.STATE_NAMESPACE
    if explicit:
        return str(explicit)
    name = str(connection.settings_dict.get("NAME") or "")
    return hashlib.sha256(name.encode()).hexdigest()[:12]


class RedisState(LocalState):
    """Shared through Redis; see the module docstring."""

    def __init__(self, namespace: str | None = None) -> None:
        super().__init__()
        self.namespace = namespace if namespace is not None else state_namespace()
        self.prefix = f"omniroute:state:{self.namespace}:"
        self.channel = f"omniroute:state:{self.namespace}:events"
        self.origin = f"{os.getpid()}:{id(self)}"
        self._listener: asyncio.Task[None] | None = None
        self._loaded: asyncio.Event | None = None
        # Latency samples are shared in batches: kept locally on the request path, pushed to
        # and read back from Redis every LATENCY_SYNC_SECONDS by the sync task.
        self._pending_latency: dict[str, list[float]] = {}
        self._latency_sync: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self._listener is not None and not self._listener.done()

    def _redis(self) -> Any:
        from .redis_client import get_async_redis

        return get_async_redis()

    async def _publish(self, event: dict[str, Any], *, ttl: float | None = None) -> None:
        """Apply locally, store (for processes that start later) and tell the others."""
        self._apply(event)
        event = {**event, "origin": self.origin}
        redis = self._redis()
        try:
            async with redis.pipeline(transaction=False) as pipe:
                stored = self.prefix + "event:" + event.get("key", "")
                if event["op"] in ("cooldown", "open") and ttl:
                    pipe.set(f"{stored}:{event['op']}", orjson.dumps(event), px=max(1, int(ttl * 1000)))
                elif event["op"] in ("clear", "close"):
                    pipe.delete(f"{stored}:cooldown" if event["op"] == "clear" else f"{stored}:open")
                    if event["op"] == "close":
                        pipe.delete(self.prefix + "failures:" + event["key"])
                pipe.publish(self.channel, orjson.dumps(event))
                await pipe.execute()
        except Exception as exc:  # Redis down: keep working on local state
            log.warning("Shared state unavailable, using this process's state only: %s", exc)

    async def set_cooldown(self, key: str, seconds: float, reason: str) -> None:
        now = time.time()
        await self._publish(
            {"op": "cooldown", "key": key, "until": now + seconds, "reason": reason, "since": now}, ttl=seconds
        )

    async def clear_cooldown(self, key: str) -> bool:
        existed = self.cooldown_remaining(key) > 0
        await self._publish({"op": "clear", "key": key})
        return existed

    async def record_failure(self, key: str, policy: BreakerPolicy) -> None:
        try:
            redis = self._redis()
            counter = self.prefix + "failures:" + key
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr(counter)
                pipe.expire(counter, int(max(policy.reset_seconds * 4, 60)))
                failures, _ = await pipe.execute()
        except Exception as exc:
            log.warning("Shared state unavailable, counting failures locally: %s", exc)
            await super().record_failure(key, policy)
            return
        event = self._failure_event(key, int(failures), policy)
        await self._publish(event, ttl=max(policy.reset_seconds * 4, 60) if event["op"] == "open" else None)

    async def record_success(self, key: str) -> None:
        breaker = self.breakers.get(key)
        if breaker is not None and (breaker.failures or breaker.state != CLOSED):
            await self._publish({"op": "close", "key": key})

    async def close_breaker(self, key: str) -> bool:
        breaker = self.breakers.get(key)
        existed = breaker is not None and (breaker.failures > 0 or breaker.state != CLOSED)
        await self._publish({"op": "close", "key": key})
        return existed

    async def next_counter(self, key: str, *, ttl: float | None = None) -> int:
        try:
            redis = self._redis()
            name = self.prefix + "counter:" + key
            if ttl is None:
                return int(await redis.incr(name)) - 1
            async with redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, max(1, int(ttl)))
                value, _ = await pipe.execute()
            return int(value) - 1
        except Exception:
            return await super().next_counter(key, ttl=ttl)

    async def reset(self) -> None:
        try:
            redis = self._redis()
            keys = [k async for k in redis.scan_iter(match=self.prefix + "*", count=500)]
            if keys:
                await redis.delete(*keys)
        except Exception as exc:
            log.warning("Could not reset shared state in Redis: %s", exc)
        await self._publish({"op": "reset"})

    async def view(self) -> LocalState:
        """What Redis holds now: stored cooldowns and open breakers, failure counts of closed
        breakers. Falls back to this process's mirror when Redis is unreachable."""
        try:
            redis = self._redis()
            view = LocalState()
            async for raw_key in redis.scan_iter(match=self.prefix + "event:*", count=500):
                raw = await redis.get(raw_key)
                if raw:
                    view._apply(orjson.loads(raw))
            prefix = self.prefix + "failures:"
            async for raw_key in redis.scan_iter(match=prefix + "*", count=500):
                raw = await redis.get(raw_key)
                key = (raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key))[len(prefix) :]
                if raw and key not in view.breakers:
                    view.breakers[key] = Breaker(failures=int(raw))
            # Half-open is a per-process detail; show this process's view of it.
            for key, breaker in self.breakers.items():
                if breaker.state == HALF_OPEN and key in view.breakers:
                    view.breakers[key].state = HALF_OPEN
            return view
        except Exception as exc:
            log.warning("Could not read shared state from Redis, showing this process's: %s", exc)
            return self

    async def start(self) -> None:
        """Start listening (once per process) and wait, briefly, until the stored state is loaded.

        Events published between subscribing and loading are applied twice: harmless."""
        if self._listener is None or self._listener.done():
            self._loaded = asyncio.Event()
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(self._loaded), name="omniroute-state-listener"
            )
        if self._latency_sync is None or self._latency_sync.done():
            self._latency_sync = asyncio.get_running_loop().create_task(
                share_periodically(LATENCY_SYNC_SECONDS, self.sync_latency, "Latency samples"),
                name="omniroute-latency-sync",
            )
        loaded = self._loaded
        if loaded is not None and not loaded.is_set():
            try:
                async with asyncio.timeout(_LOAD_WAIT_SECONDS):
                    await loaded.wait()
            except TimeoutError:
                log.warning(
                    "Shared state not loaded from Redis within %.0f s; routing on local state", _LOAD_WAIT_SECONDS
                )

    def observe_latency(self, key: str, ms: float) -> None:
        super().observe_latency(key, ms)
        self._pending_latency.setdefault(key, []).append(ms)

    def _apply(self, event: dict[str, Any]) -> None:
        super()._apply(event)
        if event["op"] == "reset":
            self._pending_latency.clear()

    async def sync_latency(self) -> None:
        """Push this process's new samples; replace local windows with the shared ones."""
        pending, self._pending_latency = self._pending_latency, {}
        keys = sorted(set(self.latency) | set(pending))
        if not keys:
            return
        redis = self._redis()
        async with redis.pipeline(transaction=False) as pipe:
            for key, samples in pending.items():
                name = self.prefix + "latency:" + key
                pipe.rpush(name, *samples)
                pipe.ltrim(name, -_LATENCY_WINDOW, -1)
                pipe.expire(name, 3600)
            for key in keys:
                pipe.lrange(self.prefix + "latency:" + key, 0, -1)
            results = await pipe.execute()
        for key, shared in zip(keys, results[-len(keys) :], strict=True):
            if shared:
                self.latency[key] = deque((float(v) for v in shared), maxlen=_LATENCY_WINDOW)

    async def _load(self) -> None:
        redis = self._redis()
        async for raw_key in redis.scan_iter(match=self.prefix + "event:*", count=500):
            raw = await redis.get(raw_key)
            if raw:
                self._apply(orjson.loads(raw))

    async def _listen(self, loaded: asyncio.Event) -> None:
        while True:
            try:
                pubsub = self._redis().pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                await self._load()
                loaded.set()
                async for message in pubsub.listen():
                    event = orjson.loads(message["data"])
                    if event.get("origin") != self.origin:
                        self._apply(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                loaded.set()  # do not hold requests back while Redis is away
                log.warning("Shared state listener lost Redis (%s); retrying in 1 s", exc)
                await asyncio.sleep(1)


LATENCY_SYNC_SECONDS = 1.0
_state: LocalState | None = None


def get_state() -> LocalState:
    global _state
    if _state is None:
        from django.conf import settings

        _state = RedisState() if settings.REDIS_URL else LocalState()
    return _state


def reset_state_for_tests() -> None:
    global _state
    _state = None
