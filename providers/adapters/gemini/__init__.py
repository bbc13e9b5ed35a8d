"""Gemini `generateContent` wire format (Google AI Studio and Gemini-compatible endpoints).

`POST {base}/models/{model}:generateContent`, or `:streamGenerateContent?alt=sse` for a
stream, with the key in `x-goog-api-key`. Translation lives in `request` (canonical ->
Gemini) and `response` (Gemini -> canonical); `wire` holds what both directions share.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.adapters.base import (
    ChatAdapter,
    Credential,
    ProviderError,
    StreamDecoder,
    StreamRelay,
    UpstreamRequest,
    Usage,
)

from .errors import provider_error, stream_error
from .request import build_request
from .response import GeminiStreamDecoder, to_canonical_response
from .wire import pick, usage_to_canonical

_JSON = "application/json"


def usage_of(meta: Any) -> Usage:
    usage = usage_to_canonical(meta)
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        cached_tokens=usage["prompt_tokens_details"]["cached_tokens"],
        reasoning_tokens=usage["completion_tokens_details"]["reasoning_tokens"],
    )


def _event_end(data: bytes) -> int:
    """End of the last complete SSE event in `data` (Gemini frames events with CRLF CRLF), or -1."""
    lf = data.rfind(b"\n\n")
    crlf = data.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else -1, crlf + 4 if crlf >= 0 else -1)


class GeminiPassthrough(StreamRelay):
    """Relays Gemini SSE unchanged, event by event. Every event repeats `usageMetadata`; only the
    line of the last one is kept, and parsed when the usage is read (not per event).

    An error event raises ProviderError; when good events came in the same read, they are relayed
    first and the error is raised on the next read (so a first-event error can still fall back).
    """

    __slots__ = ("_usage", "_usage_at", "_usage_source", "buffer", "failed")

    def __init__(self) -> None:
        self.buffer = b""
        self._usage_source = b""
        self._usage_at = 0
        self._usage: Usage | None = None
        self.failed: ProviderError | None = None

    @property
    def usage(self) -> Usage | None:
        if self._usage is None and self._usage_source:
            events, at = self._usage_source, self._usage_at
            start = events.rfind(b"data:", 0, at)
            end = events.find(b"\n", at)
            line = events[start + 5 if start >= 0 else 0 : end if end >= 0 else len(events)]
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                self._usage = usage_of(pick(obj, "usageMetadata"))
        return self._usage

    @usage.setter
    def usage(self, value: Usage | None) -> None:
        self._usage = value

    def feed(self, data: bytes) -> bytes:
        if self.failed is not None:
            raise self.failed
        data = self.buffer + data if self.buffer else data
        end = _event_end(data)
        if end < 0:
            self.buffer = data
            return b""
        self.buffer = data[end:]
        return self._relay(data[:end])

    def finish(self) -> bytes:
        if self.failed is not None:
            raise self.failed
        rest, self.buffer = self.buffer, b""
        if not rest.strip():
            return b""
        return self._relay(rest + b"\r\n\r\n")

    def _relay(self, events: bytes) -> bytes:
        if b'"error"' in events:
            events = self._cut_at_error(events)
        at = events.rfind(b'"usageMetadata"')
        if at >= 0:
            # Only remember where it is: the line is cut out and parsed when usage is read.
            self._usage_source, self._usage_at = events, at
            self._usage = None
        return events

    def _cut_at_error(self, events: bytes) -> bytes:
        """The events before the first error event; the error is raised now or on the next read."""
        offset = 0
        for line in events.splitlines(keepends=True):
            if line.startswith(b"data:") and b'"error"' in line:
                try:
                    obj = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    obj = None
                if isinstance(obj, dict) and "error" in obj and "candidates" not in obj:
                    error = stream_error(obj)
                    if offset == 0:
                        raise error
                    self.failed = error
                    return events[:offset]
            offset += len(line)
        return events


def model_path(base_url: str, model_id: str) -> str:
    # Tuned models live under tunedModels/, not models/.
    name = model_id if model_id.startswith(("models/", "tunedModels/")) else f"models/{model_id}"
    return f"{base_url}/{name}"


class GeminiAdapter(ChatAdapter):
    format = "gemini"

    def chat_request(self, cred: Credential, model_id: str, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        return self._request(cred, model_id, build_request(body, model_id), stream=stream)

    def passthrough_request(
        self, cred: Credential, model_id: str, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        return self._request(cred, model_id, payload, stream=stream)

    @staticmethod
    def _request(cred: Credential, model_id: str, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        headers = {**cred.headers, "Content-Type": _JSON}
        action = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        if stream:
            headers["Accept"] = "text/event-stream"
        return UpstreamRequest("POST", model_path(cred.base_url, model_id) + action, headers, orjson.dumps(body))

    def to_canonical_response(self, obj: dict[str, Any], *, model: str) -> dict[str, Any]:
        return to_canonical_response(obj, model=model)

    def stream_decoder(self, *, model: str) -> StreamDecoder:
        return GeminiStreamDecoder(model)

    def passthrough_relay(self, *, client_wants_usage: bool) -> StreamRelay:
        return GeminiPassthrough()

    def usage_from_response(self, obj: dict[str, Any]) -> Usage:
        return usage_of(pick(obj, "usageMetadata"))

    def response_error(self, obj: dict[str, Any]) -> str | None:
        if "error" in obj and "candidates" not in obj:
            error = obj["error"]
            return str(error.get("message") if isinstance(error, dict) else error)
        return None

    def error_from_response(self, status: int, headers: dict[str, str], body: bytes) -> ProviderError:
        return provider_error(status, headers, body)


ADAPTER = GeminiAdapter()
