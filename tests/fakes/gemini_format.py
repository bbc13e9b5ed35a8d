"""The Gemini wire format: ``POST /v1beta/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``, and ``GET /v1beta/models``.

Bodies follow what generativelanguage.googleapis.com sends: ``GenerateContentResponse``
objects (candidates, parts, ``usageMetadata``, ``modelVersion``, ``responseId``); a stream is
one such object per SSE event framed ``data: {...}\\r\\n\\r\\n``, with no terminator (without
``alt=sse``: one JSON array). Thought parts (``thought: true``) come only when the request
asks for them (``includeThoughts``); a thought signature rides on the first function call,
else on the answer's text (in a stream: an empty text part in the last event). Function
calls have no id, as Gemini's usually do not. Errors are ``{"error": {"code", "message",
"status", "details"}}``; a 429 carries ``google.rpc.RetryInfo`` with ``retryDelay``.

The model is named in the URL, so behaviours scripted for a model are matched on that.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from tests.fakes.scripting import (
    Behaviour,
    RecordedRequest,
    ScriptedStream,
    ToolCall,
    Usage,
    hold,
    raw_response,
    recorded,
    reply_of,
    split_words,
    tool_calls_of,
    usage_of,
)

MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-3-flash-preview", "gemini-embedding-001")
RETRY_DELAY = "20s"
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "Method doesn't allow unregistered callers (callers without established identity).",
    404: "models/unknown is not found for API version v1beta, or is not supported for generateContent.",
    429: "You exceeded your current quota, please check your plan and billing details.",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
}
_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}


class ModelBehaviourSource(Protocol):
    def behaviour_for(self, request: RecordedRequest, model: str | None = None) -> Behaviour: ...


@dataclass(frozen=True)
class Answer:
    response_id: str
    model: str
    thoughts: str | None  # only when the request asked for them
    signature: str | None  # present whenever the model "thought"
    text: str | None
    tool_calls: list[ToolCall]
    finish_reason: str
    usage: Usage


def signature_of(seed: str) -> str:
    """The fake's thought signature: opaque base64, derived from the answer so tests can predict it."""
    return base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()).decode()


def routes(source: ModelBehaviourSource) -> list[web.RouteDef]:
    async def generate(request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["tail"].rpartition(":")
        if action not in ("generateContent", "streamGenerateContent") or not model:
            return error_response(404, f"Unknown action {request.match_info['tail']!r}.")
        if not request.headers.get("x-goog-api-key") and not request.query.get("key"):
            return error_response(403)
        payload = recorded(request).json
        if not isinstance(payload, dict) or not isinstance(payload.get("contents"), list) or not payload["contents"]:
            return error_response(400, "* GenerateContentRequest.contents: contents is not specified")
        behaviour = source.behaviour_for(recorded(request), model=model)
        await hold(behaviour)
        streaming = action == "streamGenerateContent"
        sse = request.query.get("alt") == "sse"
        if behaviour.body is not None:
            kind = "text/event-stream" if streaming and sse and behaviour.status < 400 else "application/json"
            return raw_response(behaviour, content_type=kind)
        if behaviour.status >= 400:
            return error_response(behaviour.status, behaviour.error_message, headers=behaviour.headers)
        answer = build_answer(behaviour, payload, model)
        if streaming and sse:
            return await stream_answer(request, behaviour, answer)
        if streaming:
            return web.json_response(stream_elements(answer), headers=behaviour.headers)
        return web.json_response(response_body(answer), headers=behaviour.headers)

    async def models(request: web.Request) -> web.Response:
        listed = [
            {
                "name": f"models/{model}",
                "displayName": model,
                "supportedGenerationMethods": ["embedContent"] if "embedding" in model else ["generateContent"],
            }
            for model in MODELS
        ]
        return web.json_response({"models": listed})

    return [web.post("/v1beta/models/{tail:.+}", generate), web.get("/v1beta/models", models)]


def wants_thoughts(payload: dict[str, Any]) -> bool:
    config = payload.get("generationConfig") or payload.get("generation_config") or {}
    thinking = config.get("thinkingConfig") or config.get("thinking_config") or {}
    return bool(thinking.get("includeThoughts") or thinking.get("include_thoughts"))


def build_answer(behaviour: Behaviour, payload: dict[str, Any], model: str) -> Answer:
    text = reply_of(behaviour, model)
    calls = tool_calls_of(behaviour)
    thinking = behaviour.thinking
    completion_text = (text or "") + "".join(call.name + call.arguments for call in calls)
    reasoning = behaviour.reasoning_tokens
    if thinking and reasoning is None:
        reasoning = max(1, len(thinking) // 4)
    usage = usage_of(
        Behaviour(
            prompt_tokens=behaviour.prompt_tokens,
            completion_tokens=behaviour.completion_tokens,
            cached_tokens=behaviour.cached_tokens,
            reasoning_tokens=reasoning,
        ),
        prompt_text=prompt_text(payload),
        completion_text=completion_text,
    )
    finish = behaviour.finish_reason or "STOP"
    return Answer(
        response_id=uuid.uuid4().hex[:22],
        model=model,
        thoughts=thinking if thinking and wants_thoughts(payload) else None,
        signature=signature_of(thinking + completion_text) if thinking else None,
        text=text,
        tool_calls=calls,
        finish_reason=_FINISH.get(finish, finish),
        usage=usage,
    )


def prompt_text(payload: dict[str, Any]) -> str:
    texts = []
    for content in payload.get("contents") or []:
        for part in content.get("parts") or [] if isinstance(content, dict) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return "\n".join(texts)


def usage_metadata(usage: Usage, *, final: bool = True) -> dict[str, Any]:
    if not final:  # mid-stream events count the prompt only
        return {"promptTokenCount": usage.prompt_tokens, "totalTokenCount": usage.prompt_tokens}
    meta: dict[str, Any] = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens - usage.reasoning_tokens,
        "totalTokenCount": usage.total_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.prompt_tokens}],
    }
    if usage.cached_tokens:
        meta["cachedContentTokenCount"] = usage.cached_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    return meta


def call_parts(answer: Answer) -> list[dict[str, Any]]:
    parts = []
    for number, call in enumerate(answer.tool_calls):
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": json.loads(call.arguments or "{}")}}
        if number == 0 and answer.signature:
            part["thoughtSignature"] = answer.signature
        parts.append(part)
    return parts


def response_body(answer: Answer) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    if answer.thoughts:
        parts.append({"text": answer.thoughts, "thought": True})
    if answer.text:
        text: dict[str, Any] = {"text": answer.text}
        if answer.signature and not answer.tool_calls:
            text["thoughtSignature"] = answer.signature
        parts.append(text)
    parts.extend(call_parts(answer))
    candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": answer.finish_reason, "index": 0}
    return _envelope(answer, [candidate], usage_metadata(answer.usage))


def _envelope(answer: Answer, candidates: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": answer.model,
        "responseId": answer.response_id,
    }


def stream_elements(answer: Answer) -> list[dict[str, Any]]:
    """The stream's events: thought words, text words, the calls; the last one finishes."""
    groups: list[list[dict[str, Any]]] = [
        [{"text": word, "thought": True}] for word in split_words(answer.thoughts or "")
    ]
    groups.extend([{"text": word}] for word in split_words(answer.text or ""))
    if answer.tool_calls:
        groups.append(call_parts(answer))
    elif answer.signature:
        groups.append([{"text": "", "thoughtSignature": answer.signature}])
    if not groups:
        groups.append([{"text": ""}])
    elements = []
    for number, parts in enumerate(groups):
        final = number == len(groups) - 1
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if final:
            candidate["finishReason"] = answer.finish_reason
        elements.append(_envelope(answer, [candidate], usage_metadata(answer.usage, final=final)))
    return elements


async def stream_answer(request: web.Request, behaviour: Behaviour, answer: Answer) -> web.StreamResponse:
    stream = ScriptedStream(request, behaviour)
    await stream.open()
    for element in stream_elements(answer):
        await stream.send(b"data: " + json.dumps(element).encode() + b"\r\n\r\n")
    await stream.close()
    return stream.response


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    text = message or _MESSAGES.get(status, f"Fake Gemini error (HTTP {status}).")
    error: dict[str, Any] = {"code": status, "message": text, "status": _STATUS.get(status, "UNKNOWN")}
    if status == 429:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more"}]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": RETRY_DELAY},
        ]
    elif status == 400 and text.startswith("API key not valid"):
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
        ]
    return {"error": error}


def error_response(status: int, message: str | None = None, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error_body(status, message), status=status, headers=headers or {})
