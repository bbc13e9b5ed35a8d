"""Ollama's chat API as a client format (`POST /v1/api/chat`, `GET /api/tags`).

No provider speaks Ollama, so every request is translated. Ollama differs from OpenAI chat in
a few places that matter: images are bare base64 strings beside the text, tool-call arguments
are JSON objects (not strings), tool results name their tool (`tool_name`) rather than a call
id, sampling settings live in `options`, and a stream is NDJSON — one JSON object per line,
the last one with `done: true` and the token counts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from gateway.errors import GatewayError, bad_request

from .base import Canonical, ClientFormat, StreamEncoder

if TYPE_CHECKING:
    from gateway.snapshot import Snapshot

_ROLES = {"system", "user", "assistant", "tool"}
_THINK_LEVELS = {"low", "medium", "high"}
# options -> canonical field; the other sampling options have no canonical counterpart (400).
_OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}
_SAMPLING_UNSUPPORTED = {
    "top_k", "min_p", "typical_p", "tfs_z", "repeat_penalty", "repeat_last_n", "mirostat", "mirostat_tau",
    "mirostat_eta", "penalize_newline", "num_keep",
}  # fmt: skip
# Magic bytes -> media type of the base64 images Ollama clients send.
_IMAGE_TYPES = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)
_DONE_REASONS = {"tool_calls": "stop"}  # Ollama ends a tool-calling turn with "stop"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


# -- request ---------------------------------------------------------------------------------------


def _image_url(image: object, where: str) -> str:
    if not isinstance(image, str) or not image:
        raise bad_request(f"{where} must be a base64-encoded image", param=where)
    if image.startswith("data:"):
        return image
    try:
        head = base64.b64decode(image[:64] + "=" * (-len(image[:64]) % 4), validate=False)
    except (binascii.Error, ValueError):
        raise bad_request(f"{where} is not valid base64", param=where) from None
    media = next((kind for magic, kind in _IMAGE_TYPES if head.startswith(magic)), None)
    if media == "image/webp" and head[8:12] != b"WEBP":
        media = None  # RIFF also starts WAV and AVI files
    if media is None:
        raise bad_request(f"{where} is not a PNG, JPEG, GIF or WebP image", param=where)
    return f"data:{media};base64,{image}"


def _user_content(message: dict[str, Any], where: str) -> str | list[dict[str, Any]]:
    text = message.get("content") or ""
    images = message.get("images")
    if not images:
        return text
    if not isinstance(images, list):
        raise bad_request(f"{where}.images must be an array of base64 strings", param=f"{where}.images")
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for index, image in enumerate(images):
        parts.append({"type": "image_url", "image_url": {"url": _image_url(image, f"{where}.images[{index}]")}})
    return parts


def _tool_calls(raw: object, where: str, turn: int) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise bad_request(f"{where}.tool_calls must be an array", param=f"{where}.tool_calls")
    calls = []
    for index, call in enumerate(raw):
        call = call if isinstance(call, dict) else {}
        function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request(f"{where}.tool_calls[{index}].function.name is required", param=f"{where}.tool_calls")
        arguments = function.get("arguments") or {}
        if not isinstance(arguments, dict | str):
            raise bad_request(f"{where}.tool_calls[{index}].function.arguments must be an object")
        encoded = arguments if isinstance(arguments, str) else orjson.dumps(arguments).decode()
        # The ollama SDK keeps no call ids: make stable ones so tool results can point at them.
        call_id = call.get("id") if isinstance(call.get("id"), str) and call["id"] else f"call_{turn}_{index}"
        calls.append({"id": call_id, "type": "function", "function": {"name": name, "arguments": encoded}})
    return calls


class _Pending:
    """Tool calls of the latest assistant turn still waiting for their result."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def answer(self, message: dict[str, Any], where: str) -> str:
        wanted = message.get("tool_call_id")
        name = message.get("tool_name") or message.get("name")
        match = next((c for c in self.calls if wanted and c["id"] == wanted), None)
        match = match or next((c for c in self.calls if name and c["function"]["name"] == name), None)
        match = match or (self.calls[0] if self.calls and not wanted else None)
        if match is None:
            raise bad_request(f"{where}: a tool result with no matching tool call before it", param=where)
        self.calls.remove(match)
        return str(match["id"])


def _messages(raw: object) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise bad_request("Field 'messages' must be a non-empty array", param="messages")
    messages: list[dict[str, Any]] = []
    pending = _Pending()
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise bad_request(f"{where}.role must be one of {', '.join(sorted(_ROLES))}", param=f"{where}.role")
        if not isinstance(message.get("content", ""), str | None):
            raise bad_request(f"{where}.content must be a string", param=f"{where}.content")
        messages.append(_message(message, where, index, pending))
    return messages


def _message(message: dict[str, Any], where: str, index: int, pending: _Pending) -> dict[str, Any]:
    role = message["role"]
    if role == "tool":
        return {"role": "tool", "tool_call_id": pending.answer(message, where), "content": message.get("content") or ""}
    if message.get("images") and role != "user":
        raise bad_request(f"{where}: only user messages may carry images", param=f"{where}.images")
    if role != "assistant":
        return {"role": role, "content": _user_content(message, where)}
    result: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if isinstance(message.get("thinking"), str) and message["thinking"]:
        result["reasoning_content"] = message["thinking"]
    if message.get("tool_calls"):
        calls = _tool_calls(message["tool_calls"], where, index)
        result["tool_calls"] = calls
        result["content"] = result["content"] or None  # OpenAI's shape for a turn of only tool calls
        pending.calls = list(calls)
    return result


def _tools(raw: object) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise bad_request("Field 'tools' must be an array", param="tools")
    tools = []
    for index, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise bad_request(f"tools[{index}].function.name must be a non-empty string", param=f"tools[{index}]")
        tools.append({"type": "function", "function": {k: v for k, v in function.items() if v is not None}})
    return tools


def _format(raw: object) -> dict[str, Any] | None:
    if raw in (None, ""):
        return None
    if raw == "json":
        return {"type": "json_object"}
    if isinstance(raw, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": raw}}
    raise bad_request("Field 'format' must be \"json\" or a JSON schema object", param="format")


def _options(raw: object, canonical: dict[str, Any]) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise bad_request("Field 'options' must be an object", param="options")
    unsupported = sorted(name for name in raw if name in _SAMPLING_UNSUPPORTED and raw[name] is not None)
    if unsupported:
        raise bad_request(
            f"options {', '.join(unsupported)} cannot be passed on to the model's provider", param="options"
        )
    for name, target in _OPTIONS.items():
        value = raw.get(name)
        if value is not None:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise bad_request(f"options.{name} must be a number", param=f"options.{name}")
            canonical[target] = value
    predict = raw.get("num_predict")
    if predict is not None:
        if not isinstance(predict, int) or isinstance(predict, bool):
            raise bad_request("options.num_predict must be an integer", param="options.num_predict")
        if predict > 0:  # -1 (unbounded) and -2 (fill the context) leave the provider's default
            canonical["max_tokens"] = predict
    stop = raw.get("stop")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise bad_request("options.stop must be an array of strings", param="options.stop")
        if stop:
            canonical["stop"] = stop


def _think(raw: object) -> str | None:
    if raw is None or raw is False:
        return None
    if raw is True:
        return "medium"
    if isinstance(raw, str) and raw in _THINK_LEVELS:
        return raw
    raise bad_request("Field 'think' must be a boolean or one of low, medium, high", param="think")


# -- response --------------------------------------------------------------------------------------


def _arguments(raw: str, name: str) -> dict[str, Any]:
    """Ollama clients get tool arguments as objects; arguments that are not one cannot be sent."""
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise GatewayError(502, f"The model called tool {name!r} with arguments that are not a JSON object: {raw}")
    return value


def _tool_call(call_id: str, index: int, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "function": {"index": index, "name": name, "arguments": _arguments(arguments, name)}}


def _whole_call(call: dict[str, Any], index: int) -> dict[str, Any]:
    function = call.get("function") or {}
    call_id = str(call.get("id") or f"call_{index}")
    return _tool_call(call_id, index, function.get("name") or "", function.get("arguments") or "")


def _counts(usage: object) -> dict[str, int]:
    usage = usage if isinstance(usage, dict) else {}
    return {
        "prompt_eval_count": int(usage.get("prompt_tokens") or 0),
        "eval_count": int(usage.get("completion_tokens") or 0),
    }


def _done_reason(finish_reason: object) -> str:
    reason = str(finish_reason or "stop")
    return _DONE_REASONS.get(reason, reason)


def _timings(total: int, first: int | None) -> dict[str, int]:
    """Nanoseconds as the gateway saw them: prompt = until the first token, eval = the rest."""
    prompt = first if first is not None else total
    return {
        "total_duration": total,
        "load_duration": 0,
        "prompt_eval_duration": prompt,
        "eval_duration": total - prompt,
    }


def _line(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


class OllamaStreamEncoder(StreamEncoder):
    """Canonical chunks -> NDJSON: a line per text or thinking delta, a line per tool call once its
    arguments are complete, and exactly one final `done: true` line with the counts."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = time.monotonic_ns()
        self.first_token: int | None = None
        self.calls: dict[int, dict[str, Any]] = {}  # canonical index -> {"id", "name", "arguments"}
        self.finish_reason: str | None = None
        self.usage: object = None
        self.failed = False

    def feed(self, chunk: Canonical) -> bytes:
        if self.failed:
            return b""
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        out: list[bytes] = []
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and not choice.get("index"):
                out.extend(self._choice(choice))
        return b"".join(out)

    def finish(self) -> bytes:
        if self.failed:
            return b""
        out = self._flush_calls()
        if self.failed:
            return b"".join(out)
        total = time.monotonic_ns() - self.started
        final = {
            **self._message("", done=True),
            "done_reason": _done_reason(self.finish_reason),
            **_timings(total, self.first_token),
            **_counts(self.usage),
        }
        return b"".join([*out, _line(final)])

    def _choice(self, choice: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        delta = choice.get("delta") or {}
        thinking = delta.get("reasoning_content")
        content = delta.get("content")
        if thinking or content:
            self._mark_first_token()
            if delta.get("tool_calls") is None and self.calls:
                out.extend(self._flush_calls())
            line = self._message(content or "", done=False)
            if thinking:
                line["message"]["thinking"] = thinking
            out.append(_line(line))
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                out.extend(self._tool_delta(call))
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            out.extend(self._flush_calls())
        return out

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        self._mark_first_token()
        index = call.get("index") or 0
        function = call.get("function") or {}
        out: list[bytes] = []
        if index not in self.calls:
            out.extend(self._flush_calls())  # a new call starts: the earlier ones are complete
            self.calls[index] = {"id": call.get("id") or f"call_{index}", "name": "", "arguments": ""}
        state = self.calls[index]
        state["name"] += function.get("name") or ""
        state["arguments"] += function.get("arguments") or ""
        return out

    def _flush_calls(self) -> list[bytes]:
        calls, self.calls = self.calls, {}
        out: list[bytes] = []
        for index in sorted(calls):
            state = calls[index]
            try:
                whole = _tool_call(state["id"], index, state["name"], state["arguments"])
            except GatewayError as err:
                self.failed = True
                return [*out, _line({"error": err.message})]
            line = self._message("", done=False)
            line["message"]["tool_calls"] = [whole]
            out.append(_line(line))
        return out

    def _message(self, content: str, *, done: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": content},
            "done": done,
        }

    def _mark_first_token(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic_ns() - self.started


class OllamaFormat(ClientFormat):
    name = "ollama"
    native_provider_format = None
    stream_content_type = b"application/x-ndjson"

    def __init__(self) -> None:
        self._tags: tuple[object, bytes] | None = None

    def to_canonical(self, payload: dict[str, Any]) -> Canonical:
        canonical: dict[str, Any] = {
            "model": payload.get("model"),
            "messages": _messages(payload.get("messages")),
            "stream": payload.get("stream", True) is not False,
        }
        if payload.get("tools"):
            canonical["tools"] = _tools(payload["tools"])
        response_format = _format(payload.get("format"))
        if response_format is not None:
            canonical["response_format"] = response_format
        _options(payload.get("options"), canonical)
        effort = _think(payload.get("think"))
        if effort is not None:
            canonical["reasoning_effort"] = effort
        if payload.get("logprobs"):
            raise bad_request("Field 'logprobs' is not supported by the gateway", param="logprobs")
        return canonical

    def render_response(self, response: Canonical) -> bytes:
        choices = response.get("choices") or [{}]
        choice = choices[0] if isinstance(choices[0], dict) else {}
        message = choice.get("message") or {}
        out: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("reasoning_content"):
            out["thinking"] = message["reasoning_content"]
        calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
        if calls:
            out["tool_calls"] = [_whole_call(call, index) for index, call in enumerate(calls)]
        body = {
            "model": response.get("model") or "",
            "created_at": _now(),
            "message": out,
            "done": True,
            "done_reason": _done_reason(choice.get("finish_reason")),
            **_timings(0, None),
            **_counts(response.get("usage")),
        }
        return orjson.dumps(body)

    def stream_encoder(self, *, model: str, request_id: str, include_usage: bool) -> StreamEncoder:
        return OllamaStreamEncoder(model)

    def error_body(self, err: GatewayError) -> bytes:
        return orjson.dumps({"error": err.message})

    def stream_error(self, err: GatewayError) -> bytes:
        return _line({"error": err.message})

    def tags_body(self, snap: Snapshot) -> bytes:
        """`/api/tags`: the chat models `/v1/models` lists, in Ollama's shape (cached per snapshot)."""
        cached = self._tags
        if cached is not None and cached[0] is snap:
            return cached[1]
        body = _tags(snap)
        self._tags = (snap, body)
        return body


def _tags(snap: Snapshot) -> bytes:
    listed = orjson.loads(snap.models_body).get("data") or []
    modified = datetime.fromtimestamp(snap.built_at, UTC).isoformat().replace("+00:00", "Z")
    models = []
    for entry in listed:
        if entry.get("type", "chat") != "chat":
            continue
        name = str(entry["id"])
        family = str(entry.get("owned_by") or name.partition("/")[0])
        models.append(
            {
                "name": name,
                "model": name,
                "modified_at": modified,
                "size": 0,
                "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {
                    "parent_model": "",
                    "format": "",
                    "family": family,
                    "families": [family],
                    "parameter_size": "",
                    "quantization_level": "",
                },
            }
        )
    return orjson.dumps({"models": models})


FORMAT = OllamaFormat()
