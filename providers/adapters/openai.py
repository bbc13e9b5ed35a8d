"""OpenAI Chat Completions wire format (OpenAI and every OpenAI-compatible provider)."""

from __future__ import annotations

from typing import Any

import orjson

from .base import (
    ChatAdapter,
    Credential,
    ProviderError,
    StreamDecoder,
    StreamRelay,
    UpstreamRequest,
    Usage,
    error_message_from_body,
)

_JSON = "application/json"
# Canonical extension fields OpenAI-compatible providers do not know.
_MESSAGE_EXTENSIONS = ("thinking_blocks",)
_REQUEST_EXTENSIONS = ("thinking_budget",)


def usage_from_openai(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0) if isinstance(prompt_details, dict) else 0,
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0)
        if isinstance(completion_details, dict)
        else 0,
        # The canonical form's extension (translated Anthropic answers); OpenAI never sends it.
        cache_creation_tokens=int(usage.get("cache_creation_input_tokens") or 0),
    )


class OpenAIPassthrough(StreamRelay):
    """Relays OpenAI SSE unchanged, event by event; reads `usage`; drops the usage-only chunk
    the client did not ask for (the gateway always asks the provider for it)."""

    __slots__ = ("buffer", "done", "drop_usage_chunk", "usage")

    def __init__(self, drop_usage_chunk: bool) -> None:
        self.buffer = b""
        self.drop_usage_chunk = drop_usage_chunk
        self.usage: Usage | None = None
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        data = self.buffer + data if self.buffer else data
        end = data.rfind(b"\n\n")
        if end < 0:
            self.buffer = data
            return b""
        self.buffer = data[end + 2 :]
        complete = data[: end + 2]
        if b"[DONE]" not in complete:
            mentions = complete.count(b'"usage"')
            # OpenAI repeats "usage":null in every chunk once usage is requested: nothing to read there.
            if mentions == 0 or mentions == complete.count(b'"usage":null'):
                return complete
        out = []
        for event in complete.split(b"\n\n"):
            if not event:
                continue
            if b"[DONE]" in event:
                self.done = True
            elif b'"usage"' in event and b'"usage":null' not in event and self._take_usage(event):
                continue
            out.append(event + b"\n\n")
        return b"".join(out)

    def finish(self) -> bytes:
        return self.buffer + b"\n\n" if self.buffer.strip() else b""

    def _take_usage(self, event: bytes) -> bool:
        """Record usage from the event; True when the event should not reach the client."""
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                try:
                    obj = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    return False
                if isinstance(obj, dict) and obj.get("usage"):
                    self.usage = usage_from_openai(obj["usage"])
                    return self.drop_usage_chunk and not obj.get("choices")
        return False


class SSELines:
    """Incremental SSE parser: complete events as (event name, data) pairs."""

    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[str | None, bytes]]:
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        data = self.buffer + data if self.buffer else data
        end = data.rfind(b"\n\n")
        if end < 0:
            self.buffer = data
            return []
        self.buffer = data[end + 2 :]
        return [parsed for raw in data[:end].split(b"\n\n") if (parsed := _parse_event(raw)) is not None]

    def finish(self) -> list[tuple[str | None, bytes]]:
        rest, self.buffer = self.buffer, b""
        parsed = _parse_event(rest.strip(b"\n")) if rest.strip() else None
        return [parsed] if parsed is not None else []


def _parse_event(raw: bytes) -> tuple[str | None, bytes] | None:
    event: str | None = None
    data: list[bytes] = []
    for line in raw.split(b"\n"):
        if line.startswith(b"data:"):
            data.append(line[6:] if line[5:6] == b" " else line[5:])
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode()
    if not data:
        return None
    return event, b"\n".join(data)


class OpenAIStreamDecoder(StreamDecoder):
    __slots__ = ("lines",)

    def __init__(self) -> None:
        self.lines = SSELines()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._chunks(self.lines.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        return self._chunks(self.lines.finish())

    @staticmethod
    def _chunks(events: list[tuple[str | None, bytes]]) -> list[dict[str, Any]]:
        chunks = []
        for _, data in events:
            if data.strip() == b"[DONE]":
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise ProviderError(502, "Upstream sent an invalid stream event", retryable=False) from None
            if isinstance(obj, dict) and "error" in obj and "choices" not in obj:
                message, _ = error_message_from_body(data)
                raise ProviderError(502, f"Upstream stream error: {message}", retryable=False)
            if isinstance(obj, dict):
                chunks.append(obj)
        return chunks


def _strip_extensions(body: dict[str, Any]) -> dict[str, Any]:
    upstream = {k: v for k, v in body.items() if k not in _REQUEST_EXTENSIONS}
    messages = upstream.get("messages")
    if isinstance(messages, list) and any(isinstance(m, dict) and "thinking_blocks" in m for m in messages):
        upstream["messages"] = [
            {k: v for k, v in m.items() if k not in _MESSAGE_EXTENSIONS} if isinstance(m, dict) else m for m in messages
        ]
    return upstream


class OpenAIAdapter(ChatAdapter):
    format = "openai"

    def chat_request(self, cred: Credential, model_id: str, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        return self.passthrough_request(cred, model_id, _strip_extensions(body), stream=stream)

    def passthrough_request(
        self, cred: Credential, model_id: str, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        upstream = dict(payload)
        upstream["model"] = model_id
        headers = {**cred.headers, "Content-Type": _JSON}
        if stream:
            upstream["stream"] = True
            options = upstream.get("stream_options")
            upstream["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            headers["Accept"] = "text/event-stream"
        else:
            upstream.pop("stream_options", None)
            if upstream.get("stream"):
                upstream["stream"] = False
        path = cred.provider.chat_path or "/chat/completions"  # custom nodes may set their own
        return UpstreamRequest("POST", cred.base_url + path, headers, orjson.dumps(upstream))

    def to_canonical_response(self, obj: dict[str, Any], *, model: str) -> dict[str, Any]:
        return obj

    def stream_decoder(self, *, model: str) -> StreamDecoder:
        return OpenAIStreamDecoder()

    def passthrough_relay(self, *, client_wants_usage: bool) -> StreamRelay:
        return OpenAIPassthrough(drop_usage_chunk=not client_wants_usage)

    def usage_from_response(self, obj: dict[str, Any]) -> Usage:
        return usage_from_openai(obj.get("usage"))

    def response_error(self, obj: dict[str, Any]) -> str | None:
        if "error" in obj and "choices" not in obj:
            err = obj["error"]
            return str(err.get("message") if isinstance(err, dict) else err)
        return None


ADAPTER = OpenAIAdapter()
