"""Recording what a request sends to its client, and sending it again.

Idempotency (gateway/idempotency.py) keeps the first request's answer and replays it to
duplicates. It does so at the ASGI level: `Capture` wraps `send`, passes every message on
and keeps a copy (status, headers, body chunks), so streams and JSON answers of every client
format are captured the same way, byte for byte. `replay` sends a kept answer again, a
stream chunk by chunk, so a streaming client sees a stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from .http import Headers, Request

# Messages carrying this key (set to True) are gateway additions for one client only, e.g.
# progress frames (gateway/progress.py): passed on, never kept for a replay.
NOT_CAPTURED = "omniroute.not_captured"
# Response headers that belong to one request, not to the answer.
_PER_REQUEST_HEADERS = frozenset({b"x-request-id", b"x-omniroute-progress", b"x-omniroute-session-id"})


@dataclass(slots=True)
class Captured:
    """A complete answer: what the client received, minus the per-request headers."""

    status: int
    headers: Headers
    chunks: list[bytes]
    digest: str = ""  # of the request body that produced it

    @property
    def size(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)

    @property
    def is_stream(self) -> bool:
        content_type = next((v for k, v in self.headers if k == b"content-type"), b"")
        return content_type.startswith((b"text/event-stream", b"application/x-ndjson"))

    def dumps(self) -> bytes:
        """A JSON form for Redis; latin-1 maps every byte to one code point and back."""
        return orjson.dumps(
            {
                "s": self.status,
                "h": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers],
                "c": [chunk.decode("latin-1") for chunk in self.chunks],
                "d": self.digest,
            }
        )

    @classmethod
    def loads(cls, raw: bytes) -> Captured:
        data = orjson.loads(raw)
        return cls(
            status=int(data["s"]),
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in data["h"]],
            chunks=[chunk.encode("latin-1") for chunk in data["c"]],
            digest=str(data.get("d", "")),
        )


class Capture:
    """An ASGI `send` that passes everything on and keeps a copy of the answer.

    Used by idempotency (every byte) and by the response cache (`limit`: an answer bigger
    than that is passed on but not kept; `extra_headers` go to the client only;
    `on_complete(body)`: called with the whole answer just before its last message goes out,
    so what it does is done before the client can see the answer end)."""

    __slots__ = (
        "chunks",
        "complete",
        "extra_headers",
        "headers",
        "limit",
        "on_complete",
        "overflowed",
        "send",
        "size",
        "status",
    )

    def __init__(
        self,
        send: Any,
        *,
        limit: int | None = None,
        extra_headers: Headers | None = None,
        on_complete: Callable[[bytes], None] | None = None,
    ) -> None:
        self.send = send
        self.status = 0
        self.headers: Headers = []
        self.chunks: list[bytes] = []
        self.complete = False
        self.limit = limit
        self.size = 0
        self.overflowed = False
        self.extra_headers = extra_headers or []
        self.on_complete = on_complete

    async def __call__(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.status = message["status"]
            headers = message.get("headers", ())
            self.headers = [(k, v) for k, v in headers if k.lower() not in _PER_REQUEST_HEADERS]
            if self.extra_headers:
                message = {**message, "headers": [*headers, *self.extra_headers]}
        elif kind == "http.response.body":
            body = message.get("body", b"")
            if body and not message.get(NOT_CAPTURED) and not self.overflowed:
                self.size += len(body)
                if self.limit is not None and self.size > self.limit:
                    self.overflowed, self.chunks = True, []
                else:
                    self.chunks.append(body)
            if not message.get("more_body", False):
                self.complete = True
                if self.on_complete is not None and not self.overflowed:
                    self.on_complete(b"".join(self.chunks))
        await self.send(message)

    def result(self, digest: str) -> Captured | None:
        """The answer when it is worth keeping: a 2xx, sent completely."""
        if not self.complete or self.overflowed or not 200 <= self.status < 300:
            return None
        return Captured(status=self.status, headers=self.headers, chunks=self.chunks, digest=digest)


async def replay(request: Request, send: Any, captured: Captured, extra: Headers) -> None:
    """Send a kept answer to this request's client, with this request's id and `extra` headers."""
    headers = [*captured.headers, (b"x-request-id", request.request_id), *extra]
    request.response_started = True
    await send({"type": "http.response.start", "status": captured.status, "headers": headers})
    chunks = captured.chunks or [b""]
    last = len(chunks) - 1
    for index, chunk in enumerate(chunks):
        if index == last:
            request.finished = True
        await send({"type": "http.response.body", "body": chunk, "more_body": index < last})
