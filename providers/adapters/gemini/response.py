"""Gemini answers -> canonical: a `GenerateContentResponse` -> `chat.completion`, and the
`alt=sse` stream -> `chat.completion.chunk` dicts."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from providers.adapters.base import ProviderError, StreamDecoder
from providers.adapters.openai import SSELines

from .errors import stream_error
from .wire import finish_to_canonical, model_parts_to_assistant, pick, tool_call_of, usage_to_canonical


def mint_call_id() -> str:
    """Gemini's function calls usually have no id; OpenAI-style clients need one to answer."""
    return f"call_{uuid.uuid4().hex[:24]}"


def completion_id(obj: dict[str, Any]) -> str:
    response_id = pick(obj, "responseId")
    return f"chatcmpl-{response_id}" if isinstance(response_id, str) and response_id else f"chatcmpl-{uuid.uuid4().hex}"


def _model_of(obj: dict[str, Any], model: str) -> str:
    version = pick(obj, "modelVersion")
    return version if isinstance(version, str) and version else model


def _blocked(obj: dict[str, Any]) -> bool:
    feedback = pick(obj, "promptFeedback")
    return isinstance(feedback, dict) and bool(pick(feedback, "blockReason"))


def to_canonical_response(obj: dict[str, Any], *, model: str) -> dict[str, Any]:
    choices = []
    for number, candidate in enumerate(pick(obj, "candidates") or []):
        content = candidate.get("content") or {}
        message, _ = model_parts_to_assistant(content.get("parts") or [], mint_call_id)
        index = candidate.get("index")
        choices.append(
            {
                "index": index if isinstance(index, int) else number,
                "message": message,
                "finish_reason": finish_to_canonical(
                    pick(candidate, "finishReason"), has_tool_calls="tool_calls" in message
                )
                or "stop",
            }
        )
    if not choices:
        # No candidate at all: the prompt itself was blocked (promptFeedback.blockReason).
        reason = "content_filter" if _blocked(obj) else "stop"
        choices.append({"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": reason})
    response: dict[str, Any] = {
        "id": completion_id(obj),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": _model_of(obj, model),
        "choices": choices,
    }
    usage = usage_to_canonical(pick(obj, "usageMetadata"))
    if usage is not None:
        response["usage"] = usage
    return response


class GeminiStreamDecoder(StreamDecoder):
    """Each SSE event is a whole `GenerateContentResponse` holding the new parts. Function calls
    arrive complete, so each becomes one tool-call delta with its full arguments. Usage is
    repeated in every event; the last one is sent once, as the final usage-only chunk."""

    __slots__ = ("calls", "cr", "created", "failed", "id", "lines", "model", "started", "usage")

    def __init__(self, model: str) -> None:
        self.lines = SSELines()
        self.cr = False
        self.model = model
        self.id = ""
        self.created = int(time.time())
        self.started = False
        self.calls: dict[int, int] = {}  # candidate index -> tool calls seen
        self.usage: dict[str, Any] | None = None
        self.failed: ProviderError | None = None

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        # Gemini frames events with CRLF; SSELines normalises CRLF within one read only, so a
        # CR that ends this read waits for the LF that starts the next.
        if self.cr:
            data, self.cr = b"\r" + data, False
        if data.endswith(b"\r"):
            data, self.cr = data[:-1], True
        return self._events(self.lines.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        chunks = self._events(self.lines.finish())
        if self.usage is not None:
            chunks.append(self._chunk([], usage=self.usage))
        return chunks

    def _events(self, events: list[tuple[str | None, bytes]]) -> list[dict[str, Any]]:
        """Chunks of the events; an error event raises, after the chunks before it went out."""
        if self.failed is not None:
            raise self.failed
        chunks: list[dict[str, Any]] = []
        for _, raw in events:
            try:
                chunks.extend(self._event(raw))
            except ProviderError as exc:
                if not chunks:
                    raise
                self.failed = exc
                break
        return chunks

    def _event(self, raw: bytes) -> list[dict[str, Any]]:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ProviderError(502, "Upstream sent an invalid stream event", retryable=False) from None
        if not isinstance(obj, dict):
            return []
        if "error" in obj and "candidates" not in obj:
            raise stream_error(obj)
        if not self.id:
            self.id = completion_id(obj)
            self.model = _model_of(obj, self.model)
        usage = usage_to_canonical(pick(obj, "usageMetadata"))
        if usage is not None:
            self.usage = usage
        chunks = []
        for number, candidate in enumerate(pick(obj, "candidates") or []):
            index = candidate.get("index") if isinstance(candidate.get("index"), int) else number
            chunks.extend(self._candidate(index, candidate))
        if not pick(obj, "candidates") and _blocked(obj):
            chunks.append(self._choice(0, {}, "content_filter"))
        return chunks

    def _candidate(self, index: int, candidate: dict[str, Any]) -> list[dict[str, Any]]:
        chunks = [self._choice(index, delta) for delta in self._deltas(index, candidate)]
        reason = finish_to_canonical(pick(candidate, "finishReason"), has_tool_calls=self.calls.get(index, 0) > 0)
        if reason is not None:
            chunks.append(self._choice(index, {}, reason))
        return chunks

    def _deltas(self, index: int, candidate: dict[str, Any]) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = []
        for part in (candidate.get("content") or {}).get("parts") or []:
            signature = pick(part, "thoughtSignature")
            call = pick(part, "functionCall")
            if isinstance(call, dict):
                tool = tool_call_of(call, signature, mint_call_id)
                tool["index"] = self.calls.get(index, 0)
                self.calls[index] = tool["index"] + 1
                deltas.append({"tool_calls": [tool]})
                continue
            text = part.get("text")
            if not isinstance(text, str):
                continue
            if part.get("thought") is True:
                if text:
                    deltas.append({"reasoning_content": text})
                if signature:
                    deltas.append({"thinking_signature": signature})
                continue
            # A signature on answer text closes the thinking before it (often on an empty part).
            if signature:
                deltas.append({"thinking_signature": signature})
            if text:
                deltas.append({"content": text})
        return deltas

    def _choice(self, index: int, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        if not self.started:
            self.started = True
            delta = {"role": "assistant", **delta}
        return self._chunk([{"index": index, "delta": delta, "finish_reason": finish_reason}])

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id or f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return chunk
