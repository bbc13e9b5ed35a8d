"""What happens around the ASGI `send` of a recorded /v1 request: the request log's capture
of bodies and headers, and the durable hand-off of the usage record before the last byte.

`usage_send` wraps `send` only when something needs it (REQUEST_LOG_BODIES, or the Redis
usage stream); otherwise it returns `send` itself and costs nothing.

- Bodies: the request body is teed from `receive` and the response body from `send` (the
  exact bytes the client gets: JSON, or the stream text in the client's format), each up to
  REQUEST_LOG_MAX_BODY_BYTES with a `truncated` flag. Credentials headers are dropped here;
  secrets inside the bodies are scrubbed by the writer (usage.services.request_logs), off
  the event loop. Bodies of noLog keys are dropped before a record leaves the process (the
  usage stream's publisher, or the writer).
- Durability: with the Redis usage stream, the record is in Redis before the final body
  message goes out, so a killed process has recorded every request it answered completely.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .http import Request
from .recorder import Record
from .usage_stream import publish_durably, usage_stream_enabled

# Never stored, whatever their value (client and provider credentials, sessions).
SECRET_HEADERS = frozenset(
    {b"authorization", b"proxy-authorization", b"x-api-key", b"x-goog-api-key", b"api-key", b"cookie"}
)
# Bodies of other content types (multipart uploads, audio) are stored as a size note only.
_TEXT_TYPES = (b"json", b"text/", b"event-stream", b"ndjson", b"xml", b"x-www-form-urlencoded")


class BodyTee:
    """The first `limit` bytes of a body, and whether there was more."""

    __slots__ = ("content_type", "limit", "parts", "size", "total", "truncated")

    def __init__(self, limit: int, content_type: bytes | None = None) -> None:
        self.limit = limit
        self.content_type = content_type
        self.parts: list[bytes] = []
        self.size = 0
        self.total = 0
        self.truncated = False

    def add(self, data: bytes) -> None:
        if not data:
            return
        self.total += len(data)
        room = self.limit - self.size
        if len(data) > room:
            self.truncated = True
            data = data[:room]
        if data:
            self.parts.append(data)
            self.size += len(data)

    def text(self) -> str:
        kind = (self.content_type or b"application/json").lower()
        if not any(t in kind for t in _TEXT_TYPES):
            return f"[{self.total} bytes of {kind.decode('latin-1')}]"
        return b"".join(self.parts).decode("utf-8", "replace")


class Capture:
    """One request's log: headers without credentials, both bodies (bounded)."""

    __slots__ = ("headers", "request", "response", "suppressed")

    def __init__(self, request: Request, limit: int) -> None:
        self.headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in request.headers.items()
            if name not in SECRET_HEADERS
        }
        self.request = BodyTee(limit, request.headers.get(b"content-type"))
        self.response = BodyTee(limit)
        self.suppressed = False  # the key is noLog: a row without headers or bodies

    def tee_receive(self, receive: Any) -> Any:
        tee = self.request

        async def receive_and_keep() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                tee.add(message.get("body", b""))
            return message

        return receive_and_keep

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (it travels through the usage stream); no bodies when suppressed."""
        if self.suppressed:
            return {}
        return {
            "headers": self.headers,
            "requestBody": self.request.text(),
            "requestTruncated": self.request.truncated,
            "responseBody": self.response.text(),
            "responseTruncated": self.response.truncated,
        }


def usage_send(request: Request, record: Record, send: Any) -> Any:
    """`send` for a recorded request: capturing bodies and/or recording durably first."""
    durable = usage_stream_enabled()
    capture = Capture(request, settings.REQUEST_LOG_MAX_BODY_BYTES) if settings.REQUEST_LOG_BODIES else None
    if capture is None and not durable:
        return send
    if capture is not None:
        record.body_log = capture
        request.receive = capture.tee_receive(request.receive)
    status = 0

    async def send_and_record(message: dict[str, Any]) -> None:
        nonlocal status
        kind = message["type"]
        if kind == "http.response.start":
            status = message["status"]
            if capture is not None:
                capture.response.content_type = _header(message.get("headers", ()), b"content-type")
        elif kind == "http.response.body":
            if capture is not None:
                capture.response.add(message.get("body", b""))
            if not message.get("more_body", False):
                # Handlers set the status after sending; the record travels now.
                record.status_code = record.status_code or status
                record.latency_ms = request.elapsed_ms()
                if durable:
                    # Frozen with the latency: the wait for Redis below is not upstream time.
                    record.attempt_end(record.latency_ms)
                    await publish_durably(record)
        await send(message)

    return send_and_record


def _header(headers: Any, name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return bytes(value)
    return None
