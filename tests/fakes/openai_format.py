"""The OpenAI Chat Completions wire format: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Bodies follow what api.openai.com sends: ``chat.completion`` objects, ``chat.completion.chunk``
events framed as ``data: {...}\\n\\n`` and closed by ``data: [DONE]``, and error bodies
``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import time
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
    hold,
    raw_response,
    recorded,
    reply_of,
    split_pieces,
    split_words,
    tool_calls_of,
    usage_of,
)

MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini", "text-embedding-3-small")
FINGERPRINT = "fp_fake0001"

# (type, code) per status, as OpenAI labels them; other 4xx are invalid_request_error, 5xx server_error.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("request_forbidden", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ERROR_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided.",
    403: "You are not allowed to access this resource.",
    404: "The model does not exist or you do not have access to it.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The server is overloaded or not ready yet.",
}


@dataclass(frozen=True)
class Answer:
    """Everything one completion says, shared by the streamed and the non-streamed shapes."""

    id: str
    created: int
    model: str
    text: str | None
    tool_calls: list[ToolCall]
    finish_reason: str
    usage: Usage


def routes(source: BehaviourSource) -> list[web.RouteDef]:
    async def chat_completions(request: web.Request) -> web.StreamResponse:
        payload = recorded(request).json
        if not isinstance(payload, dict):
            return error_response(400, "We could not parse the JSON body of your request.")
        if not isinstance(payload.get("model"), str) or not payload["model"]:
            return error_response(400, "You must provide a model parameter.", param="model")
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
            include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
            return await stream_answer(request, behaviour, answer, include_usage=include_usage)
        return web.json_response(completion_body(answer), status=behaviour.status, headers=_headers(behaviour))

    async def models(request: web.Request) -> web.Response:
        data = [{"id": model, "object": "model", "created": 1715367049, "owned_by": "system"} for model in MODELS]
        return web.json_response({"object": "list", "data": data}, headers={"x-request-id": _request_id()})

    return [web.post("/v1/chat/completions", chat_completions), web.get("/v1/models", models)]


def build_answer(behaviour: Behaviour, payload: dict[str, Any]) -> Answer:
    model = payload["model"]
    text = reply_of(behaviour, model)
    tool_calls = tool_calls_of(behaviour)
    completion_text = (text or "") + "".join(call.name + call.arguments for call in tool_calls)
    return Answer(
        id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
        created=int(time.time()),
        model=model,
        text=text,
        tool_calls=tool_calls,
        finish_reason=behaviour.finish_reason or ("tool_calls" if tool_calls else "stop"),
        usage=usage_of(behaviour, prompt_text=prompt_text(payload), completion_text=completion_text),
    )


def prompt_text(payload: dict[str, Any]) -> str:
    """The text of all messages, for estimating prompt tokens."""
    texts = []
    for message in payload.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(part["text"] for part in content if isinstance(part, dict) and "text" in part)
    return "\n".join(texts)


def completion_body(answer: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []}
    if answer.tool_calls:
        message["tool_calls"] = [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in answer.tool_calls
        ]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}
    return {
        "id": answer.id,
        "object": "chat.completion",
        "created": answer.created,
        "model": answer.model,
        "choices": [choice],
        "usage": usage_body(answer.usage),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def usage_body(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


async def stream_answer(
    request: web.Request, behaviour: Behaviour, answer: Answer, *, include_usage: bool
) -> web.StreamResponse:
    stream = ScriptedStream(request, behaviour)
    stream.response.headers["x-request-id"] = _request_id()
    await stream.open()

    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        body: dict[str, Any] = {
            "id": answer.id,
            "object": "chat.completion.chunk",
            "created": answer.created,
            "model": answer.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }
        if include_usage:
            # With include_usage every chunk carries "usage": null except the final usage chunk.
            body["usage"] = usage
        return sse(body)

    first = {"role": "assistant", "content": "" if answer.text is not None else None, "refusal": None}
    await stream.send(chunk([_delta(first)]), counted=False)
    for delta in content_deltas(answer):
        await stream.send(chunk([_delta(delta)]))
    await stream.send(chunk([_delta({}, answer.finish_reason)]), counted=False)
    if include_usage:
        await stream.send(chunk([], usage_body(answer.usage)), counted=False)
    await stream.send(b"data: [DONE]\n\n", counted=False)
    await stream.close()
    return stream.response


def content_deltas(answer: Answer) -> list[dict[str, Any]]:
    """The text word by word, then each tool call: its name first, then its arguments in fragments."""
    deltas: list[dict[str, Any]] = [{"content": word} for word in split_words(answer.text or "")]
    for index, call in enumerate(answer.tool_calls):
        opening = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        deltas.append({"tool_calls": [opening]})
        for piece in split_pieces(call.arguments):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


def _delta(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def sse(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def error_response(
    status: int, message: str | None = None, *, param: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    kind, code = _ERROR_KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    text = message or _ERROR_MESSAGES.get(status, f"Fake provider error (HTTP {status}).")
    body = {"error": {"message": text, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers={"x-request-id": _request_id(), **(headers or {})})


def _headers(behaviour: Behaviour) -> dict[str, str]:
    return {"x-request-id": _request_id(), **behaviour.headers}


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"
