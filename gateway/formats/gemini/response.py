"""Canonical answers -> Gemini: `GenerateContentResponse` bodies and `streamGenerateContent`.

A stream is a sequence of `GenerateContentResponse` objects, each holding only the new parts:
SSE `data: {...}` events with `?alt=sse` (what the google-genai SDK asks for), else one JSON
array written element by element. Function calls go out whole, as Gemini sends them: their
streamed argument pieces are buffered until the call is complete (the next call starts, or
the answer finishes). The last element carries `finishReason` and `usageMetadata`.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.formats.base import Canonical, StreamEncoder
from providers.adapters.gemini.wire import (
    assistant_to_model_parts,
    finish_to_gemini,
    function_call_part,
    usage_to_gemini,
)

from .signatures import to_client


def _response_id(canonical_id: Any) -> str:
    text = str(canonical_id or "")
    return text.removeprefix("chatcmpl-") or "omniroute"


def render_response(response: Canonical) -> dict[str, Any]:
    candidates = []
    for number, choice in enumerate(response.get("choices") or []):
        message = choice.get("message") or {}
        parts = assistant_to_model_parts(message, unsigned_thoughts=True, signature_of=to_client)
        candidate: dict[str, Any] = {"content": _content(parts)}
        reason = finish_to_gemini(choice.get("finish_reason"))
        if reason:
            candidate["finishReason"] = reason
        candidate["index"] = choice.get("index", number)
        candidates.append(candidate)
    body: dict[str, Any] = {"candidates": candidates}
    if response.get("usage"):
        body["usageMetadata"] = usage_to_gemini(response["usage"])
    body["modelVersion"] = response.get("model") or ""
    body["responseId"] = _response_id(response.get("id"))
    return body


def _content(parts: list[dict[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {"role": "model"}
    if parts:
        content["parts"] = parts
    return content


class _ToolBuffer:
    """Tool calls being streamed, by index, until each is complete."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}

    def add(self, piece: dict[str, Any]) -> list[dict[str, Any]]:
        """Take one streamed piece; return the parts of calls it shows complete (a new index)."""
        index = piece.get("index", 0)
        done = self.flush(below=index) if index not in self.calls else []
        call = self.calls.setdefault(index, {"id": None, "name": "", "arguments": [], "extra": None})
        function = piece.get("function") or {}
        if piece.get("id"):
            call["id"] = piece["id"]
        if function.get("name"):
            call["name"] = function["name"]
        if function.get("arguments"):
            call["arguments"].append(function["arguments"])
        if piece.get("extra_content"):
            call["extra"] = piece["extra_content"]
        return done

    def flush(self, below: int | None = None) -> list[dict[str, Any]]:
        parts = []
        for index in sorted(self.calls):
            if below is not None and index >= below:
                continue
            call = self.calls.pop(index)
            canonical = {
                "id": call["id"],
                "function": {"name": call["name"], "arguments": "".join(call["arguments"])},
                "extra_content": call["extra"],
            }
            parts.append(function_call_part(canonical, to_client))
        return parts


class GeminiStreamEncoder(StreamEncoder):
    """Canonical chunks -> Gemini stream elements, framed by `_frame` (SSE here)."""

    __slots__ = ("closed", "finish_reason", "model", "response_id", "signature", "tools", "usage")

    def __init__(self, *, model: str) -> None:
        self.model = model
        self.response_id = ""
        self.tools = _ToolBuffer()
        self.signature: str | None = None  # waits for the next text part, as Gemini places it
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.closed = False

    def feed(self, chunk: Canonical) -> bytes:
        if self.closed:
            return b""
        if not self.response_id and chunk.get("id"):
            self.response_id = _response_id(chunk["id"])
        if chunk.get("model"):
            self.model = chunk["model"]
        parts: list[dict[str, Any]] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) == 0:
                parts.extend(self._parts(choice.get("delta") or {}))
                if choice.get("finish_reason"):
                    self.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if self.finish_reason and self.usage:
            # The final element: pending calls, finishReason and usage together, as Gemini ends.
            return self._frame(self._final(parts))
        return self._frame(self._element(parts)) if parts else b""

    def finish(self) -> bytes:
        if self.closed:
            return b""
        return self._frame(self._final([]))

    def _parts(self, delta: dict[str, Any]) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            parts.extend(self._loose_signature())
            parts.append({"text": reasoning, "thought": True})
        if isinstance(delta.get("thinking_signature"), str) and delta["thinking_signature"]:
            parts.extend(self._loose_signature())
            self.signature = to_client(delta["thinking_signature"])
        content = delta.get("content")
        if isinstance(content, str) and content:
            parts.extend(self.tools.flush())
            part: dict[str, Any] = {"text": content}
            if self.signature:
                part["thoughtSignature"], self.signature = self.signature, None
            parts.append(part)
        for piece in delta.get("tool_calls") or []:
            if isinstance(piece, dict):
                parts.extend(self._loose_signature())
                parts.extend(self.tools.add(piece))
        return parts

    def _loose_signature(self) -> list[dict[str, Any]]:
        """A signature no text part followed: it goes out on an empty thought part of its own."""
        if not self.signature:
            return []
        part = {"text": "", "thought": True, "thoughtSignature": self.signature}
        self.signature = None
        return [part]

    def _final(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        self.closed = True
        parts = parts + self._loose_signature() + self.tools.flush()
        # An empty text part keeps `chunk.text` a string for SDK users who concatenate it.
        element = self._element(parts or [{"text": ""}])
        reason = finish_to_gemini(self.finish_reason)
        if reason:
            element["candidates"][0]["finishReason"] = reason
        if self.usage:
            element["usageMetadata"] = usage_to_gemini(self.usage)
        return element

    def _element(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0}],
            "modelVersion": self.model,
            "responseId": self.response_id or "omniroute",
        }

    def _frame(self, element: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(element) + b"\r\n\r\n"


class GeminiArrayEncoder(GeminiStreamEncoder):
    """Without `alt=sse` Gemini streams one JSON array: `[` then the elements separated by
    `,\r\n`, then `]`. A failure mid-stream closes the array with an error element."""

    __slots__ = ("count",)

    def __init__(self, *, model: str) -> None:
        super().__init__(model=model)
        self.count = 0

    def finish(self) -> bytes:
        out = super().finish()
        return out + b"]"

    def failure(self, message: str) -> bytes | None:
        error = {"error": {"code": 502, "message": message, "status": "UNAVAILABLE"}}
        self.closed = True
        return self._frame(error) + b"]"

    def _frame(self, element: dict[str, Any]) -> bytes:
        self.count += 1
        return (b"[" if self.count == 1 else b",\r\n") + orjson.dumps(element)
