"""Anthropic Messages as a client format: `POST /v1/messages` and `/v1/messages/count_tokens`.

Requests are validated like Anthropic does (400 `invalid_request_error` naming the field),
answers and errors come back in Anthropic's shapes, and streams follow the exact event
sequence the official SDKs parse: `message_start`, per block `content_block_start` /
`content_block_delta`... / `content_block_stop`, then `message_delta` and `message_stop`,
each framed as `event: <type>\\ndata: <json>\\n\\n`.

An Anthropic client routed to an Anthropic-format provider is a byte passthrough; every
other target goes through the canonical form. Features the canonical form cannot carry
(server tools, `top_k`, file sources...) only pass through natively: `check_translatable`
rejects them with a 400 naming the feature when a translation is needed.
"""

from __future__ import annotations

import math
from typing import Any

import aiohttp
import orjson

from gateway.errors import GatewayError, bad_request
from gateway.http import JSON_HEADERS, Request, send_response
from providers.adapters.base import Credential, ProviderError

from .base import Canonical, ClientFormat, StreamEncoder, sse_event

FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Top-level fields that only an Anthropic-format provider understands.
_NATIVE_ONLY_FIELDS = ("top_k", "container", "mcp_servers")
_SYSTEM_JOIN = "\n\n"


def error_type(status: int) -> str:
    if status in _ERROR_TYPES:
        return _ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error(err: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(err.status), "message": err.message}}


# -- request validation -------------------------------------------------------------------------


def validate_messages_request(payload: dict[str, Any]) -> None:
    """What Anthropic itself checks before generating; messages name the offending field."""
    max_tokens = payload.get("max_tokens")
    if max_tokens is None:
        raise bad_request("max_tokens: Field required", param="max_tokens")
    if not _is_int(max_tokens) or max_tokens < 0:
        raise bad_request("max_tokens: Input should be a non-negative integer", param="max_tokens")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: Field required and must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        _validate_message(message, f"messages.{index}")
    _validate_system(payload.get("system"))
    for name in ("temperature", "top_p", "top_k"):
        value = payload.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise bad_request(f"{name}: Input should be a number", param=name)
    stops = payload.get("stop_sequences")
    if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
        raise bad_request("stop_sequences: Input should be an array of strings", param="stop_sequences")
    _validate_tools(payload.get("tools"))
    _validate_object(payload, "tool_choice", types=("auto", "any", "tool", "none"))
    _validate_object(payload, "thinking", types=("enabled", "disabled", "adaptive", "between_tools"))
    thinking = payload.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled" and not _is_int(thinking.get("budget_tokens")):
        raise bad_request("thinking.enabled.budget_tokens: Field required (an integer)", param="thinking")
    for name in ("metadata", "output_config"):
        if payload.get(name) is not None and not isinstance(payload[name], dict):
            raise bad_request(f"{name}: Input should be an object", param=name)
    output_format = (payload.get("output_config") or {}).get("format")
    if output_format is not None and (
        not isinstance(output_format, dict)
        or output_format.get("type") != "json_schema"
        or not isinstance(output_format.get("schema"), dict)
    ):
        raise bad_request("output_config.format: expected {type: json_schema, schema}", param="output_config")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_message(message: Any, where: str) -> None:
    if not isinstance(message, dict):
        raise bad_request(f"{where}: Input should be an object", param=where)
    if message.get("role") not in ("user", "assistant"):
        raise bad_request(f"{where}.role: Input should be 'user' or 'assistant'", param=f"{where}.role")
    content = message.get("content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise bad_request(f"{where}.content: Input should be a string or an array of blocks", param=f"{where}.content")
    for number, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise bad_request(f"{where}.content.{number}: each block needs a 'type'", param=f"{where}.content")


def _validate_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list) or not all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        raise bad_request("system: Input should be a string or an array of text blocks", param="system")


def _validate_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise bad_request("tools: Input should be an array", param="tools")
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
            raise bad_request(f"tools.{index}.name: Field required", param=f"tools.{index}")
        schema = tool.get("input_schema")
        if tool.get("type") in (None, "custom") and (not isinstance(schema, dict) or schema.get("type") != "object"):
            raise bad_request(f"tools.{index}.input_schema: must be a JSON schema of type 'object'", param="tools")


def _validate_object(payload: dict[str, Any], name: str, *, types: tuple[str, ...]) -> None:
    value = payload.get(name)
    if value is None:
        return
    if not isinstance(value, dict) or value.get("type") not in types:
        raise bad_request(f"{name}.type: Input should be one of {', '.join(types)}", param=name)


# -- Messages request -> canonical ---------------------------------------------------------------


class _Translation:
    """One request's conversion; collects the features the canonical form cannot carry."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def request(self, payload: dict[str, Any]) -> Canonical:
        self.problems.extend(f"'{name}'" for name in _NATIVE_ONLY_FIELDS if payload.get(name) is not None)
        messages = self._system(payload.get("system"))
        for index, message in enumerate(payload["messages"]):
            messages.extend(self._message(message, index))
        out: Canonical = {"model": payload["model"], "messages": messages, "max_tokens": payload["max_tokens"]}
        if payload.get("stream"):
            out["stream"] = True
        for name in ("temperature", "top_p"):
            if payload.get(name) is not None:
                out[name] = payload[name]
        if payload.get("stop_sequences"):
            out["stop"] = list(payload["stop_sequences"])
        if payload.get("tools"):
            out["tools"] = [self._tool(tool) for tool in payload["tools"]]
        self._tool_choice(payload.get("tool_choice"), out)
        self._reasoning(payload.get("thinking"), payload.get("output_config") or {}, out)
        user_id = (payload.get("metadata") or {}).get("user_id")
        if isinstance(user_id, str) and user_id:
            out["user"] = user_id
        return out

    @staticmethod
    def _system(system: Any) -> list[dict[str, Any]]:
        if not system:
            return []
        text = system if isinstance(system, str) else _SYSTEM_JOIN.join(block.get("text", "") for block in system)
        return [{"role": "system", "content": text}]

    def _message(self, message: dict[str, Any], index: int) -> list[dict[str, Any]]:
        content = message["content"]
        if isinstance(content, str):
            return [{"role": message["role"], "content": content}]
        if message["role"] == "assistant":
            return [self._assistant(content, index)]
        return self._user(content, index)

    def _user(self, blocks: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
        # Tool results become tool messages, which must directly follow the assistant's calls.
        tool_messages = [self._tool_result(b) for b in blocks if b["type"] == "tool_result"]
        parts = [p for b in blocks if b["type"] != "tool_result" and (p := self._part(b, index)) is not None]
        out = tool_messages
        if parts:
            only_text = len(parts) == 1 and parts[0]["type"] == "text"
            out.append({"role": "user", "content": parts[0]["text"] if only_text else parts})
        return out

    def _assistant(self, blocks: list[dict[str, Any]], index: int) -> dict[str, Any]:
        texts: list[str] = []
        reasoning: list[str] = []
        thinking_blocks: list[dict[str, Any]] = []
        tool_calls: list[dict[str, Any]] = []
        for block in blocks:
            kind = block["type"]
            if kind == "text":
                texts.append(str(block.get("text") or ""))
            elif kind == "thinking":
                reasoning.append(str(block.get("thinking") or ""))
                thinking_blocks.append(
                    {"type": "thinking", "thinking": block.get("thinking", ""), "signature": block.get("signature", "")}
                )
            elif kind == "redacted_thinking":
                thinking_blocks.append({"type": "redacted_thinking", "data": block.get("data", "")})
            elif kind == "tool_use":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                function = {"name": block.get("name", ""), "arguments": arguments}
                tool_calls.append({"id": block.get("id", ""), "type": "function", "function": function})
            else:
                self.problems.append(f"'{kind}' content blocks (messages.{index})")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        if thinking_blocks:
            message["reasoning_content"] = "".join(reasoning)
            message["thinking_blocks"] = thinking_blocks
        return message

    def _part(self, block: dict[str, Any], index: int) -> dict[str, Any] | None:
        kind = block["type"]
        if kind == "text":
            return {"type": "text", "text": str(block.get("text") or "")}
        if kind == "image":
            url = self._source_url(block.get("source"), index, kind)
            return {"type": "image_url", "image_url": {"url": url}} if url else None
        if kind == "document":
            return self._document(block, index)
        if kind in ("thinking", "redacted_thinking"):
            return None  # only meaningful in assistant turns; Anthropic ignores them elsewhere too
        self.problems.append(f"'{kind}' content blocks (messages.{index})")
        return None

    def _source_url(self, source: Any, index: int, kind: str) -> str | None:
        source = source if isinstance(source, dict) else {}
        if source.get("type") == "base64":
            return f"data:{source.get('media_type', '')};base64,{source.get('data', '')}"
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return str(source["url"])
        self.problems.append(f"{kind} source type '{source.get('type')}' (messages.{index})")
        return None

    def _document(self, block: dict[str, Any], index: int) -> dict[str, Any] | None:
        source = block.get("source")
        source = source if isinstance(source, dict) else {}
        if source.get("type") == "text":
            return {"type": "text", "text": str(source.get("data") or "")}
        if source.get("type") == "base64" and source.get("media_type") == "application/pdf":
            file = {"file_data": f"data:application/pdf;base64,{source.get('data', '')}"}
            if block.get("title"):
                file["filename"] = str(block["title"])
            return {"type": "file", "file": file}
        self.problems.append(f"document source type '{source.get('type')}' (messages.{index})")
        return None

    def _tool_result(self, block: dict[str, Any]) -> dict[str, Any]:
        content = block.get("content")
        if isinstance(content, list):
            texts = []
            for item in content:
                if isinstance(item, dict) and item.get("type") == "text":
                    texts.append(str(item.get("text") or ""))
                else:
                    kind = item.get("type") if isinstance(item, dict) else type(item).__name__
                    self.problems.append(f"'{kind}' content inside tool_result")
            content = "\n".join(texts)
        text = "" if content is None else str(content)
        if block.get("is_error"):
            # Chat formats have no error flag on tool results; the model still needs to know.
            text = f"Error: {text}"
        return {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""), "content": text}

    def _tool(self, tool: dict[str, Any]) -> dict[str, Any]:
        if tool.get("type") not in (None, "custom"):
            self.problems.append(f"server tool '{tool.get('type')}'")
        function: dict[str, Any] = {"name": tool["name"], "parameters": tool.get("input_schema") or {}}
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is True:
            function["strict"] = True
        return {"type": "function", "function": function}

    @staticmethod
    def _tool_choice(choice: Any, out: Canonical) -> None:
        if not isinstance(choice, dict):
            return
        kind = choice["type"]
        if kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
        else:
            out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        if choice.get("disable_parallel_tool_use") is True:
            out["parallel_tool_calls"] = False

    def _reasoning(self, thinking: Any, output_config: dict[str, Any], out: Canonical) -> None:
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            out["thinking_budget"] = thinking["budget_tokens"]
        effort = output_config.get("effort")
        if isinstance(effort, str):
            # OpenAI's scale tops out at xhigh.
            out["reasoning_effort"] = "xhigh" if effort == "max" else effort
        output_format = output_config.get("format")
        if isinstance(output_format, dict):  # validated: {type: json_schema, schema}
            schema = {"name": "output", "schema": output_format["schema"], "strict": True}
            out["response_format"] = {"type": "json_schema", "json_schema": schema}


# -- canonical answers -> Messages ---------------------------------------------------------------


def message_id(raw: Any) -> str:
    text = str(raw or "")
    if text.startswith("msg_"):
        return text
    return "msg_" + (text.removeprefix("chatcmpl-") or "omniroute")


def anthropic_usage(usage: Any) -> dict[str, int]:
    """Canonical usage as Anthropic counts it: input_tokens excludes cache reads and writes."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    read = int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0)
    created = int(usage.get("cache_creation_input_tokens") or 0)
    prompt = int(usage.get("prompt_tokens") or 0)
    return {
        "input_tokens": max(0, prompt - read - created),
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": read,
        "output_tokens": int(usage.get("completion_tokens") or 0),
    }


def _tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        raise GatewayError(502, "Upstream returned tool call arguments that are not valid JSON") from None
    if not isinstance(parsed, dict):
        raise GatewayError(502, "Upstream returned tool call arguments that are not a JSON object")
    return parsed


def _thinking_content(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("thinking_blocks")
    if blocks:
        return [dict(block) for block in blocks if isinstance(block, dict)]
    reasoning = message.get("reasoning_content")
    # Reasoning from a provider without signatures: a thinking block with an empty signature.
    return [{"type": "thinking", "thinking": reasoning, "signature": ""}] if reasoning else []


def render_message(response: Canonical) -> dict[str, Any]:
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content = _thinking_content(message)
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        name, arguments = function.get("name", ""), function.get("arguments")
        content.append({"type": "tool_use", "id": call.get("id", ""), "name": name, "input": _tool_input(arguments)})
    stop_reason = FINISH_TO_STOP.get(choice.get("finish_reason") or "stop", "end_turn")
    if stop_reason == "end_turn" and message.get("tool_calls"):
        stop_reason = "tool_use"
    return {
        "id": message_id(response.get("id")),
        "type": "message",
        "role": "assistant",
        "model": response.get("model", ""),
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": anthropic_usage(response.get("usage")),
    }


class AnthropicStreamEncoder(StreamEncoder):
    """Canonical chunks -> the Messages event sequence.

    Blocks open and close in order (thinking, text, tool_use...). `message_delta` needs the
    final usage, which canonical streams send after the finish chunk, so it waits for the
    usage chunk (or the end of the stream); everything else is written as soon as it is known."""

    __slots__ = (
        "block",
        "blocks",
        "finish_reason",
        "model",
        "sent_delta",
        "started",
        "tool_blocks",
        "usage",
        "used_tools",
    )

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.blocks = 0  # blocks opened so far; the next block's index
        self.block: str | None = None  # kind of the open block
        self.tool_blocks: dict[int, int] = {}  # canonical tool-call index -> block index
        self.used_tools = False
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.sent_delta = False

    def feed(self, chunk: Canonical) -> bytes:
        out: list[bytes] = []
        if not self.started:
            out.append(self._message_start(chunk))
        for choice in chunk.get("choices") or []:
            self._delta(choice.get("delta") or {}, out)
            if choice.get("finish_reason"):
                self._close(out)
                self.finish_reason = choice["finish_reason"]
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if self.finish_reason is not None and self.usage is not None and not self.sent_delta:
            out.append(self._message_delta())
        return b"".join(out)

    def finish(self) -> bytes:
        out: list[bytes] = []
        if not self.started:
            out.append(self._message_start({}))
        self._close(out)
        if not self.sent_delta:
            out.append(self._message_delta())
        out.append(sse_event({"type": "message_stop"}, "message_stop"))
        return b"".join(out)

    def _message_start(self, chunk: Canonical) -> bytes:
        self.started = True
        self.model = chunk.get("model") or self.model
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # Translated streams learn usage at the end; message_delta carries the real counts.
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse_event({"type": "message_start", "message": message}, "message_start")

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        if delta.get("reasoning_content"):
            self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            self._block_delta({"type": "thinking_delta", "thinking": delta["reasoning_content"]}, out)
        if delta.get("thinking_signature"):
            self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)
            self._block_delta({"type": "signature_delta", "signature": delta["thinking_signature"]}, out)
            self._close(out)
        for block in delta.get("thinking_blocks") or []:
            if isinstance(block, dict) and block.get("type") == "redacted_thinking":
                self._open("redacted_thinking", {"type": "redacted_thinking", "data": block.get("data", "")}, out)
                self._close(out)
        if delta.get("content"):
            self._open("text", {"type": "text", "text": ""}, out)
            self._block_delta({"type": "text_delta", "text": delta["content"]}, out)
        for call in delta.get("tool_calls") or []:
            self._tool_call(call, out)

    def _tool_call(self, call: dict[str, Any], out: list[bytes]) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        if index not in self.tool_blocks:
            self._close(out)
            self.tool_blocks[index] = self.blocks
            self.used_tools = True
            start: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": {},
            }
            self._open("tool_use", start, out, force=True)
        arguments = function.get("arguments")
        if arguments:
            block = self.tool_blocks[index]
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out.append(
                sse_event({"type": "content_block_delta", "index": block, "delta": delta}, "content_block_delta")
            )

    def _open(self, kind: str, start: dict[str, Any], out: list[bytes], *, force: bool = False) -> None:
        if self.block == kind and not force:
            return
        self._close(out)
        self.block = kind
        event = {"type": "content_block_start", "index": self.blocks, "content_block": start}
        out.append(sse_event(event, "content_block_start"))
        self.blocks += 1

    def _block_delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        event = {"type": "content_block_delta", "index": self.blocks - 1, "delta": delta}
        out.append(sse_event(event, "content_block_delta"))

    def _close(self, out: list[bytes]) -> None:
        if self.block is not None:
            out.append(sse_event({"type": "content_block_stop", "index": self.blocks - 1}, "content_block_stop"))
            self.block = None

    def _message_delta(self) -> bytes:
        self.sent_delta = True
        stop_reason = FINISH_TO_STOP.get(self.finish_reason or "stop", "end_turn")
        if stop_reason == "end_turn" and self.used_tools:
            stop_reason = "tool_use"
        usage = anthropic_usage(self.usage)
        event = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": usage}
        return sse_event(event, "message_delta")


class AnthropicMessagesFormat(ClientFormat):
    stream_end_markers = (b"event: message_stop",)
    name = "anthropic"
    native_provider_format = "anthropic"

    def to_canonical(self, payload: dict[str, Any]) -> Canonical:
        validate_messages_request(payload)
        return _Translation().request(payload)

    def validate(self, payload: dict[str, Any]) -> Canonical | None:
        # Claude Code bodies run to hundreds of KB: the passthrough to an Anthropic provider
        # should only pay for validation, the router translates when it has to.
        validate_messages_request(payload)
        return None

    def check_translatable(self, payload: dict[str, Any]) -> None:
        """400 naming the features an Anthropic-format provider would understand but this target cannot."""
        translation = _Translation()
        translation.request(payload)
        if translation.problems:
            names = ", ".join(dict.fromkeys(translation.problems))
            raise bad_request(
                f"Not supported when routing an Anthropic Messages request to a non-Anthropic provider: {names}",
                code="unsupported_feature",
            )

    def render_response(self, response: Canonical) -> bytes:
        return orjson.dumps(render_message(response))

    def stream_encoder(self, *, model: str, request_id: str, include_usage: bool) -> StreamEncoder:
        return AnthropicStreamEncoder(model)

    def error_body(self, err: GatewayError) -> bytes:
        return orjson.dumps(anthropic_error(err))

    def stream_error(self, err: GatewayError) -> bytes:
        return sse_event(anthropic_error(err), "error")


FORMAT = AnthropicMessagesFormat()


# -- count_tokens -------------------------------------------------------------------------------

# The local estimate when no Anthropic-format provider can count: ~4 characters per token over
# every text the model reads, plus a flat cost per image or document (Anthropic bills images by
# pixel area, ~1,600 tokens for a full-size one, which the gateway cannot know without decoding).
CHARS_PER_TOKEN = 4
TOKENS_PER_ATTACHMENT = 1600


def estimate_input_tokens(payload: dict[str, Any]) -> int:
    chars, attachments = _measure(payload.get("system"))
    for tool in payload.get("tools") or []:
        chars += len(orjson.dumps(tool))
    for message in payload.get("messages") or []:
        more, images = _measure(message.get("content") if isinstance(message, dict) else None)
        chars, attachments = chars + more, attachments + images
    return math.ceil(chars / CHARS_PER_TOKEN) + attachments * TOKENS_PER_ATTACHMENT


def _measure(content: Any) -> tuple[int, int]:
    """(characters of text, number of images and documents) in a content value."""
    if isinstance(content, str):
        return len(content), 0
    if not isinstance(content, list):
        return 0, 0
    chars = attachments = 0
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind in ("image", "document"):
            attachments += 1
        elif kind == "text":
            chars += len(str(block.get("text") or ""))
        elif kind == "thinking":
            chars += len(str(block.get("thinking") or ""))
        elif kind == "tool_use":
            chars += len(str(block.get("name") or "")) + len(orjson.dumps(block.get("input") or {}))
        elif kind == "tool_result":
            more, images = _measure(block.get("content"))
            chars, attachments = chars + more, attachments + images
    return chars, attachments


async def count_tokens(request: Request, send: Any, payload: dict[str, Any]) -> None:
    """`POST /v1/messages/count_tokens`: Anthropic's own count when the model routes to an
    Anthropic-format provider with a connection, else the local estimate above."""
    from gateway import pipeline
    from gateway.snapshot import get_snapshot

    model = pipeline.require_model(payload)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: Field required and must be a non-empty array", param="messages")
    for index, message in enumerate(messages):
        _validate_message(message, f"messages.{index}")
    _validate_system(payload.get("system"))
    _validate_tools(payload.get("tools"))
    snap = await get_snapshot()
    entry = pipeline.authenticate(request, snap)
    target = pipeline.resolve_model(model, snap)
    pipeline.authorize(entry, target)
    creds = snap.credentials.get(target.provider.id) if target.provider.format == "anthropic" else None
    body = await _upstream_count(creds, target.model_id, payload) if creds else None
    if body is None:
        body = orjson.dumps({"input_tokens": estimate_input_tokens(payload)})
    await send_response(send, 200, body, JSON_HEADERS + [(b"x-request-id", request.request_id)])


async def _upstream_count(creds: tuple[Credential, ...], model_id: str, payload: dict[str, Any]) -> bytes | None:
    """The provider's answer; None when it has no count endpoint (404), so the estimate answers."""
    from providers.adapters.anthropic import ADAPTER
    from providers.outbound import fetch

    failure: ProviderError | None = None
    for cred in creds:
        upstream = ADAPTER.count_tokens_request(cred, model_id, payload)
        try:
            resp = await fetch(upstream.method, upstream.url, headers=upstream.headers, body=upstream.body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = ProviderError(502, f"Cannot reach upstream: {exc.__class__.__name__}", retryable=True)
            continue
        if resp.status == 200:
            return resp.body
        if resp.status == 404:
            return None
        failure = ADAPTER.error_from_response(resp.status, resp.headers, resp.body)
        if not failure.retryable:
            break
    assert failure is not None
    raise GatewayError(failure.status, failure.message, code=failure.code, retry_after=failure.retry_after)
