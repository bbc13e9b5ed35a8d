"""Format-neutral pieces of the fake provider: scripted behaviours, recorded requests, streaming.

Each wire format (``openai_format`` today; Anthropic, Gemini, Responses later) builds its
route set from these pieces, so scripting and recording work the same for every format.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web


@dataclass
class Behaviour:
    """What the fake provider does with one request. Every field is optional."""

    status: int = 200
    error_message: str | None = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0
    stall: bool = False
    chunk_delay: float = 0
    disconnect_after_chunks: int | None = None
    reply: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    # Input tokens written to the prompt cache (Anthropic cache_creation_input_tokens).
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    # Reasoning the answer starts with, in each format's own shape (e.g. an Anthropic thinking block).
    thinking: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake provider received it; header names are lower-case."""

    id: int
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cache_creation_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class BehaviourSource(Protocol):
    """What a format's route set needs from the server: the behaviour scripted for a request."""

    def behaviour_for(self, request: RecordedRequest) -> Behaviour: ...


class StreamEnded(Exception):
    """Raised inside a handler when a stream's connection is gone; the server returns `response` as is."""

    def __init__(self, response: web.StreamResponse, *, client_gone: bool) -> None:
        super().__init__("client went away" if client_gone else "connection dropped on purpose")
        self.response = response
        self.client_gone = client_gone


RECORDED_KEY = web.RequestKey("recorded", RecordedRequest)


def recorded(request: web.Request) -> RecordedRequest:
    return request[RECORDED_KEY]


async def hold(behaviour: Behaviour) -> None:
    """Wait as scripted before the response headers; a stall waits until the client goes away."""
    if behaviour.delay:
        await asyncio.sleep(behaviour.delay)
    if behaviour.stall:
        await asyncio.Event().wait()


def raw_response(behaviour: Behaviour, *, content_type: str) -> web.Response:
    assert behaviour.body is not None
    headers = {"Content-Type": content_type, **behaviour.headers}
    return web.Response(status=behaviour.status, body=behaviour.body, headers=headers)


def tool_calls_of(behaviour: Behaviour) -> list[ToolCall]:
    calls = []
    for number, call in enumerate(behaviour.tool_calls or []):
        arguments = call.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = _compact_json(arguments)
        calls.append(ToolCall(id=call.get("id") or f"call_fake{number}", name=call["name"], arguments=arguments))
    return calls


def reply_of(behaviour: Behaviour, model: str) -> str | None:
    """The assistant text: scripted, or a greeting unless the answer is only tool calls."""
    if behaviour.reply is not None:
        return behaviour.reply
    return None if behaviour.tool_calls else f"Hello from {model}!"


def usage_of(behaviour: Behaviour, *, prompt_text: str, completion_text: str) -> Usage:
    """Scripted token counts, with defaults estimated at ~4 characters per token."""
    reasoning = behaviour.reasoning_tokens or 0
    prompt = behaviour.prompt_tokens if behaviour.prompt_tokens is not None else estimate_tokens(prompt_text)
    completion = behaviour.completion_tokens
    if completion is None:
        # Providers count reasoning tokens inside the completion tokens.
        completion = estimate_tokens(completion_text) + reasoning
    return Usage(prompt, completion, behaviour.cached_tokens or 0, reasoning, behaviour.cache_creation_tokens or 0)


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def split_words(text: str) -> list[str]:
    """Split before each word that follows whitespace, so the pieces join back to `text`."""
    return [piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece]


def split_pieces(text: str, count: int = 3) -> list[str]:
    """Split into up to `count` roughly equal pieces (streamed tool arguments arrive in fragments)."""
    if not text:
        return []
    size = math.ceil(len(text) / count)
    return [text[start : start + size] for start in range(0, len(text), size)]


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class ScriptedStream:
    """An SSE response that applies a behaviour's chunk delay and mid-stream disconnect."""

    def __init__(self, request: web.Request, behaviour: Behaviour) -> None:
        self._request = request
        self._behaviour = behaviour
        self._sent = 0
        self._counted = 0
        headers = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        self.response = web.StreamResponse(status=behaviour.status, headers={**headers, **behaviour.headers})

    async def open(self) -> None:
        await self.response.prepare(self._request)

    async def send(self, data: bytes, *, counted: bool = True) -> None:
        """Send one event; `counted` events are the content chunks `disconnect_after_chunks` counts."""
        if self._sent and self._behaviour.chunk_delay:
            await asyncio.sleep(self._behaviour.chunk_delay)
        try:
            await self.response.write(data)
        except ConnectionResetError as exc:
            raise StreamEnded(self.response, client_gone=True) from exc
        self._sent += 1
        self._counted += counted
        if self._counted == self._behaviour.disconnect_after_chunks:
            self._drop()

    async def close(self) -> None:
        try:
            await self.response.write_eof()
        except ConnectionResetError as exc:
            raise StreamEnded(self.response, client_gone=True) from exc

    def _drop(self) -> None:
        # abort() resets the TCP connection without the chunked-encoding terminator,
        # so the client sees a truncated body, like a provider crashing mid-answer.
        transport = self._request.transport
        if transport is not None:
            transport.abort()
        raise StreamEnded(self.response, client_gone=False)
