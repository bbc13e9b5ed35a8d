"""OpenAI Chat Completions wire format (OpenAI and every OpenAI-compatible provider)."""

from __future__ import annotations

from typing import Any

import orjson

from .base import ChatAdapter, Credential, ProviderError, UpstreamRequest, Usage, is_retryable, parse_retry_after

_JSON = "application/json"


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
    )


def error_message_from_body(body: bytes) -> tuple[str, str | None]:
    """The provider's own message and code from an error body of any common shape."""
    text = body.decode("utf-8", "replace").strip()
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (text[:500] or "empty response body"), None
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or text[:500]
            code = err.get("code") or err.get("type")
            return str(message), (str(code) if code is not None else None)
        if isinstance(err, str):
            return err, None
    return text[:500], None


class OpenAIAdapter(ChatAdapter):
    format = "openai"

    def chat_request(self, cred: Credential, model_id: str, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        upstream = dict(body)
        upstream["model"] = model_id
        headers = {**cred.headers, "Content-Type": _JSON}
        if stream:
            options = upstream.get("stream_options")
            upstream["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            headers["Accept"] = "text/event-stream"
        return UpstreamRequest("POST", f"{cred.base_url}/chat/completions", headers, orjson.dumps(upstream))

    def usage_from_response(self, obj: dict[str, Any]) -> Usage:
        return usage_from_openai(obj.get("usage"))

    def error_from_response(self, status: int, headers: dict[str, str], body: bytes) -> ProviderError:
        message, code = error_message_from_body(body)
        return ProviderError(
            status,
            message,
            retryable=is_retryable(status),
            retry_after=parse_retry_after(headers, message),
            code=code,
        )


ADAPTER = OpenAIAdapter()
