"""OpenAI Chat Completions as a client format (the canonical form itself)."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import bad_request

from .base import Canonical, ClientFormat, StreamEncoder, sse_event

_DONE = b"data: [DONE]\n\n"


def validate_chat(payload: dict[str, Any]) -> None:
    messages = payload.get("messages")
    if messages is None:
        raise bad_request("Missing required field 'messages'", param="messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("Field 'messages' must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"messages[{index}] must be an object", param=f"messages[{index}]")
        role = message.get("role")
        if not isinstance(role, str) or not role:
            raise bad_request(f"messages[{index}].role must be a non-empty string", param=f"messages[{index}].role")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = payload.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise bad_request(f"Field '{name}' must be a positive integer", param=name)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        value = payload.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise bad_request(f"Field '{name}' must be a number", param=name)
    tools = payload.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise bad_request("Field 'tools' must be an array", param="tools")
        for index, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if tool.get("type", "function") == "function" and (
                not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]
            ):
                raise bad_request(f"tools[{index}].function.name must be a non-empty string", param=f"tools[{index}]")


class OpenAIStreamEncoder(StreamEncoder):
    __slots__ = ("include_usage",)

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage

    def feed(self, chunk: Canonical) -> bytes:
        if not chunk.get("choices") and chunk.get("usage") and not self.include_usage:
            return b""
        return sse_event(chunk)

    def finish(self) -> bytes:
        return _DONE


class OpenAIChatFormat(ClientFormat):
    stream_end_markers = (b"data: [DONE]",)
    name = "openai"
    native_provider_format = "openai"

    def to_canonical(self, payload: dict[str, Any]) -> Canonical:
        validate_chat(payload)
        return payload

    def render_response(self, response: Canonical) -> bytes:
        return orjson.dumps(response)

    def stream_encoder(self, *, model: str, request_id: str, include_usage: bool) -> StreamEncoder:
        return OpenAIStreamEncoder(include_usage)

    def client_wants_stream_usage(self, payload: dict[str, Any]) -> bool:
        options = payload.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True


FORMAT = OpenAIChatFormat()
