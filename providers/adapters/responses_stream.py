"""Responses API streams: decoded to canonical chunks, or relayed untouched to Responses clients."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import orjson

from .base import ProviderError, StreamDecoder, StreamRelay, Usage, is_retryable, parse_retry_after
from .openai import SSELines

SIGNATURE_PREFIX = "openai-responses:"
_TERMINAL_TYPES = frozenset({"response.completed", "response.incomplete", "response.failed"})
_TERMINAL_MARKERS = tuple(name.encode() for name in _TERMINAL_TYPES)
# Only lifecycle events (created, in_progress, completed...) carry this key; in text it is escaped.
_LIFECYCLE_KEY = b'"response"'
_KEY_LEN = len(_LIFECYCLE_KEY)
_SEQUENCE = re.compile(rb'"sequence_number"\s*:\s*(\d+)')
# An event's start is at most this far before its type name (`data: {"type":"response.completed"`).
_WINDOW = 256
_MAX_HEAD = 1 << 20
# Error codes of failed responses -> the HTTP status that means the same.
_ERROR_STATUS = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "server_error": 500,
    "vector_store_timeout": 504,
}


def signature_of(item_id: str, encrypted: str) -> str:
    """A thinking-block signature that carries an OpenAI reasoning item (id + encrypted content)."""
    payload = orjson.dumps({"id": item_id, "encrypted_content": encrypted})
    return SIGNATURE_PREFIX + base64.urlsafe_b64encode(payload).decode()


def usage_from_responses(usage: object) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    input_details = usage.get("input_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or {}
    return Usage(
        prompt_tokens=int(usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int(input_details.get("cached_tokens") or 0) if isinstance(input_details, dict) else 0,
        reasoning_tokens=int(output_details.get("reasoning_tokens") or 0) if isinstance(output_details, dict) else 0,
        cache_creation_tokens=int(input_details.get("cache_write_tokens") or 0)
        if isinstance(input_details, dict)
        else 0,
    )


def canonical_usage(usage: object) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    parsed = usage_from_responses(usage)
    result: dict[str, Any] = {
        "prompt_tokens": parsed.prompt_tokens,
        "completion_tokens": parsed.completion_tokens,
        "total_tokens": int(usage.get("total_tokens") or parsed.prompt_tokens + parsed.completion_tokens),
        "prompt_tokens_details": {"cached_tokens": parsed.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": parsed.reasoning_tokens},
    }
    details = usage.get("input_tokens_details")
    written = details.get("cache_write_tokens") if isinstance(details, dict) else None
    if written:
        result["cache_creation_input_tokens"] = int(written)
    return result


def finish_reason_of(response: dict[str, Any], has_calls: bool) -> str:
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if response.get("status") == "incomplete" or reason:
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if has_calls else "stop"


def failed_error(error: object, fallback: str) -> ProviderError:
    """A failed response's `error` (or an `error` event) as a ProviderError."""
    code = error.get("code") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    message = str(message or code or fallback)
    status = _ERROR_STATUS.get(str(code), 400 if str(code).startswith(("invalid", "image", "empty")) else 502)
    return ProviderError(
        status,
        message,
        retryable=is_retryable(status),
        retry_after=parse_retry_after({}, message),
        code=str(code) if code else None,
    )


# -- decoding --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Call:
    index: int
    arguments: str = ""


@dataclass(slots=True)
class _Reasoning:
    text: str = ""
    part: int = 0


class ResponsesStreamDecoder(StreamDecoder):
    """Responses events -> canonical chunks: text, reasoning, tool calls (arguments exactly as
    streamed, completed from the `.done` events when a provider skips deltas), finish and usage."""

    def __init__(self, model: str) -> None:
        self.lines = SSELines()
        self.id = "resp"
        self.model = model
        self.created = 0
        self.calls: dict[int, _Call] = {}  # output_index -> tool call
        self.reasoning: dict[int, _Reasoning] = {}
        self.texts: dict[int, str] = {}

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._chunks(self.lines.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        return self._chunks(self.lines.finish())

    def _chunks(self, events: list[tuple[str | None, bytes]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, data in events:
            if data.strip() == b"[DONE]":
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise ProviderError(502, "Upstream sent an invalid stream event", retryable=False) from None
            if isinstance(obj, dict):
                out.extend(self._event(str(obj.get("type") or name), obj))
        return out

    def _event(self, kind: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
        raw_index = obj.get("output_index")
        index = raw_index if isinstance(raw_index, int) else -1
        if kind == "response.created":
            return self._created(obj.get("response") or {})
        if kind in ("response.output_text.delta", "response.refusal.delta"):
            self.texts[index] = self.texts.get(index, "") + (obj.get("delta") or "")
            return [self._chunk({"content": obj.get("delta") or ""})]
        if kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            part = obj.get("summary_index", obj.get("content_index")) or 0
            return self._reasoning(index, obj.get("delta") or "", part)
        if kind == "response.output_item.added":
            return self._added(index, obj.get("item") or {})
        if kind == "response.function_call_arguments.delta":
            return self._arguments(index, obj.get("delta") or "")
        if kind == "response.function_call_arguments.done":
            return self._arguments_done(index, obj.get("arguments"))
        if kind == "response.output_item.done":
            return self._done(index, obj.get("item") or {})
        if kind in ("response.completed", "response.incomplete"):
            return self._finished(obj.get("response") or {})
        if kind == "response.failed":
            response = obj.get("response") or {}
            raise failed_error(response.get("error"), "The upstream response failed")
        if kind == "error":
            raise failed_error(obj.get("error") if isinstance(obj.get("error"), dict) else obj, "Upstream stream error")
        return []

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def _created(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        self.id = str(response.get("id") or self.id)
        self.model = str(response.get("model") or self.model)
        self.created = int(response.get("created_at") or 0)
        return [self._chunk({"role": "assistant"})]

    def _added(self, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        if item.get("type") != "function_call":
            return []
        call = _Call(index=len(self.calls), arguments=item.get("arguments") or "")
        self.calls[index] = call
        function = {"name": item.get("name") or "", "arguments": call.arguments}
        opening = {
            "index": call.index,
            "id": item.get("call_id") or item.get("id"),
            "type": "function",
            "function": function,
        }
        return [self._chunk({"tool_calls": [opening]})]

    def _arguments(self, index: int, delta: str) -> list[dict[str, Any]]:
        call = self.calls.get(index)
        if call is None or not delta:
            return []
        call.arguments += delta
        return [self._chunk({"tool_calls": [{"index": call.index, "function": {"arguments": delta}}]})]

    def _arguments_done(self, index: int, arguments: object) -> list[dict[str, Any]]:
        """The final arguments: whatever the deltas did not carry yet is sent now."""
        call = self.calls.get(index)
        if call is None or not isinstance(arguments, str) or not arguments.startswith(call.arguments):
            return []
        return self._arguments(index, arguments[len(call.arguments) :])

    def _reasoning(self, index: int, delta: str, part: int) -> list[dict[str, Any]]:
        state = self.reasoning.setdefault(index, _Reasoning(part=part))
        if state.text and part != state.part:
            delta = "\n\n" + delta  # summary parts are paragraphs of one thinking text
        state.part = part
        state.text += delta
        return [self._chunk({"reasoning_content": delta})] if delta else []

    def _done(self, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        kind = item.get("type")
        if kind == "function_call":
            if index not in self.calls:
                added = self._added(index, {**item, "arguments": ""})
                return added + self._arguments_done(index, item.get("arguments"))
            return self._arguments_done(index, item.get("arguments"))
        if kind == "message" and not self.texts.get(index):
            text = "".join(p.get("text") or "" for p in item.get("content") or [] if isinstance(p, dict))
            return [self._chunk({"content": text})] if text else []
        if kind == "reasoning":
            return self._reasoning_done(index, item)
        return []

    def _reasoning_done(self, index: int, item: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        state = self.reasoning.get(index)
        if state is None:
            summary = [p.get("text") or "" for p in item.get("summary") or [] if isinstance(p, dict)]
            text = "\n\n".join(t for t in summary if t)
            if text:
                out.extend(self._reasoning(index, text, 0))
        encrypted = item.get("encrypted_content")
        if isinstance(encrypted, str) and encrypted and item.get("id"):
            delta: dict[str, Any] = {"thinking_signature": signature_of(str(item["id"]), encrypted)}
            if index not in self.reasoning:
                delta["reasoning_content"] = ""  # a thinking block with no visible text
            out.append(self._chunk(delta))
        return out

    def _finished(self, response: dict[str, Any]) -> list[dict[str, Any]]:
        finish = self._chunk({}, finish_reason_of(response, bool(self.calls)))
        usage = canonical_usage(response.get("usage"))
        if usage is None:
            return [finish]
        return [finish, {**self._chunk({}), "choices": [], "usage": usage}]


# -- passthrough -----------------------------------------------------------------------------------


class ResponsesPassthrough(StreamRelay):
    """Relays a Responses stream byte for byte to a Responses client.

    Only two events are parsed: the first (the response id, so that a failure later can end the
    stream with a `response.failed` the SDK accepts) and the terminal one (usage). The others are
    passed over with one byte search per chunk: only lifecycle events have a `"response"` key.
    """

    __slots__ = ("capture", "created_at", "ended", "head", "last", "model", "previous", "response_id", "tail", "usage")

    def __init__(self) -> None:
        self.head: bytes | None = b""
        self.tail = b""  # the end of what was relayed, for names cut across chunks
        self.previous = self.last = b""
        self.capture: bytes | None = None
        self.response_id: str | None = None
        self.model = ""
        self.created_at = 0
        self.ended = False
        self.usage: Usage | None = None

    def feed(self, data: bytes) -> bytes:
        if self.head is not None:
            self._read_head(data)
        if not self.ended:
            self._watch(data)
        self.previous, self.last = self.last, data
        return data

    def finish(self) -> bytes:
        return b""

    def failure(self, message: str) -> bytes | None:
        if self.ended:
            return b""
        if self.response_id is None:
            return None
        response = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "model": self.model,
            "status": "failed",
            "error": {"code": "server_error", "message": message},
            "incomplete_details": None,
            "output": [],
            "usage": None,
        }
        body = {"type": "response.failed", "sequence_number": self._last_sequence() + 1, "response": response}
        self.ended = True
        return b"event: response.failed\ndata: " + orjson.dumps(body) + b"\n\n"

    def _last_sequence(self) -> int:
        recent = self.previous + self.last
        position = recent.rfind(b'"sequence_number"')
        match = _SEQUENCE.match(recent, position) if position >= 0 else None
        return int(match.group(1)) if match else 0

    def _read_head(self, data: bytes) -> None:
        head = (self.head or b"") + data.replace(b"\r\n", b"\n")
        end = head.find(b"\n\n")
        if end < 0:
            self.head = head if len(head) < _MAX_HEAD else None
            return
        self.head = None
        obj = _event_json(head[:end])
        response = obj.get("response") if obj else None
        if isinstance(response, dict):
            self.response_id = response.get("id")
            self.model = str(response.get("model") or "")
            self.created_at = int(response.get("created_at") or 0)

    def _watch(self, data: bytes) -> None:
        """Find the terminal event with byte searches; parse only that event, for its usage."""
        if self.capture is not None:
            self._capture(self.capture + data)
            return
        seam = self.tail[-_KEY_LEN:] + data[:_KEY_LEN]
        if _LIFECYCLE_KEY not in data and _LIFECYCLE_KEY not in seam:
            self.tail = (self.tail + data)[-_WINDOW:] if len(data) < _WINDOW else data[-_WINDOW:]
            return
        window = self.tail + data
        found = [p for p in (window.find(marker) for marker in _TERMINAL_MARKERS) if p >= 0]
        self.tail = window[-_WINDOW:]
        if found:
            start = window.rfind(b"\n\n", 0, min(found))
            self.tail = b""
            self._capture(window[start + 2 if start >= 0 else 0 :])

    def _capture(self, buffer: bytes) -> None:
        buffer = buffer.replace(b"\r\n", b"\n")
        end = buffer.find(b"\n\n")
        if end < 0:
            self.capture = buffer
            return
        self.capture = None
        obj = _event_json(buffer[:end])
        if obj and obj.get("type") in _TERMINAL_TYPES:
            self.ended = True
            response = obj.get("response")
            if isinstance(response, dict) and response.get("usage"):
                self.usage = usage_from_responses(response["usage"])
            return
        self._watch(buffer[end + 2 :])  # a terminal name inside some other event: keep looking


def _event_json(event: bytes) -> dict[str, Any] | None:
    data = b"\n".join(line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:"))
    try:
        obj = orjson.loads(data) if data else None
    except orjson.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None
