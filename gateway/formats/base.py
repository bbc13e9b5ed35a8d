"""Client formats: how a client's request becomes canonical, and how answers go back.

The canonical form is the OpenAI Chat Completions shape, with a few documented extension
fields for what OpenAI chat cannot carry (see docs/API.md, "Translation"):

Request (dict): `model`, `messages`, `stream`, `max_tokens`, `temperature`, `top_p`, `stop`,
`tools`, `tool_choice`, `parallel_tool_calls`, `response_format`, `reasoning_effort`,
`seed`, `user`, plus extensions:
- `thinking_budget` (int): an explicit reasoning budget in tokens (Anthropic `budget_tokens`,
  Gemini `thinkingBudget`).
- assistant messages: `reasoning_content` (str) and `thinking_blocks`
  (`[{"type": "thinking", "thinking": str, "signature": str} | {"type": "redacted_thinking", "data": str}]`).
- tool calls: `extra_content: {"google": {"thought_signature": str}}` (Gemini).
- message `content` parts: `{"type": "text", "text"}` and `{"type": "image_url", "image_url": {"url", "detail"?}}`.

Response (dict): a `chat.completion` whose message may carry `reasoning_content` and
`thinking_blocks`; `usage` with `prompt_tokens_details.cached_tokens`,
`completion_tokens_details.reasoning_tokens` and the extension `cache_creation_input_tokens`.

Stream: `chat.completion.chunk` dicts. A delta may carry `role`, `content`,
`reasoning_content`, `thinking_signature` (closes the current thinking block),
`tool_calls` (`index`, then `id`/`type`/`function.name` once, `function.arguments` in
pieces, `extra_content`); one chunk carries `finish_reason`; the last has `choices: []` and
`usage`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from gateway.errors import GatewayError, openai_error_body

Canonical = dict[str, Any]


class StreamEncoder:
    """Turns canonical chunks into the client's stream bytes. One per response."""

    def feed(self, chunk: Canonical) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        """Bytes that close the stream normally (after the last chunk)."""
        raise NotImplementedError

    def failure(self, message: str) -> bytes | None:
        """The event that ends this stream after a mid-stream failure, when it depends on what was
        sent so far (Responses: `response.failed` with the response id and next sequence number);
        None: the client format's stateless `stream_error`."""
        return None


class ClientFormat:
    """One client wire format (OpenAI chat, Anthropic Messages, Responses, Gemini, Ollama)."""

    name: ClassVar[str] = ""
    # The provider wire format that speaks this client format natively (bytes pass through).
    native_provider_format: ClassVar[str | None] = None
    stream_content_type: ClassVar[bytes] = b"text/event-stream; charset=utf-8"
    # Bytes of the stream's terminal event(s): once relayed, the client has the whole answer,
    # so its hanging up before the gateway saw the provider's end is not a 499. Empty: the
    # format has no such event (the stream just ends).
    stream_end_markers: ClassVar[tuple[bytes, ...]] = ()

    def to_canonical(self, payload: dict[str, Any]) -> Canonical:
        """Validate the client's body (GatewayError 400 naming the field) and return canonical."""
        raise NotImplementedError

    def validate(self, payload: dict[str, Any]) -> Canonical | None:
        """Validate the client's body before routing. None defers `to_canonical` until the call
        turns out to be translated, so a passthrough never pays for a translation."""
        return self.to_canonical(payload)

    def render_response(self, response: Canonical) -> bytes:
        raise NotImplementedError

    def stream_encoder(self, *, model: str, request_id: str, include_usage: bool) -> StreamEncoder:
        raise NotImplementedError

    def error_body(self, err: GatewayError) -> bytes:
        return openai_error_body(err)

    def stream_error(self, err: GatewayError) -> bytes:
        """The event that ends a stream that failed after its first byte."""
        return b"data: " + openai_error_body(err) + b"\n\n"

    def client_wants_stream_usage(self, payload: dict[str, Any]) -> bool:
        return True

    def check_translatable(self, payload: dict[str, Any]) -> None:
        """Raise a 400 naming what of the client's body only its native provider format can carry.

        Called only when the request is translated, not passed through: `to_canonical` accepts
        such features (a same-format provider gets them untouched) and leaves them out.
        """


def sse_event(data: object, event: str | None = None) -> bytes:
    body = orjson.dumps(data)
    if event is None:
        return b"data: " + body + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + body + b"\n\n"
