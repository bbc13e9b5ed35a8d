"""Client sessions: which conversations are active, per API key, and the key's `maxSessions`.

A session id comes from the `x-session-id` request header, else it is a fingerprint of the
conversation's start: the API key and the system prompt and first user message (a
conversation resends them with every turn, so each turn lands in the same session). The id
goes back in `X-OmniRoute-Session-Id`. A session is active while it was seen within
SESSION_WINDOW_SECONDS. A key with `maxSessions` refuses a request that would open one more
active session than that (429); requests of its active sessions go on.

Tracking happens for every chat-like request, so it must be cheap: this process keeps its
sessions in a dict. With Redis, the changes are written in batches once a second (like the
latency samples of gateway/state.py), so `/api/sessions` sees every process's sessions; the
only per-request Redis call is the admission of a session this process has not seen yet, for
a key with `maxSessions` (an atomic script over the key's sorted set of last-seen times).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings

from .errors import GatewayError, bad_request
from .http import Request
from .snapshot import KeyEntry

log = logging.getLogger(__name__)
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_HEADER = b"x-omniroute-session-id"
FLUSH_SECONDS = 1.0
_SYSTEM_FIELDS = ("system", "instructions", "systemInstruction", "system_instruction")


@dataclass(slots=True)
class Session:
    id: str
    key_id: int | None
    key_name: str
    first_seen: float
    last_seen: float
    requests: int
    model: str


def window_seconds() -> float:
    return float(settings.SESSION_WINDOW_SECONDS)


def _conversation_start(payload: dict[str, Any]) -> list[Any]:
    """The system prompt and the first user message, in any client format's body."""
    system = None
    for name in _SYSTEM_FIELDS:
        if name in payload:
            system = payload[name]
            break
    items = payload.get("messages") or payload.get("contents") or payload.get("input")
    if isinstance(items, str):
        return [system, items]
    first = None
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        role = item.get("role")
        if role in ("system", "developer"):
            system = system if system is not None else item.get("content")
        elif role in (None, "user"):
            first = item.get("content", item.get("parts"))
            break
    return [system, first]


def session_id(request: Request, entry: KeyEntry | None, payload: dict[str, Any]) -> str:
    given = request.headers.get(b"x-session-id")
    if given is not None:
        if not _SAFE_ID.match(given):
            raise bad_request("Header x-session-id must be 1-128 letters, digits or . _ : -", code="invalid_session_id")
        return given.decode()
    start = orjson.dumps([entry.id if entry else None, *_conversation_start(payload)], default=str)
    return "fp-" + hashlib.blake2b(start, digest_size=12).hexdigest()


class _SessionSend:
    """Adds the session header to the response."""

    __slots__ = ("header", "send")

    def __init__(self, send: Any, sid: str) -> None:
        self.send = send
        self.header = (_HEADER, sid.encode())

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), self.header]}
        await self.send(message)


class SessionTracker:
    """This process's sessions (the embedded mode's whole truth).

    `sessions` is kept in last-seen order (a touched session moves to the end), so expired
    sessions are at the front and a sweep stops at the first active one. At most
    SESSION_MAX_TRACKED are kept: one-shot traffic makes a session per request, and the
    least recently seen go first. Only the event loop's thread changes the dicts; the
    management API only copies them."""

    def __init__(self) -> None:
        self.sessions: dict[tuple[int | None, str], Session] = {}
        self.by_key: dict[int, set[str]] = {}

    async def touch(self, sid: str, entry: KeyEntry | None, model: str) -> None:
        now = time.time()
        key_id = entry.id if entry else None
        session = self.sessions.pop((key_id, sid), None)
        if session is None or now - session.last_seen >= window_seconds():
            if entry is not None and entry.max_sessions:
                await self.admit(sid, entry, now)
            session = Session(sid, key_id, entry.name if entry else "", now, now, 0, model)
            if key_id is not None:
                self.by_key.setdefault(key_id, set()).add(sid)
        self.sessions[(key_id, sid)] = session
        session.last_seen, session.model = now, model
        session.requests += 1
        self.note(session)
        if len(self.sessions) > settings.SESSION_MAX_TRACKED or len(self.sessions) % 256 == 0:
            self.sweep(now)

    def active_count(self, key_id: int, now: float) -> int:
        cutoff = now - window_seconds()
        ids = self.by_key.get(key_id, ())
        return sum(1 for sid in ids if (s := self.sessions.get((key_id, sid))) is not None and s.last_seen > cutoff)

    async def admit(self, sid: str, entry: KeyEntry, now: float) -> None:
        assert entry.max_sessions is not None
        if self.active_count(entry.id, now) >= entry.max_sessions:
            raise too_many(entry.max_sessions)

    def note(self, session: Session) -> None:
        """Hook for the shared tracker (batching)."""

    def sweep(self, now: float) -> None:
        """Forget expired sessions, and the least recently seen beyond SESSION_MAX_TRACKED."""
        cutoff = now - window_seconds()
        limit = settings.SESSION_MAX_TRACKED
        while self.sessions:
            key = next(iter(self.sessions))
            if self.sessions[key].last_seen > cutoff and len(self.sessions) <= limit:
                return
            del self.sessions[key]
            if key[0] is not None:
                self.by_key.get(key[0], set()).discard(key[1])

    def listing(self) -> list[Session]:
        return list(self.sessions.values())


def too_many(limit: int) -> GatewayError:
    return GatewayError(
        429,
        f"This API key allows at most {limit} active sessions (maxSessions); continue one of them or wait until one"
        " has been idle for the session window",
        code="max_sessions_exceeded",
    )


async def track(request: Request, send: Any, entry: KeyEntry | None, payload: dict[str, Any], model: str) -> Any:
    """Note this request's session (429 when it would exceed the key's maxSessions); returns
    `send` with the session header added."""
    sid = session_id(request, entry, payload)
    await get_tracker().touch(sid, entry, model)
    return _SessionSend(send, sid)


_tracker: SessionTracker | None = None


def get_tracker() -> SessionTracker:
    global _tracker
    if _tracker is None:
        if settings.REDIS_URL:
            from .sessions_shared import SharedSessionTracker

            _tracker = SharedSessionTracker()
        else:
            _tracker = SessionTracker()
    return _tracker


def reset_tracker_for_tests() -> None:
    global _tracker
    _tracker = None


def session_list() -> list[dict[str, Any]]:
    """Active sessions, most recently seen first (GET /api/sessions)."""
    from datetime import UTC, datetime

    def when(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")

    cutoff = time.time() - window_seconds()
    rows = [s for s in get_tracker().listing() if s.last_seen > cutoff]
    rows.sort(key=lambda s: s.last_seen, reverse=True)
    return [
        {
            "id": s.id,
            "keyId": s.key_id,
            "keyName": s.key_name,
            "firstSeen": when(s.first_seen),
            "lastSeen": when(s.last_seen),
            "requests": s.requests,
            "model": s.model,
        }
        for s in rows
    ]
