"""OpenAI Responses API wire format (`POST {base}/responses`): OpenAI and custom nodes that speak it.

Canonical (chat) requests become Responses requests: messages become input items, every
assistant tool call a `function_call` item and every tool message a `function_call_output`.
Requests are sent with `store: false`: the gateway keeps no state, so nothing should be kept
upstream either. OpenAI's own reasoning (an item id plus `encrypted_content`) comes back to
canonical as a thinking block whose signature carries both (`openai-responses:` prefix), which
is how a non-Responses client returns it on its next turn.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from gateway.errors import bad_request

from .base import (
    ChatAdapter,
    Credential,
    StreamDecoder,
    StreamRelay,
    UpstreamRequest,
    Usage,
)
from .responses_stream import (
    SIGNATURE_PREFIX,
    ResponsesPassthrough,
    ResponsesStreamDecoder,
    canonical_usage,
    finish_reason_of,
    signature_of,
    usage_from_responses,
)

_JSON = "application/json"
# Models that reason: their reasoning items are asked for with encrypted content.
_REASONING_MODEL = re.compile(r"(^|/)(o\d|gpt-5|gpt-oss)", re.I)
# Canonical fields with no Responses counterpart, and whether a value is "in use".
_NOT_EXPRESSIBLE = {
    "stop": "stop sequences",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "logit_bias": "logit_bias",
    "logprobs": "logprobs",
    "top_logprobs": "top_logprobs",
    "audio": "audio output",
    "prediction": "predicted outputs",
}


def _reasoning_from_signature(signature: object, text: str) -> dict[str, Any] | None:
    """A reasoning input item from a thinking block we produced; None for other providers' blocks."""
    if not isinstance(signature, str) or not signature.startswith(SIGNATURE_PREFIX):
        return None
    try:
        carried = orjson.loads(base64.urlsafe_b64decode(signature[len(SIGNATURE_PREFIX) :]))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(carried, dict) or not isinstance(carried.get("id"), str):
        return None
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {
        "type": "reasoning",
        "id": carried["id"],
        "summary": summary,
        "encrypted_content": carried.get("encrypted_content"),
    }


# -- canonical request -> Responses request --------------------------------------------------------


def _input_part(part: object, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise bad_request(f"{where} must be an object", param=where)
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": part.get("text") or ""}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        detail = image.get("detail") if isinstance(image, dict) else None
        return {"type": "input_image", "image_url": url, "detail": detail or "auto"}
    if kind == "file" and isinstance(part.get("file"), dict):
        return {"type": "input_file", **{k: v for k, v in part["file"].items() if v is not None}}
    raise bad_request(f"{where}: content of type {kind!r} cannot be sent to a Responses API provider", param=where)


def _input_content(content: object, where: str) -> str | list[dict[str, Any]]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"{where} must be a string or an array of content parts", param=where)
    return [_input_part(part, f"{where}[{index}]") for index, part in enumerate(content)]


def _assistant_items(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for block in message.get("thinking_blocks") or []:
        if isinstance(block, dict):
            # Reasoning another provider produced cannot be replayed to OpenAI: it is left out.
            reasoning = _reasoning_from_signature(block.get("signature"), block.get("thinking") or "")
            if reasoning is not None:
                items.append(reasoning)
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    if content:
        items.append({"type": "message", "role": "assistant", "content": content})
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not call.get("id"):
            raise bad_request(f"{where}.tool_calls[{index}] needs an id and a function", param=f"{where}.tool_calls")
        items.append(
            {
                "type": "function_call",
                "call_id": call["id"],
                "name": function.get("name") or "",
                "arguments": function.get("arguments") or "{}",
            }
        )
    return items


def _input_items(messages: object) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise bad_request("Field 'messages' must be an array", param="messages")
    items: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer", "user"):
            content = _input_content(message.get("content"), where)
            items.append({"type": "message", "role": role, "content": content})
        elif role == "assistant":
            items.extend(_assistant_items(message, where))
        elif role == "tool":
            output = _input_content(message.get("content"), f"{where}.content")
            items.append({"type": "function_call_output", "call_id": message.get("tool_call_id"), "output": output})
        else:
            raise bad_request(f"{where}.role {role!r} cannot be sent to a Responses API provider", param=where)
    return items


def _tool(tool: object, index: int) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise bad_request(f"tools[{index}] of type {kind!r} cannot be sent to a Responses API provider")
    flat: dict[str, Any] = {"type": "function", "name": function.get("name")}
    for name in ("description", "parameters", "strict"):
        if function.get(name) is not None:
            flat[name] = function[name]
    return flat


def _tool_choice(choice: object) -> object:
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function") or {}
        return {"type": "function", "name": function.get("name") if isinstance(function, dict) else None}
    return choice


def _text_format(response_format: object) -> dict[str, Any] | None:
    if not isinstance(response_format, dict) or response_format.get("type") in (None, "text"):
        return None
    if response_format["type"] == "json_schema":
        spec = response_format.get("json_schema") or {}
        return {"type": "json_schema", **spec}
    return {"type": response_format["type"]}


def _effort(body: dict[str, Any]) -> str | None:
    effort = body.get("reasoning_effort")
    if isinstance(effort, str) and effort:
        return effort
    budget = body.get("thinking_budget")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget > 0:
        # An explicit token budget has no Responses counterpart: the nearest effort level.
        return "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"
    return None


def _reject_inexpressible(body: dict[str, Any]) -> None:
    found = [label for name, label in _NOT_EXPRESSIBLE.items() if body.get(name) not in (None, False, 0, [], {}, "")]
    if isinstance(body.get("n"), int) and body["n"] > 1:
        found.append("n > 1")
    if found:
        raise bad_request(f"The OpenAI Responses API cannot express: {', '.join(found)}", code="unsupported_feature")


def responses_body(body: dict[str, Any], model_id: str, *, stream: bool) -> dict[str, Any]:
    _reject_inexpressible(body)
    upstream: dict[str, Any] = {"model": model_id, "input": _input_items(body.get("messages")), "store": False}
    if stream:
        upstream["stream"] = True
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        upstream["max_output_tokens"] = max_tokens
    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "metadata", "service_tier"):
        if body.get(name) is not None:
            upstream[name] = body[name]
    tools = body.get("tools")
    if tools:
        upstream["tools"] = [_tool(tool, index) for index, tool in enumerate(tools)]
    if body.get("tool_choice") is not None:
        upstream["tool_choice"] = _tool_choice(body["tool_choice"])
    text: dict[str, Any] = {}
    text_format = _text_format(body.get("response_format"))
    if text_format is not None:
        text["format"] = text_format
    if body.get("verbosity"):
        text["verbosity"] = body["verbosity"]
    if text:
        upstream["text"] = text
    effort = _effort(body)
    if effort is not None:
        upstream["reasoning"] = {"effort": effort, "summary": "auto"}
    if effort is not None or _REASONING_MODEL.search(model_id):
        # Stateless multi-turn reasoning: OpenAI returns it encrypted, we hand it back next turn.
        upstream["include"] = ["reasoning.encrypted_content"]
    return upstream


# -- Responses response -> canonical ---------------------------------------------------------------


def item_text(item: dict[str, Any], key: str, kinds: tuple[str, ...]) -> list[str]:
    return [
        part["text"]
        for part in item.get(key) or []
        if isinstance(part, dict) and part.get("type") in kinds and isinstance(part.get("text"), str)
    ]


def canonical_message(output: list[Any]) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    blocks: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for item in output:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            texts.extend(item_text(item, "content", ("output_text",)))
            texts.extend(p["refusal"] for p in item.get("content") or [] if isinstance(p, dict) and p.get("refusal"))
        elif kind == "reasoning":
            text = "\n\n".join(
                item_text(item, "summary", ("summary_text",)) or item_text(item, "content", ("reasoning_text",))
            )
            if text:
                reasoning.append(text)
            if item.get("encrypted_content") and item.get("id"):
                signature = signature_of(item["id"], item["encrypted_content"])
                blocks.append({"type": "thinking", "thinking": text, "signature": signature})
        elif kind == "function_call":
            function = {"name": item.get("name") or "", "arguments": item.get("arguments") or ""}
            calls.append({"id": item.get("call_id") or item.get("id"), "type": "function", "function": function})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if reasoning:
        message["reasoning_content"] = "\n\n".join(reasoning)
    if blocks:
        message["thinking_blocks"] = blocks
    if calls:
        message["tool_calls"] = calls
    return message


def canonical_response(obj: dict[str, Any], *, model: str) -> dict[str, Any]:
    message = canonical_message(obj.get("output") or [])
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason_of(obj, bool(message.get("tool_calls"))),
    }
    return {
        "id": obj.get("id") or "resp",
        "object": "chat.completion",
        "created": int(obj.get("created_at") or 0),
        "model": obj.get("model") or model,
        "choices": [choice],
        "usage": canonical_usage(obj.get("usage")),
    }


# -- the adapter -----------------------------------------------------------------------------------


class ResponsesAdapter(ChatAdapter):
    format = "responses"

    def chat_request(self, cred: Credential, model_id: str, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        upstream = responses_body(body, model_id, stream=stream)
        return UpstreamRequest("POST", self._url(cred), self._headers(cred, stream), orjson.dumps(upstream))

    def passthrough_request(
        self, cred: Credential, model_id: str, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        upstream = {**payload, "model": model_id, "stream": stream}
        return UpstreamRequest("POST", self._url(cred), self._headers(cred, stream), orjson.dumps(upstream))

    def to_canonical_response(self, obj: dict[str, Any], *, model: str) -> dict[str, Any]:
        return canonical_response(obj, model=model)

    def stream_decoder(self, *, model: str) -> StreamDecoder:
        return ResponsesStreamDecoder(model)

    def passthrough_relay(self, *, client_wants_usage: bool) -> StreamRelay:
        return ResponsesPassthrough()

    def usage_from_response(self, obj: dict[str, Any]) -> Usage:
        return usage_from_responses(obj.get("usage"))

    def response_error(self, obj: dict[str, Any]) -> str | None:
        error = obj.get("error")
        if obj.get("status") == "failed" or (error and "output" not in obj):
            if isinstance(error, dict):
                return str(error.get("message") or error.get("code") or "response failed")
            return str(error or "response failed")
        return None

    @staticmethod
    def _url(cred: Credential) -> str:
        # Custom nodes may name their own path; everyone else serves {base}/responses.
        path = cred.provider.chat_path or "/responses"
        return cred.base_url + path

    @staticmethod
    def _headers(cred: Credential, stream: bool) -> dict[str, str]:
        headers = {**cred.headers, "Content-Type": _JSON}
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers


ADAPTER = ResponsesAdapter()
