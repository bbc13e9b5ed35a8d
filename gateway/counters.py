"""The limiter's counters: in this process, or shared through Redis (REDIS_URL).

Both stores offer the same three operations:

- `admit(checks)`: check every counter against its limit and, only if none is reached,
  increment the counting ones; atomic (one Lua script in Redis, one event-loop step here);
- `add(additions)`: add amounts after a request (a budget counter only if it exists);
- `seed(name, value)`: start a missing counter, unless another process did first.

Every counter expires shortly after its window ends. Redis keys live under
`omniroute:limits:<namespace>:` (the namespace of gateway.state) and carry the API key id as
a hash tag, so one request's counters sit in one Redis Cluster slot. When Redis fails the
limiter falls back to this process's counters (and says so in the log) rather than refusing
all traffic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

log = logging.getLogger(__name__)
_SLACK_SECONDS = 60.0  # counters outlive their window a little: late settlements still land
_SWEEP_SECONDS = 60.0

# KEYS: counters; ARGV per counter: limit, mode ("c" count, "s" needs seeding, "r" read), ttl ms.
# Returns {0, 0} when admitted, {i, value} when counter i reached its limit, {i, -1} when
# counter i must be seeded first.
_ADMIT = """
local n = #KEYS
for i = 1, n do
  local v = redis.call('GET', KEYS[i])
  if not v and ARGV[3 * i - 1] == 's' then return {i, -1} end
  local value = tonumber(v or '0')
  if value >= tonumber(ARGV[3 * i - 2]) then return {i, value} end
end
for i = 1, n do
  if ARGV[3 * i - 1] == 'c' then
    if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[3 * i]) end
  end
end
return {0, 0}
"""
# KEYS: counters; ARGV per counter: amount, ttl ms, "1" to add only to an existing counter.
_ADD = """
for i = 1, #KEYS do
  if ARGV[3 * i] == '0' or redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('INCRBY', KEYS[i], ARGV[3 * i - 2])
    if redis.call('PTTL', KEYS[i]) < 0 then redis.call('PEXPIRE', KEYS[i], ARGV[3 * i - 1]) end
  end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Check:
    kind: str  # "budget", "tpm", "rpm", "rpd"
    name: str  # counter name
    limit: int
    seconds_left: float  # in the counter's window
    count: bool = False  # incremented on admission
    seed: bool = False  # must exist (seeded from the database) before it is read


Addition = tuple[str, int, float, bool]  # counter, amount, seconds left in its window, only if it exists
Refused = tuple[Check, int | None]  # the check and the counter's value; None = seed it first


def _ms(seconds: float) -> int:
    return max(1, int((seconds + _SLACK_SECONDS) * 1000))


class LocalCounters:
    _shared: ClassVar[LocalCounters | None] = None

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.expiry: dict[str, float] = {}
        self._next_sweep = 0.0

    @classmethod
    def shared(cls) -> LocalCounters:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def _get(self, name: str, now: float) -> int | None:
        if self.expiry.get(name, now + 1) <= now:
            self.values.pop(name, None)
            self.expiry.pop(name, None)
        return self.values.get(name)

    def _add(self, name: str, amount: int, seconds: float, now: float) -> None:
        if now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_SECONDS
            for stale in [k for k, until in self.expiry.items() if until <= now]:
                self.values.pop(stale, None)
                self.expiry.pop(stale, None)
        value = self._get(name, now)
        if value is None:
            self.expiry[name] = now + seconds + _SLACK_SECONDS
        self.values[name] = (value or 0) + amount

    async def admit(self, checks: Sequence[Check]) -> Refused | None:
        now = time.time()
        for check in checks:
            value = self._get(check.name, now)
            if value is None and check.seed:
                return check, None
            if (value or 0) >= check.limit:
                return check, value or 0
        for check in checks:
            if check.count:
                self._add(check.name, 1, check.seconds_left, now)
        return None

    async def add(self, additions: Sequence[Addition]) -> None:
        now = time.time()
        for name, amount, seconds, only_existing in additions:
            if not only_existing or self._get(name, now) is not None:
                self._add(name, amount, seconds, now)

    async def seed(self, name: str, value: int, seconds: float) -> None:
        now = time.time()
        if self._get(name, now) is None:
            self._add(name, value, seconds, now)

    def peek(self, name: str) -> int | None:
        return self._get(name, time.time())

    def clear(self) -> None:
        self.values.clear()
        self.expiry.clear()


class RedisCounters(LocalCounters):
    """Counters in Redis; this process's own (inherited) counters are the fallback."""

    def __init__(self) -> None:
        from .state import state_namespace

        super().__init__()
        self.prefix = f"omniroute:limits:{state_namespace()}:"
        self._scripts: dict[str, Any] = {}
        self._failing_since = 0.0

    def _key(self, name: str) -> str:
        kind, key_id, window = name.split(":", 2)
        return f"{self.prefix}{kind}:{{{key_id}}}:{window}"

    async def _run(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA on this event loop's client (EVAL once when Redis does not know the script)."""
        from .redis_client import get_async_redis

        redis = get_async_redis()
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = redis.register_script(source)
        return await script(keys=keys, args=args, client=redis)

    def _failed(self, exc: Exception) -> None:
        now = time.time()
        if now - self._failing_since > 60:  # once a minute, not once a request
            log.warning("Redis unavailable for key limits; counting in this process only: %s", exc)
        self._failing_since = now

    async def admit(self, checks: Sequence[Check]) -> Refused | None:
        args: list[Any] = []
        for check in checks:
            args += [check.limit, "c" if check.count else "s" if check.seed else "r", _ms(check.seconds_left)]
        try:
            index, value = await self._run(_ADMIT, [self._key(c.name) for c in checks], args)
        except Exception as exc:
            self._failed(exc)
            return await super().admit(checks)
        if not index:
            return None
        return checks[int(index) - 1], None if int(value) < 0 else int(value)

    async def add(self, additions: Sequence[Addition]) -> None:
        args: list[Any] = []
        for _, amount, seconds, only_existing in additions:
            args += [amount, _ms(seconds), "1" if only_existing else "0"]
        try:
            await self._run(_ADD, [self._key(a[0]) for a in additions], args)
        except Exception as exc:
            self._failed(exc)
            await super().add(additions)

    async def seed(self, name: str, value: int, seconds: float) -> None:
        from .redis_client import get_async_redis

        try:
            await get_async_redis().set(self._key(name), value, nx=True, px=_ms(seconds))
        except Exception as exc:
            self._failed(exc)
            await super().seed(name, value, seconds)

    def peek(self, name: str) -> int | None:
        from .redis_client import get_sync_redis

        try:
            raw = get_sync_redis().get(self._key(name))
        except Exception as exc:
            self._failed(exc)
            return super().peek(name)
        return None if raw is None else int(raw)

    def clear_sync(self) -> None:
        from .redis_client import get_sync_redis

        client = get_sync_redis()
        keys = list(client.scan_iter(match=self.prefix + "*", count=500))
        if keys:
            client.delete(*keys)


_store: LocalCounters | None = None


def counters() -> LocalCounters:
    """The store for this process: Redis when REDIS_URL is set."""
    global _store
    if _store is None:
        from django.conf import settings

        _store = RedisCounters() if settings.REDIS_URL else LocalCounters.shared()
    return _store
