"""Anthropic Messages wire format (api.anthropic.com, Claude Code accounts, anthropic-compatible nodes).

Canonical (OpenAI chat) -> Messages request, Messages answers (JSON and SSE) -> canonical,
and the byte passthrough for clients that speak Messages themselves. The mapping decisions
are listed in docs/API.md §2 (Anthropic Messages); the ones that shape the request:

- `max_tokens` is required by Anthropic: the client's `max_completion_tokens` / `max_tokens`,
  else DEFAULT_MAX_TOKENS; with thinking on and no client value, the thinking budget is added.
- `reasoning_effort` becomes `thinking: {"type": "enabled", "budget_tokens": EFFORT_BUDGETS[effort]}`;
  an explicit `thinking_budget` wins. Budgets below Anthropic's minimum (1024) are raised to it.
- `response_format` json_schema becomes native structured output (`output_config.format`);
  json_object has no Anthropic equivalent (a schema is required) and is rejected with 400.
- Assistant `reasoning_content` without signed `thinking_blocks` is not sent: Anthropic rejects
  unsigned thinking, and earlier turns' thinking may be omitted.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.errors import bad_request

from .base import (
    ChatAdapter,
    Credential,
    ProviderError,
    StreamDecoder,
    StreamRelay,
    UpstreamRequest,
    Usage,
    is_retryable,
)
from .openai import SSELines

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 8192
MIN_THINKING_BUDGET = 1024
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768, "max": 32768}
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_JSON = "application/json"

STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
# OpenAI chat features with no Messages equivalent: (field, is it in use?).
_UNSUPPORTED: tuple[tuple[str, Any], ...] = (
    ("n", lambda v: v not in (None, 1)),
    ("logprobs", lambda v: bool(v)),
    ("top_logprobs", lambda v: v is not None),
    ("logit_bias", lambda v: bool(v)),
    ("presence_penalty", lambda v: v not in (None, 0)),
    ("frequency_penalty", lambda v: v not in (None, 0)),
    ("audio", lambda v: v is not None),
    ("prediction", lambda v: v is not None),
    ("web_search_options", lambda v: v is not None),
    ("functions", lambda v: v is not None),
    ("function_call", lambda v: v is not None),
)


def _unsupported(feature: str) -> Exception:
    return bad_request(f"{feature} is not supported by Anthropic-format providers", code="unsupported_feature")


# -- canonical -> Messages request --------------------------------------------------------------


def messages_body(body: dict[str, Any], model_id: str, *, stream: bool) -> dict[str, Any]:
    """The Messages request for a canonical (OpenAI chat) request."""
    for name, in_use in _UNSUPPORTED:
        if in_use(body.get(name)):
            raise _unsupported(f"'{name}'")
    system, messages = convert_messages(body.get("messages") or [])
    out: dict[str, Any] = {"model": model_id, "messages": messages}
    if system:
        out["system"] = system
    thinking_budget = _thinking_budget(body)
    out["max_tokens"] = _max_tokens(body, thinking_budget)
    if thinking_budget:
        out["thinking"] = {"type": "enabled", "budget_tokens": min(thinking_budget, out["max_tokens"] - 1)}
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        out["tools"] = [_tool(tool, index) for index, tool in enumerate(body["tools"])]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
    if choice is not None:
        out["tool_choice"] = choice
    output_format = _output_format(body.get("response_format"))
    if output_format is not None:
        out["output_config"] = {"format": output_format}
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    if stream:
        out["stream"] = True
    return out


def convert_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """System blocks and alternating turns; consecutive same-role turns are merged."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        where = f"messages[{index}]"
        if role in ("system", "developer"):
            # Anthropic has one top-level system prompt: later system messages are hoisted into it.
            system.extend({"type": "text", "text": text} for text in _texts(message.get("content"), where) if text)
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), where))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, where))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, where)])
        else:
            raise bad_request(f"{where}.role '{role}' is not supported by Anthropic-format providers", param=where)
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _texts(content: Any, where: str) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    texts = []
    for part in content if isinstance(content, list) else [content]:
        if not isinstance(part, dict) or part.get("type") != "text":
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise bad_request(f"{where}: only text content is allowed here, got '{kind}'", param=where)
        texts.append(str(part.get("text") or ""))
    return texts


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or an array of parts", param=where)
    blocks = []
    for number, part in enumerate(content):
        block = _content_block(part, f"{where}.content[{number}]")
        if block is not None:
            blocks.append(block)
    return blocks


def _content_block(part: Any, where: str) -> dict[str, Any] | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        text = part.get("text")
        # Anthropic rejects empty text blocks.
        return {"type": "text", "text": text} if text else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return image_block(url, where)
    if kind == "file":
        return _document_block(part.get("file"), where)
    raise bad_request(
        f"{where}: content part type '{kind}' is not supported by Anthropic-format providers", param=where
    )


def image_block(url: Any, where: str) -> dict[str, Any]:
    """A data URL becomes a base64 source, an http(s) URL a url source (Anthropic fetches it)."""
    if not isinstance(url, str) or not url:
        raise bad_request(f"{where}: image_url.url must be a non-empty string", param=where)
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    media_type, data = _split_data_url(url, where)
    if media_type not in IMAGE_TYPES:
        raise bad_request(
            f"{where}: image type '{media_type}' is not supported by Anthropic (jpeg, png, gif, webp)", param=where
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _document_block(file: Any, where: str) -> dict[str, Any]:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str):
        raise bad_request(f"{where}: only inline PDF files (file.file_data) can be sent to Anthropic", param=where)
    media_type, data = _split_data_url(data_url, where)
    if media_type != "application/pdf":
        raise bad_request(f"{where}: file type '{media_type}' is not supported by Anthropic (PDF only)", param=where)
    block: dict[str, Any] = {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if isinstance(file, dict) and file.get("filename"):
        block["title"] = file["filename"]
    return block


def _split_data_url(url: str, where: str) -> tuple[str, str]:
    head, comma, data = url.partition(",")
    if not url.startswith("data:") or not comma or not head.endswith(";base64"):
        raise bad_request(f"{where}: expected an http(s) URL or a base64 data URL", param=where)
    return head[5:-7].lower(), data


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    # Thinking first: Anthropic wants an assistant turn's thinking before its text and tool calls.
    blocks = [dict(block) for block in message.get("thinking_blocks") or [] if isinstance(block, dict)]
    content = message.get("content")
    if isinstance(content, list):
        blocks.extend(block for part in content if (block := _content_block(part, where)) is not None)
    elif isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    for number, call in enumerate(message.get("tool_calls") or []):
        blocks.append(_tool_use(call, f"{where}.tool_calls[{number}]"))
    return blocks


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name") or not call.get("id"):
        raise bad_request(f"{where} needs an id and a function name", param=where)
    arguments = function.get("arguments") or "{}"
    try:
        parsed = orjson.loads(arguments) if isinstance(arguments, str) else arguments
    except orjson.JSONDecodeError:
        raise bad_request(f"{where}.function.arguments is not valid JSON", param=where) from None
    if not isinstance(parsed, dict):
        raise bad_request(f"{where}.function.arguments must be a JSON object", param=where)
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": parsed}


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise bad_request(f"{where}.tool_call_id must be a non-empty string", param=where)
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_call_id}
    if isinstance(content, list):
        block["content"] = [b for part in content if (b := _content_block(part, where)) is not None]
    else:
        block["content"] = "" if content is None else str(content)
    return block


def _tool(tool: Any, index: int) -> dict[str, Any]:
    kind = tool.get("type", "function") if isinstance(tool, dict) else None
    function = tool.get("function") if isinstance(tool, dict) else None
    if kind != "function" or not isinstance(function, dict):
        raise _unsupported(f"tools[{index}] of type '{kind}'")
    schema = function.get("parameters")
    schema = dict(schema) if isinstance(schema, dict) and schema else {"type": "object", "properties": {}}
    schema.setdefault("type", "object")
    out: dict[str, Any] = {"name": function.get("name"), "input_schema": schema}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("strict") is True:
        out["strict"] = True
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    result: dict[str, Any] | None
    if choice is None:
        result = None
    elif choice == "auto":
        result = {"type": "auto"}
    elif choice == "none":
        result = {"type": "none"}
    elif choice == "required":
        result = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        result = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise bad_request(f"tool_choice {orjson.dumps(choice).decode()} is not supported", param="tool_choice")
    if parallel is False and (result is None or result["type"] != "none"):
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def _output_format(response_format: Any) -> dict[str, Any] | None:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad_request("response_format.json_schema.schema must be an object", param="response_format")
        return {"type": "json_schema", "schema": schema}
    raise _unsupported(f"response_format '{kind}' (use json_schema with a schema)")


def _thinking_budget(body: dict[str, Any]) -> int:
    budget = body.get("thinking_budget")
    if isinstance(budget, int) and not isinstance(budget, bool):
        if budget == 0:
            return 0
        if budget < 0:  # "dynamic" (Gemini's -1): Anthropic has no such mode; use the medium budget.
            return EFFORT_BUDGETS["medium"]
        return max(budget, MIN_THINKING_BUDGET)
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return 0
    if effort not in EFFORT_BUDGETS:
        raise bad_request(f"reasoning_effort '{effort}' is not supported", param="reasoning_effort")
    return EFFORT_BUDGETS[effort]


def _max_tokens(body: dict[str, Any], thinking_budget: int) -> int:
    explicit = body.get("max_completion_tokens") or body.get("max_tokens")
    if not explicit:
        return thinking_budget + DEFAULT_MAX_TOKENS
    if thinking_budget and explicit <= MIN_THINKING_BUDGET:
        raise bad_request(
            f"max_tokens must be above {MIN_THINKING_BUDGET} when reasoning is on (Anthropic's minimum budget)",
            param="max_tokens",
        )
    return int(explicit)


# -- Messages answers -> canonical ----------------------------------------------------------------


def canonical_usage(usage: Any) -> dict[str, Any]:
    """Anthropic usage in canonical form: prompt_tokens counts every input token, cached or not."""
    usage = usage if isinstance(usage, dict) else {}
    fresh = int(usage.get("input_tokens") or 0)
    read = int(usage.get("cache_read_input_tokens") or 0)
    created = int(usage.get("cache_creation_input_tokens") or 0)
    output = int(usage.get("output_tokens") or 0)
    details = usage.get("output_tokens_details")
    thinking = int(details.get("thinking_tokens") or 0) if isinstance(details, dict) else 0
    return {
        "prompt_tokens": fresh + read + created,
        "completion_tokens": output,
        "total_tokens": fresh + read + created + output,
        "prompt_tokens_details": {"cached_tokens": read},
        "completion_tokens_details": {"reasoning_tokens": thinking},
        "cache_creation_input_tokens": created,
    }


def usage_record(usage: Any) -> Usage:
    canonical = canonical_usage(usage)
    return Usage(
        prompt_tokens=canonical["prompt_tokens"],
        completion_tokens=canonical["completion_tokens"],
        cached_tokens=canonical["prompt_tokens_details"]["cached_tokens"],
        reasoning_tokens=canonical["completion_tokens_details"]["reasoning_tokens"],
        cache_creation_tokens=canonical["cache_creation_input_tokens"],
    )


def message_to_canonical(obj: dict[str, Any], *, model: str) -> dict[str, Any]:
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for block in obj.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
            thinking_blocks.append(
                {"type": "thinking", "thinking": block.get("thinking") or "", "signature": block.get("signature", "")}
            )
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": block.get("data", "")})
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name", ""), "arguments": arguments}
            tool_calls.append({"id": block.get("id", ""), "type": "function", "function": function})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking_blocks:
        message["reasoning_content"] = "".join(reasoning)
        message["thinking_blocks"] = thinking_blocks
    finish = STOP_TO_FINISH.get(obj.get("stop_reason") or "end_turn", "stop")
    return {
        "id": obj.get("id") or "",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": obj.get("model") or model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": canonical_usage(obj.get("usage")),
    }


def stream_error_to_provider_error(data: bytes) -> ProviderError:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ProviderError(502, "Upstream sent an invalid error event", retryable=True)
    error = obj.get("error") if isinstance(obj, dict) else None
    error = error if isinstance(error, dict) else {}
    status = ERROR_TYPE_STATUS.get(str(error.get("type")), 502)
    message = str(error.get("message") or "stream error")
    return ProviderError(
        status, f"Upstream stream error: {message}", retryable=is_retryable(status), code=error.get("type")
    )


class AnthropicStreamDecoder(StreamDecoder):
    """Messages SSE events -> canonical chunks. Block indexes map to OpenAI tool-call indexes."""

    __slots__ = ("created", "id", "lines", "model", "stopped", "tool_index", "usage")

    def __init__(self, model: str) -> None:
        self.lines = SSELines()
        self.id = ""
        self.model = model
        self.created = int(time.time())
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}
        self.stopped = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        return self._chunks(self.lines.feed(data))

    def finish(self) -> list[dict[str, Any]]:
        chunks = self._chunks(self.lines.finish())
        if not self.stopped:
            raise ProviderError(502, "Upstream stream ended before message_stop", retryable=True)
        return chunks

    def _chunks(self, events: list[tuple[str | None, bytes]]) -> list[dict[str, Any]]:
        chunks = []
        for name, data in events:
            if name == "error":
                raise stream_error_to_provider_error(data)
            try:
                event = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise ProviderError(502, "Upstream sent an invalid stream event", retryable=False) from None
            if isinstance(event, dict):
                chunks.extend(self._event(event))
        return chunks

    def _event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = self._delta(event.get("index", 0), event.get("delta") or {})
            return [self._chunk(delta)] if delta else []
        if kind == "content_block_start":
            delta = self._block_start(event.get("index", 0), event.get("content_block") or {})
            return [self._chunk(delta)] if delta else []
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = message.get("id") or self.id
            self.model = message.get("model") or self.model
            self.usage.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (event.get("usage") or {}).items() if v is not None})
            stop_reason = (event.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, STOP_TO_FINISH.get(stop_reason or "end_turn", "stop"))]
        if kind == "message_stop":
            self.stopped = True
            return [{**self._base(), "choices": [], "usage": canonical_usage(self.usage)}]
        if kind == "error":
            raise stream_error_to_provider_error(orjson.dumps(event))
        return []  # ping, content_block_stop and event types added later carry nothing canonical

    def _block_start(self, index: int, block: dict[str, Any]) -> dict[str, Any] | None:
        kind = block.get("type")
        if kind == "tool_use":
            number = self.tool_index[index] = len(self.tool_index)
            given = block.get("input")
            # Anthropic streams the input as input_json_delta after an empty {}.
            arguments = orjson.dumps(given).decode() if given else ""
            function = {"name": block.get("name", ""), "arguments": arguments}
            return {
                "tool_calls": [{"index": number, "id": block.get("id", ""), "type": "function", "function": function}]
            }
        if kind == "text" and block.get("text"):
            return {"content": block["text"]}
        if kind == "thinking" and block.get("thinking"):
            return {"reasoning_content": block["thinking"]}
        if kind == "redacted_thinking":
            return {"thinking_blocks": [{"type": "redacted_thinking", "data": block.get("data", "")}]}
        return None

    def _delta(self, index: int, delta: dict[str, Any]) -> dict[str, Any] | None:
        kind = delta.get("type")
        if kind == "text_delta":
            return {"content": delta.get("text", "")}
        if kind == "input_json_delta":
            piece = delta.get("partial_json") or ""
            if not piece or index not in self.tool_index:
                return None
            return {"tool_calls": [{"index": self.tool_index[index], "function": {"arguments": piece}}]}
        if kind == "thinking_delta":
            return {"reasoning_content": delta.get("thinking", "")}
        if kind == "signature_delta":
            return {"thinking_signature": delta.get("signature", "")}
        return None

    def _base(self) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self._base(), "choices": [choice]}


class AnthropicPassthrough(StreamRelay):
    """Relays Messages SSE byte for byte, event-aligned; reads usage from message_start and
    message_delta only. An error event before anything was relayed raises, so the router can
    still fall back to another connection."""

    __slots__ = ("buffer", "message_usage", "relayed", "usage")

    def __init__(self) -> None:
        self.buffer = b""
        self.relayed = False
        self.message_usage: dict[str, Any] = {}
        self.usage: Usage | None = None

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
        # Cheap byte checks first: most events are content deltas with nothing to read.
        if b"message_start" in complete or b"message_delta" in complete or (not self.relayed and b"error" in complete):
            self._read(complete)
        self.relayed = True
        return complete

    def finish(self) -> bytes:
        return self.buffer + b"\n\n" if self.buffer.strip() else b""

    def _read(self, complete: bytes) -> None:
        for raw in complete.split(b"\n\n"):
            name, _, rest = raw.partition(b"\n")
            if name in (b"event: message_start", b"event: message_delta"):
                self._take_usage(rest)
            elif name == b"event: error" and not self.relayed:
                raise stream_error_to_provider_error(rest.removeprefix(b"data:").strip())

    def _take_usage(self, data_line: bytes) -> None:
        try:
            event = orjson.loads(data_line.removeprefix(b"data:"))
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        usage = (
            (event.get("message") or {}).get("usage") if event.get("type") == "message_start" else event.get("usage")
        )
        if isinstance(usage, dict):
            self.message_usage.update({k: v for k, v in usage.items() if v is not None})
            self.usage = usage_record(self.message_usage)


# -- errors -----------------------------------------------------------------------------------------


def _seconds_until(stamp: str) -> float | None:
    try:
        moment = datetime.fromisoformat(stamp.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def anthropic_ratelimit_reset(headers: dict[str, str]) -> float | None:
    """Seconds until an exhausted Anthropic limit resets (`anthropic-ratelimit-<limit>-reset`, RFC 3339).

    The limits whose `-remaining` is 0 are the ones that were hit; when none says so, the
    earliest reset is the first moment a retry can succeed."""
    exhausted: list[float] = []
    others: list[float] = []
    for name, value in headers.items():
        if name.startswith("anthropic-ratelimit-") and name.endswith("-reset"):
            seconds = _seconds_until(value)
            if seconds is not None:
                remaining = headers.get(name.removesuffix("-reset") + "-remaining", "").strip()
                (exhausted if remaining == "0" else others).append(seconds)
    if exhausted:
        return max(exhausted)
    return min(others) if others else None


# -- the adapter ------------------------------------------------------------------------------------


class AnthropicAdapter(ChatAdapter):
    format = "anthropic"

    def chat_request(self, cred: Credential, model_id: str, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        return self._post(cred, cred.provider.chat_path or "/messages", messages_body(body, model_id, stream=stream))

    def passthrough_request(
        self, cred: Credential, model_id: str, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        upstream = {**payload, "model": model_id}
        if stream:
            upstream["stream"] = True
        else:
            upstream.pop("stream", None)
        return self._post(cred, cred.provider.chat_path or "/messages", upstream)

    def count_tokens_request(self, cred: Credential, model_id: str, payload: dict[str, Any]) -> UpstreamRequest:
        # count_tokens rejects the generation-only fields of a Messages body.
        skip = {"max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata", "service_tier"}
        upstream = {k: v for k, v in payload.items() if k not in skip}
        upstream["model"] = model_id
        return self._post(cred, "/messages/count_tokens", upstream)

    @staticmethod
    def _post(cred: Credential, path: str, body: dict[str, Any]) -> UpstreamRequest:
        headers = {**cred.headers, "Content-Type": _JSON}
        if "anthropic-version" not in {name.lower() for name in headers}:
            headers["anthropic-version"] = ANTHROPIC_VERSION
        if body.get("stream"):
            headers["Accept"] = "text/event-stream"
        return UpstreamRequest("POST", f"{cred.base_url}{path}", headers, orjson.dumps(body))

    def to_canonical_response(self, obj: dict[str, Any], *, model: str) -> dict[str, Any]:
        return message_to_canonical(obj, model=model)

    def stream_decoder(self, *, model: str) -> StreamDecoder:
        return AnthropicStreamDecoder(model)

    def passthrough_relay(self, *, client_wants_usage: bool) -> StreamRelay:
        return AnthropicPassthrough()

    def usage_from_response(self, obj: dict[str, Any]) -> Usage:
        return usage_record(obj.get("usage"))

    def response_error(self, obj: dict[str, Any]) -> str | None:
        if obj.get("type") == "error":
            error = obj.get("error")
            return str(error.get("message") if isinstance(error, dict) else error)
        return None

    def rate_limit_reset(self, headers: dict[str, str]) -> float | None:
        return anthropic_ratelimit_reset(headers)


ADAPTER = AnthropicAdapter()
