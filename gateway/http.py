"""Small ASGI helpers for the data plane: request view, body reading, responses."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from typing import Any

from .errors import GatewayError

Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]
# Request ids: a random per-process prefix and a counter — unique across processes and
# hosts without a system call per request (os.urandom was ~4% of a request's CPU).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")

# ASGI scope key of in-process calls (gateway/inprocess.py); its value names the caller.
INTERNAL_CALL = "omniroute.internal"
JSON_HEADERS: Headers = [(b"content-type", b"application/json")]
SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class Request:
    """What the pipeline needs of an ASGI HTTP scope, read once."""

    __slots__ = (
        "disconnected",
        "finished",
        "headers",
        "method",
        "path",
        "query_string",
        "receive",
        "request_id",
        "response_started",
        "scope",
        "started",
    )

    def __init__(self, scope: Scope, receive: Any) -> None:
        self.scope = scope
        self.receive = receive
        self.started = time.perf_counter()
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.query_string: bytes = scope.get("query_string", b"")
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers[name] = value  # ASGI servers give lower-case names
        self.headers = headers
        rid = headers.get(b"x-request-id")
        if not rid or not _SAFE_REQUEST_ID.match(rid):
            rid = (_ID_PREFIX + format(next(_ID_COUNTER), "016x")).encode()
        self.request_id: bytes = rid
        self.disconnected = False
        self.finished = False
        self.response_started = False

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


async def read_body(request: Request, limit: int) -> bytes:
    """The whole request body, or 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get(b"content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise _too_large(limit)
        except ValueError:
            raise GatewayError(400, "Invalid Content-Length header") from None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            request.disconnected = True
            raise asyncio.CancelledError("client disconnected while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> GatewayError:
    mb = limit / (1024 * 1024)
    return GatewayError(413, f"Request body too large. Maximum allowed: {mb:g} MB", code="payload_too_large")


async def send_response(send: Any, status: int, body: bytes, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def watch_disconnect(request: Request, task: asyncio.Task[Any]) -> None:
    """Cancel `task` when the client goes away before the response is finished."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            if not request.finished:
                request.disconnected = True
                task.cancel()
            return
