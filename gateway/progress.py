"""Progress events in a stream: `X-OmniRoute-Progress: true` on a streaming request.

`wrap` puts a `ProgressSend` around the ASGI `send` of the stream. It answers with
`X-OmniRoute-Progress: enabled`, and every PROGRESS_INTERVAL_MS (2 s by default) a timer
sends a progress frame `{"tokens_generated": n, "elapsed_ms": m}`; the last frame, just
before the stream closes, adds `"done": true`. Frames only ever go between whole events:
the wrapper holds back the bytes of an event that is not complete yet (the client could not
parse them anyway), so the wire is always at an event boundary when a frame goes out.

`tokens_generated` is estimated from the content the client received so far: the text,
reasoning and tool-argument deltas of each event, about 4 characters per token (rounded up),
the rule of the gateway's other estimates.

Each format gets the framing its official SDK tolerates (verified against the SDK sources):
- anthropic: `event: progress` + `data: {...}` (the SDK's stream helpers skip unknown events);
- openai and responses: an SSE comment `: progress {...}`. The openai SDK would hand an
  `event: progress` frame to the caller as a chunk without `choices`, which breaks the usual
  `chunk.choices[0]` loop; every SSE parser ignores comment lines;
- gemini (`alt=sse`): `data: {"progress": {...}}`. google-genai parses every non-`data:` line
  as JSON and fails on `event:` or comment lines; this data frame parses as an empty chunk;
- ollama (NDJSON) and gemini without `alt=sse` (one JSON array): no framing fits, so no frames
  and the response header says `X-OmniRoute-Progress: disabled`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from typing import Any

import orjson
from django.conf import settings

from .capture import NOT_CAPTURED
from .formats.base import ClientFormat
from .http import Request

_ENABLED = (b"x-omniroute-progress", b"enabled")
_DISABLED = (b"x-omniroute-progress", b"disabled")
_FRAMED = frozenset({"openai", "responses", "anthropic", "gemini"})


def wanted(request: Request) -> bool:
    value = request.headers.get(b"x-omniroute-progress")
    return value is not None and value.strip().lower() in (b"true", b"1", b"yes")


def wrap(request: Request, send: Any, fmt: ClientFormat) -> Any:
    """`send` with progress frames when the client asked for them; else `send` itself."""
    if not wanted(request):
        return send
    client = fmt.name if fmt.stream_content_type.startswith(b"text/event-stream") else ""
    if client not in _FRAMED:
        return _HeaderSend(send)
    return ProgressSend(request, send, client)


class _HeaderSend:
    """Says `disabled` for formats without a framing for progress events."""

    __slots__ = ("send",)

    def __init__(self, send: Any) -> None:
        self.send = send

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), _DISABLED]}
        await self.send(message)


def _frame(client: str, data: dict[str, Any]) -> bytes:
    body = orjson.dumps(data)
    if client == "anthropic":
        return b"event: progress\ndata: " + body + b"\n\n"
    if client == "gemini":
        return b"data: " + orjson.dumps({"progress": data}) + b"\r\n\r\n"
    return b": progress " + body + b"\n\n"


def _boundary(data: bytes) -> int:
    """Where the last complete event of `data` ends (0: none)."""
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def _texts(client: str, event: Any) -> list[Any]:
    """The generated content in one decoded event of the client's format."""
    if not isinstance(event, dict):
        return []
    if client == "openai":
        out: list[Any] = []
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            out += [delta.get("content"), delta.get("reasoning_content")]
            out += [(c.get("function") or {}).get("arguments") for c in delta.get("tool_calls") or ()]
        return out
    if client == "anthropic":
        delta = event.get("delta") or {}
        return [delta.get("text"), delta.get("thinking"), delta.get("partial_json")]
    if client == "responses":
        kind = event.get("type")
        return [event.get("delta")] if isinstance(kind, str) and kind.endswith(".delta") else []
    parts: list[Any] = []  # gemini
    for candidate in event.get("candidates") or ():
        for part in (candidate.get("content") or {}).get("parts") or ():
            parts += [part.get("text"), orjson.dumps(part["functionCall"]).decode() if "functionCall" in part else None]
    return parts


def count_chars(client: str, events: bytes) -> int:
    """Characters of generated content in complete SSE events."""
    total = 0
    for line in events.split(b"\n"):
        if not line.startswith(b"data:"):
            continue
        try:
            event = orjson.loads(line[5:].strip())
        except orjson.JSONDecodeError:
            continue  # `[DONE]` and the like
        total += sum(len(t) for t in _texts(client, event) if isinstance(t, str))
    return total


class ProgressSend:
    """The stream's `send` with progress frames interleaved (see the module docstring)."""

    def __init__(self, request: Request, send: Any, client: str) -> None:
        self.request = request
        self.send = send
        self.client = client
        self.pending = b""
        self.chars = 0
        self.lock = asyncio.Lock()
        self.closed = False
        self.timer: asyncio.Task[None] | None = None
        self.owner = asyncio.current_task()  # the request's task: frames stop when it ends

    def _progress(self, *, done: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "tokens_generated": math.ceil(self.chars / 4),
            "elapsed_ms": int(self.request.elapsed_ms()),
        }
        if done:
            data["done"] = True
        return data

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), _ENABLED]}
            if message.get("status", 200) < 300:
                self.timer = asyncio.get_running_loop().create_task(self._tick())
            else:
                self.closed = True  # an error body: no frames in it
            return await self.send(message)
        if message["type"] != "http.response.body" or self.closed:
            return await self.send(message)
        data = self.pending + message.get("body", b"")
        final = not message.get("more_body", False)
        cut = len(data) if final else _boundary(data)
        complete, self.pending = data[:cut], data[cut:]
        self.chars += count_chars(self.client, complete)
        async with self.lock:
            if not final:
                if complete:
                    await self.send({"type": "http.response.body", "body": complete, "more_body": True})
                return
            self.closed = True
            if self.timer is not None:
                self.timer.cancel()
            if complete:
                await self.send({"type": "http.response.body", "body": complete, "more_body": True})
            frame = _frame(self.client, self._progress(done=True))
            await self.send({"type": "http.response.body", "body": frame, "more_body": False, NOT_CAPTURED: True})

    async def _tick(self) -> None:
        interval = float(settings.PROGRESS_INTERVAL_MS) / 1000
        # Ends with the stream; a send that fails (the client went away) ends it as well.
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(interval)
                async with self.lock:
                    if self.closed or self.request.disconnected or (self.owner is not None and self.owner.done()):
                        return
                    frame = _frame(self.client, self._progress())
                    await self.send(
                        {"type": "http.response.body", "body": frame, "more_body": True, NOT_CAPTURED: True}
                    )
