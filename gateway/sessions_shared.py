"""Sessions shared through Redis (see gateway/sessions.py for the model).

Layout under `omniroute:sessions:<namespace>:` (the namespace of gateway/state.py):
- `all`: sorted set of `<keyId>:<sessionId>` by last-seen time (ms), for the listing;
- `k:<keyId>`: sorted set of session ids by last-seen time, for `maxSessions`;
- `s:<keyId>:<sessionId>`: hash `keyName`, `model`, `firstSeen`, `lastSeen`, `requests`.
Everything expires a window after it was last seen.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from django.conf import settings

from .redis_client import share_periodically
from .sessions import FLUSH_SECONDS, Session, SessionTracker, too_many, window_seconds
from .snapshot import KeyEntry

log = logging.getLogger(__name__)

# KEYS[1] the key's set; ARGV now_ms, cutoff_ms, limit, session id, ttl_ms. 1 = admitted.
_ADMIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if not redis.call('ZSCORE', KEYS[1], ARGV[4]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class SharedSessionTracker(SessionTracker):
    def __init__(self) -> None:
        super().__init__()
        from .state import state_namespace

        self.prefix = f"omniroute:sessions:{state_namespace()}:"
        # (key id, session id) -> the session and the requests not yet counted in Redis
        self.pending: dict[tuple[int | None, str], tuple[Session, int]] = {}
        self.flusher: asyncio.Task[None] | None = None

    async def admit(self, sid: str, entry: KeyEntry, now: float) -> None:
        from .redis_client import get_async_redis

        assert entry.max_sessions is not None
        ttl = int(window_seconds() * 2000)
        try:
            admitted = await get_async_redis().eval(
                _ADMIT,
                1,
                f"{self.prefix}k:{entry.id}",
                int(now * 1000),
                int((now - window_seconds()) * 1000),
                entry.max_sessions,
                sid,
                ttl,
            )
        except Exception as exc:
            log.warning("Session limits unavailable in Redis (%s); counting this process's sessions", exc)
            return await super().admit(sid, entry, now)
        if not admitted:
            raise too_many(entry.max_sessions)

    def note(self, session: Session) -> None:
        key = (session.key_id, session.id)
        _, count = self.pending.get(key, (session, 0))
        self.pending[key] = (session, count + 1)
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.get_running_loop().create_task(
                share_periodically(FLUSH_SECONDS, self.flush, "Sessions"), name="omniroute-sessions"
            )

    async def flush(self) -> None:
        from .redis_client import get_async_redis

        pending, self.pending = self.pending, {}
        if not pending:
            return
        ttl = int(window_seconds() * 2000)
        async with get_async_redis().pipeline(transaction=False) as pipe:
            for (key_id, sid), (session, count) in pending.items():
                last_ms = int(session.last_seen * 1000)
                info = f"{self.prefix}s:{key_id}:{sid}"
                pipe.hsetnx(info, "firstSeen", session.first_seen)
                pipe.hset(info, mapping={"keyName": session.key_name, "model": session.model})
                pipe.hincrby(info, "requests", count)
                pipe.pexpire(info, ttl)
                pipe.zadd(self.prefix + "all", {f"{key_id}:{sid}": last_ms}, gt=True)
                if key_id is not None:
                    pipe.zadd(f"{self.prefix}k:{key_id}", {sid: last_ms}, gt=True)
                    pipe.pexpire(f"{self.prefix}k:{key_id}", ttl)
            pipe.zremrangebyrank(self.prefix + "all", 0, -settings.SESSION_MAX_TRACKED - 1)
            pipe.pexpire(self.prefix + "all", ttl)
            await pipe.execute()

    def listing(self) -> list[Session]:
        """Every process's active sessions, as written to Redis (up to FLUSH_SECONDS behind)."""
        import time

        from .redis_client import get_sync_redis

        redis = get_sync_redis()
        cutoff = int((time.time() - window_seconds()) * 1000)
        try:
            redis.zremrangebyscore(self.prefix + "all", "-inf", cutoff)
            members: list[Any] = list(redis.zrange(self.prefix + "all", 0, -1, withscores=True))
            pipe = redis.pipeline(transaction=False)
            for member, _ in members:
                pipe.hgetall(f"{self.prefix}s:{_text(member)}")
            infos = pipe.execute()
        except Exception as exc:
            log.warning("Could not read sessions from Redis, listing this process's: %s", exc)
            return super().listing()
        rows = []
        for (member, raw_score), info in zip(members, infos, strict=True):
            score = float(raw_score)
            if not info:
                continue
            key_part, _, sid = _text(member).partition(":")
            fields = {_text(k): _text(v) for k, v in info.items()}
            rows.append(
                Session(
                    id=sid,
                    key_id=None if key_part == "None" else int(key_part),
                    key_name=fields.get("keyName", ""),
                    first_seen=float(fields.get("firstSeen", score / 1000)),
                    last_seen=score / 1000,
                    requests=int(fields.get("requests", 0)),
                    model=fields.get("model", ""),
                )
            )
        return rows
