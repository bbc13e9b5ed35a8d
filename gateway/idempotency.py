"""Idempotent requests: a repeated `Idempotency-Key` (else `X-Request-Id`) gets the first answer.

Scope: the API key, the endpoint path and the key's value. While the first request runs, a
duplicate waits for it (one upstream call) and then gets its answer; once it has completed,
its answer is replayed for IDEMPOTENCY_WINDOW_MS (`X-OmniRoute-Idempotent: true`). Streams
are kept chunk by chunk and replayed as streams, the same bytes.

Only a complete 2xx answer is kept. A duplicate of a request that failed, or whose client
went away (which cancels its upstream call), runs again itself: the failure is not replayed.
The same key with another request body is a client bug: 422.

Within a process the waiting is an asyncio future. With Redis, processes share the answers:
the first request holds a lock key (SET NX PX) while it runs and stores its answer under a
result key that expires with the window; a duplicate in another process polls for the
result until the lock goes away (then it runs itself) or IDEMPOTENCY_WAIT_MS passes (409).
The lock expires after LOCK_TTL_MS unless the first request's process renews it, so a
process that dies mid-request holds its keys for seconds, not for the whole wait.
Requests without either header never reach this module's stores: no cost on the hot path.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings

from . import progress
from .capture import Capture, Captured, replay
from .errors import GatewayError
from .formats.base import ClientFormat
from .http import Request
from .recorder import Record
from .redis_client import get_async_redis, redis_configured

log = logging.getLogger(__name__)
Serve = Callable[[Any], Awaitable[None]]
_POLL_SECONDS = 0.05
_REPLAY_HEADERS = [(b"x-omniroute-idempotent", b"true")]


@dataclass(slots=True)
class _Slot:
    digest: str
    future: asyncio.Future[Captured | None] | None = None
    result: Captured | None = None
    expires: float = float("inf")  # monotonic; in flight until the result is in


# scope -> slot, in insertion order (which is about expiry order: one window for all).
_slots: dict[str, _Slot] = {}


def window_seconds() -> float:
    return float(settings.IDEMPOTENCY_WINDOW_MS) / 1000


def request_key(request: Request) -> bytes | None:
    return request.headers.get(b"idempotency-key") or request.headers.get(b"x-request-id") or None


async def run(
    request: Request,
    send: Any,
    record: Record,
    *,
    key_id: int | None,
    client: ClientFormat | None,
    payload: Any,
    serve: Serve,
) -> None:
    """`serve(send)` once per idempotency key and window; duplicates get its answer."""
    key = request_key(request)
    if key is None or window_seconds() <= 0:
        return await serve(send)
    if len(key) > 256:
        raise GatewayError(400, "Idempotency-Key is longer than 256 characters", code="invalid_idempotency_key")
    scope = hashlib.blake2b(f"{key_id}\0{request.path}\0".encode() + key, digest_size=16).hexdigest()
    digest = hashlib.blake2b(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS), digest_size=16).hexdigest()
    while True:
        captured = await _settled(scope, digest)
        if captured is not None:
            return await _replay(request, send, record, captured, client)
        claim = await _shared_claim(scope, digest)
        if claim is True:
            return await _serve_first(request, send, record, scope, digest, serve)
        captured = claim or await _wait_shared(scope, digest)
        if captured is not None:
            return await _replay(request, send, record, captured, client)


async def _settled(scope: str, digest: str) -> Captured | None:
    """This process's answer for `scope`, waiting for a first request still in flight here."""
    while True:
        slot = _live_slot(scope)
        if slot is None:
            return None
        _check_digest(slot.digest, digest)
        if slot.result is not None:
            return slot.result
        assert slot.future is not None
        # Shielded: a waiter whose client goes away must not cancel the first request's future.
        captured = await asyncio.shield(slot.future)
        if captured is not None:
            return captured
        # The first failed: loop, so that one of the waiters becomes the new first.


def _live_slot(scope: str) -> _Slot | None:
    slot = _slots.get(scope)
    if slot is not None and slot.expires <= time.monotonic():
        del _slots[scope]
        return None
    return slot


def _check_digest(stored: str, digest: str) -> None:
    if stored and stored != digest:
        raise GatewayError(
            422,
            "This Idempotency-Key was already used with a different request body",
            code="idempotency_key_reused",
        )


async def _serve_first(request: Request, send: Any, record: Record, scope: str, digest: str, serve: Serve) -> None:
    slot = _Slot(digest=digest, future=asyncio.get_running_loop().create_future())
    _slots[scope] = slot
    _purge()
    capture = Capture(send)
    captured: Captured | None = None
    keeper = asyncio.get_running_loop().create_task(_keep_lock(scope)) if redis_configured() else None
    try:
        await serve(capture)
        captured = capture.result(digest) if record.status_code < 300 else None
    finally:
        if keeper is not None:
            keeper.cancel()
        if captured is None:
            if _slots.get(scope) is slot:
                del _slots[scope]
        else:
            slot.result, slot.expires = captured, time.monotonic() + window_seconds()
        assert slot.future is not None
        slot.future.set_result(captured)
        slot.future = None
        await _shared_release(scope, captured)


async def _replay(request: Request, send: Any, record: Record, captured: Captured, client: ClientFormat | None) -> None:
    record.status_code = captured.status
    if captured.is_stream and client is not None:
        send = progress.wrap(request, send, client)
    await replay(request, send, captured, _REPLAY_HEADERS)


def _purge() -> None:
    """Drop expired answers from the front (the oldest) of the store."""
    now = time.monotonic()
    for scope in list(itertools.islice(_slots, 64)):
        slot = _slots[scope]
        if slot.expires > now:
            if slot.future is None:
                break
            continue
        del _slots[scope]


# -- shared through Redis -----------------------------------------------------------------------


def _redis_key(scope: str) -> str:
    from .state import state_namespace

    global _prefix
    if _prefix is None:
        _prefix = f"omniroute:idem:{state_namespace()}:"
    return _prefix + scope


_prefix: str | None = None


# The lock lives this long unless renewed: a process that dies frees its keys within it.
LOCK_TTL_MS = 10_000


async def _keep_lock(scope: str) -> None:
    """Renew the lock while the first request runs (streams may last minutes)."""
    key = _redis_key(scope) + ":lock"
    while True:
        await asyncio.sleep(LOCK_TTL_MS / 3000)
        try:
            await get_async_redis().pexpire(key, LOCK_TTL_MS)
        except Exception as exc:
            log.debug("Could not renew an idempotency lock: %s", exc)


async def _shared_claim(scope: str, digest: str) -> Captured | bool:
    """Another process's stored answer; else True when this request took the cross-process
    lock (it runs), False when another process holds it (wait). One transaction, so an
    answer stored just now is seen rather than run again."""
    if not redis_configured():
        return True
    key = _redis_key(scope)
    try:
        async with get_async_redis().pipeline(transaction=True) as pipe:
            pipe.get(key + ":res")
            pipe.set(key + ":lock", digest, nx=True, px=LOCK_TTL_MS)
            raw, locked = await pipe.execute()
        if raw is None:
            return bool(locked)
        if locked:
            await get_async_redis().delete(key + ":lock")
    except Exception as exc:
        log.warning("Idempotency across processes unavailable (Redis: %s); this process only", exc)
        return True
    captured = Captured.loads(raw)
    _check_digest(captured.digest, digest)
    return captured


async def _shared_release(scope: str, captured: Captured | None) -> None:
    if not redis_configured():
        return
    key = _redis_key(scope)
    try:
        async with get_async_redis().pipeline(transaction=True) as pipe:
            if captured is not None:
                pipe.set(key + ":res", captured.dumps(), px=max(1, int(window_seconds() * 1000)))
            pipe.delete(key + ":lock")
            await pipe.execute()
    except Exception as exc:
        log.warning("Could not share an idempotent answer through Redis: %s", exc)


async def _wait_shared(scope: str, digest: str) -> Captured | None:
    """Poll for another process's answer; None when its lock went away without one (run again)."""
    if not redis_configured():
        return None
    key = _redis_key(scope)
    deadline = time.monotonic() + float(settings.IDEMPOTENCY_WAIT_MS) / 1000
    redis = get_async_redis()
    while time.monotonic() < deadline:
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.get(key + ":res")
                pipe.get(key + ":lock")
                raw, holder = await pipe.execute()
        except Exception as exc:
            log.warning("Idempotency wait lost Redis (%s); running the request", exc)
            return None
        if holder is not None:
            _check_digest(holder.decode() if isinstance(holder, bytes) else str(holder), digest)
        if raw is not None:
            captured = Captured.loads(raw)
            _check_digest(captured.digest, digest)
            return captured
        if holder is None:
            return None
        await asyncio.sleep(_POLL_SECONDS)
    raise GatewayError(409, "A request with this Idempotency-Key is still in progress", code="idempotency_in_progress")


# -- statistics (GET /api/cache) ------------------------------------------------------------------


def active_keys() -> int:
    """Keys whose first request is in flight or whose answer is still replayed."""
    if redis_configured():
        from .redis_client import get_sync_redis

        try:
            prefix = f"omniroute:idem:{_namespace_sync()}:"
            scopes = {k.rsplit(b":", 1)[0] for k in get_sync_redis().scan_iter(match=prefix + "*", count=500)}
            return len(scopes)
        except Exception as exc:
            log.warning("Could not count idempotency keys in Redis: %s", exc)
    now = time.monotonic()
    return sum(1 for slot in list(_slots.values()) if slot.expires > now)


def _namespace_sync() -> str:
    from .state import state_namespace

    return state_namespace()


def clear() -> None:
    """Forget every kept answer (in-flight requests finish and are kept)."""
    for scope, slot in list(_slots.items()):
        if slot.future is None:
            _slots.pop(scope, None)
    if redis_configured():
        from .redis_client import get_sync_redis

        redis = get_sync_redis()
        keys = list(redis.scan_iter(match=f"omniroute:idem:{_namespace_sync()}:*:res", count=500))
        if keys:
            redis.delete(*keys)
