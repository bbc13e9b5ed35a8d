"""The Anthropic Messages wire format: ``POST /v1/messages`` and ``POST /v1/messages/count_tokens``.

Bodies follow what api.anthropic.com sends: ``message`` objects; streams of
``event: <type>\\ndata: <json>\\n\\n`` events (``message_start``, per block ``content_block_start``,
deltas and ``content_block_stop``, one ``ping``, ``message_delta``, ``message_stop``), thinking
blocks with a signature, tool input streamed as ``input_json_delta`` fragments; error bodies
``{"type": "error", "error": {"type", "message"}, "request_id"}``. Like the real API it checks the
``anthropic-version`` and auth headers, ``max_tokens``, empty text blocks and tool_use/tool_result
pairing, so a bad translation fails loudly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.scripting import (
    Behaviour,
    BehaviourSource,
    ScriptedStream,
    ToolCall,
    Usage,
    estimate_tokens,
    hold,
    raw_response,
    recorded,
    reply_of,
    split_pieces,
    split_words,
    tool_calls_of,
    usage_of,
)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "model: not found",
    429: "Number of request tokens has exceeded your per-minute rate limit.",
    500: "Internal server error",
    529: "Overloaded",
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


@dataclass(frozen=True)
class Answer:
    id: str
    model: str
    thinking: str | None
    text: str | None
    tool_calls: list[ToolCall]
    stop_reason: str
    usage: Usage


def signature_of(thinking: str) -> str:
    """The fake's thinking signature: opaque, but derived from the text so tests can predict it."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def routes(source: BehaviourSource) -> list[web.RouteDef]:
    async def messages(request: web.Request) -> web.StreamResponse:
        problem = _check_request(request, count_only=False)
        if problem is not None:
            return problem
        payload = recorded(request).json
        behaviour = source.behaviour_for(recorded(request))
        await hold(behaviour)
        is_stream = payload.get("stream") is True
        if behaviour.body is not None:
            streams = is_stream and behaviour.status < 400
            return raw_response(behaviour, content_type="text/event-stream" if streams else "application/json")
        if behaviour.status >= 400:
            return error_response(behaviour.status, behaviour.error_message, headers=behaviour.headers)
        answer = build_answer(behaviour, payload)
        if is_stream:
            return await stream_answer(request, behaviour, answer)
        return web.json_response(message_body(answer), headers={"request-id": _request_id(), **behaviour.headers})

    async def count_tokens(request: web.Request) -> web.Response:
        problem = _check_request(request, count_only=True)
        if problem is not None:
            return problem
        payload = recorded(request).json
        behaviour = source.behaviour_for(recorded(request))
        if behaviour.status >= 400:
            return error_response(behaviour.status, behaviour.error_message, headers=behaviour.headers)
        tokens = (
            behaviour.prompt_tokens if behaviour.prompt_tokens is not None else estimate_tokens(prompt_text(payload))
        )
        return web.json_response({"input_tokens": tokens}, headers={"request-id": _request_id()})

    return [web.post("/v1/messages", messages), web.post("/v1/messages/count_tokens", count_tokens)]


def _check_request(request: web.Request, *, count_only: bool) -> web.Response | None:
    """What the real API rejects before generating, with its error shapes."""
    entry = recorded(request)
    if "anthropic-version" not in entry.headers:
        return error_response(400, "anthropic-version: header is required")
    if "x-api-key" not in entry.headers and not entry.headers.get("authorization", "").startswith("Bearer "):
        return error_response(401, "x-api-key header is required")
    payload = entry.json
    if not isinstance(payload, dict):
        return error_response(400, "There was an issue with your JSON body.")
    for name in ("model", "messages") if count_only else ("model", "max_tokens", "messages"):
        if name not in payload:
            return error_response(400, f"{name}: Field required")
    if count_only and "max_tokens" in payload:
        return error_response(400, "max_tokens: Extra inputs are not permitted")
    problem = conversation_problem(payload["messages"])
    return error_response(400, problem) if problem else None


def conversation_problem(messages: Any) -> str | None:
    """Empty text blocks and tool_use without matching tool_result right after: both are 400s upstream."""
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for index, message in enumerate(messages):
        blocks = _blocks(message)
        if any(b.get("type") == "text" and not b.get("text") for b in blocks):
            return f"messages.{index}: text content blocks must be non-empty"
        calls = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if calls and message.get("role") == "assistant":
            following = _blocks(messages[index + 1]) if index + 1 < len(messages) else []
            results = [str(b.get("tool_use_id")) for b in following if b.get("type") == "tool_result"]
            leading = following[: len(results)]
            if sorted(results) != sorted(calls) or any(b.get("type") != "tool_result" for b in leading):
                return (
                    f"messages.{index + 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(calls)}. Each `tool_use` block must have a corresponding `tool_result` "
                    "block in the next message, first in its content."
                )
    return None


def _blocks(message: Any) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def prompt_text(payload: dict[str, Any]) -> str:
    system = payload.get("system")
    texts = [system] if isinstance(system, str) else [b.get("text", "") for b in system or []]
    for message in payload.get("messages") or []:
        texts.extend(str(b.get("text", "")) for b in _blocks(message) if b.get("type") == "text")
    return "\n".join(texts)


def build_answer(behaviour: Behaviour, payload: dict[str, Any]) -> Answer:
    model = payload["model"]
    text = reply_of(behaviour, model)
    tool_calls = tool_calls_of(behaviour)
    completion_text = (behaviour.thinking or "") + (text or "") + "".join(c.name + c.arguments for c in tool_calls)
    default_stop = "tool_use" if tool_calls else "end_turn"
    stop_reason = _STOP_REASONS.get(behaviour.finish_reason or "", behaviour.finish_reason or default_stop)
    return Answer(
        id=f"msg_{uuid.uuid4().hex[:24]}",
        model=model,
        thinking=behaviour.thinking,
        text=text,
        tool_calls=tool_calls,
        stop_reason=stop_reason,
        usage=usage_of(behaviour, prompt_text=prompt_text(payload), completion_text=completion_text),
    )


def usage_body(usage: Usage, *, output_tokens: int | None = None) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens - usage.cache_creation_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens if output_tokens is None else output_tokens,
    }


def message_body(answer: Answer) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.thinking is not None:
        content.append({"type": "thinking", "thinking": answer.thinking, "signature": signature_of(answer.thinking)})
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": json.loads(call.arguments)})
    return {
        "id": answer.id,
        "type": "message",
        "role": "assistant",
        "model": answer.model,
        "content": content,
        "stop_reason": answer.stop_reason,
        "stop_sequence": None,
        "usage": usage_body(answer.usage),
    }


async def stream_answer(request: web.Request, behaviour: Behaviour, answer: Answer) -> web.StreamResponse:
    stream = ScriptedStream(request, behaviour)
    stream.response.headers["request-id"] = _request_id()
    await stream.open()
    start = {**message_body(answer), "content": [], "stop_reason": None}
    start["usage"] = usage_body(answer.usage, output_tokens=1)
    await stream.send(event({"type": "message_start", "message": start}), counted=False)
    for index, (opening, deltas) in enumerate(_blocks_of(answer)):
        await stream.send(
            event({"type": "content_block_start", "index": index, "content_block": opening}), counted=False
        )
        if index == 0:
            await stream.send(event({"type": "ping"}), counted=False)
        for delta in deltas:
            await stream.send(event({"type": "content_block_delta", "index": index, "delta": delta}))
        await stream.send(event({"type": "content_block_stop", "index": index}), counted=False)
    final = {"stop_reason": answer.stop_reason, "stop_sequence": None}
    usage = {"output_tokens": answer.usage.completion_tokens}
    await stream.send(event({"type": "message_delta", "delta": final, "usage": usage}), counted=False)
    await stream.send(event({"type": "message_stop"}), counted=False)
    await stream.close()
    return stream.response


def _blocks_of(answer: Answer) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each content block's opening and its deltas, in the order the real API streams them."""
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if answer.thinking is not None:
        deltas = [{"type": "thinking_delta", "thinking": word} for word in split_words(answer.thinking)]
        deltas.append({"type": "signature_delta", "signature": signature_of(answer.thinking)})
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
    if answer.text:
        deltas = [{"type": "text_delta", "text": word} for word in split_words(answer.text)]
        blocks.append(({"type": "text", "text": ""}, deltas))
    for call in answer.tool_calls:
        # The real API opens with an empty fragment, then sends the JSON in arbitrary pieces.
        pieces = ["", *split_pieces(call.arguments, 4)]
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
        blocks.append(({"type": "tool_use", "id": call.id, "name": call.name, "input": {}}, deltas))
    return blocks


def event(body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":"))
    return f"event: {body['type']}\ndata: {data}\n\n".encode()


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    text = message or _ERROR_MESSAGES.get(status, f"Fake provider error (HTTP {status}).")
    return {"type": "error", "error": {"type": kind, "message": text}, "request_id": _request_id()}


def error_response(status: int, message: str | None = None, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        error_body(status, message), status=status, headers={"request-id": _request_id(), **(headers or {})}
    )


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"
