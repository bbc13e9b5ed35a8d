"""OpenAI Responses API as a client format (`POST /v1/responses`).

A Responses provider gets the client's body untouched (passthrough). Any other provider gets
the canonical translation: `instructions` and `input` items become chat messages (consecutive
assistant-side items — reasoning, message, function_call — make one assistant message), function
tools and `tool_choice` map one to one. What only a Responses provider can serve — built-in
tools, server-side state (`previous_response_id`, `conversation`, stored prompts, `item_reference`,
`background`), file ids — is left out of the canonical form and named in a 400 by
`check_translatable` when the request is to be translated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.errors import GatewayError, bad_request

from .base import Canonical, ClientFormat, StreamEncoder
from .responses_output import ResponsesStreamEncoder, decode_reasoning, error_event, render_response

_MESSAGE_ROLES = {"user", "assistant", "system", "developer"}
_TEXT_PARTS = {"input_text", "output_text", "text"}
_TOOL_CHOICES = {"auto", "none", "required"}
# Top-level fields that need state kept by OpenAI, and why the gateway cannot translate them.
_STATEFUL = {
    "previous_response_id": "previous_response_id (the gateway keeps no conversation state: send the whole "
    "conversation in `input`)",
    "conversation": "conversation (server-side conversation state)",
    "prompt": "prompt (stored prompt templates)",
}


class _Unsupported(Exception):
    """An input feature only a Responses provider can serve (named in check_translatable's 400)."""


# -- content parts ---------------------------------------------------------------------------------


def _part(part: object, where: str) -> dict[str, Any]:
    """One input content part as a canonical part; _Unsupported when only Responses can take it."""
    if not isinstance(part, dict):
        raise bad_request(f"{where} must be an object", param=where)
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": _string(part, "text", where)}
    if kind == "refusal":
        return {"type": "text", "text": _string(part, "refusal", where)}
    if kind == "input_image":
        return _image_part(part, where)
    if kind == "input_file":
        return _file_part(part, where)
    raise _Unsupported(f"{where}: content of type {kind!r}")


def _image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        if part.get("file_id"):
            raise _Unsupported(f"{where}: input_image by file_id (files stored at OpenAI)")
        raise bad_request(f"{where}.image_url must be a non-empty string", param=f"{where}.image_url")
    image: dict[str, Any] = {"url": url}
    if isinstance(part.get("detail"), str):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _file_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    data = part.get("file_data")
    if not isinstance(data, str) or not data:
        raise _Unsupported(f"{where}: input_file by file_id or file_url (only file_data can be translated)")
    file: dict[str, Any] = {"file_data": data}
    if isinstance(part.get("filename"), str):
        file["filename"] = part["filename"]
    return {"type": "file", "file": file}


def _content(content: object, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"{where} must be a string or an array of content parts", param=where)
    return [_part(part, f"{where}[{index}]") for index, part in enumerate(content)]


def _string(obj: dict[str, Any], name: str, where: str, *, required: bool = True) -> str:
    value = obj.get(name)
    if isinstance(value, str) and (value or not required):
        return value
    if value is None and not required:
        return ""
    raise bad_request(f"{where}.{name} must be a non-empty string", param=f"{where}.{name}")


def _text_of(parts: str | list[dict[str, Any]]) -> str:
    if isinstance(parts, str):
        return parts
    return "".join(part.get("text", "") for part in parts)


# -- input items -----------------------------------------------------------------------------------


@dataclass
class _Conversation:
    """Builds chat messages from input items; assistant-side items accumulate into one turn."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    assistant: dict[str, Any] | None = None
    tool_extra: dict[str, Any] = field(default_factory=dict)

    def turn(self) -> dict[str, Any]:
        if self.assistant is None:
            self.assistant = {"role": "assistant", "content": None}
            self.messages.append(self.assistant)
        return self.assistant

    def close(self) -> None:
        """Tool-call signatures may arrive in a reasoning item after the calls: attach them now."""
        if self.assistant is not None and self.tool_extra:
            for call in self.assistant.get("tool_calls", []):
                extra = self.tool_extra.pop(call["id"], None)
                if extra is not None:
                    call["extra_content"] = extra
        self.assistant = None
        self.tool_extra = {}

    def add(self, item: object, where: str) -> None:
        if not isinstance(item, dict):
            raise bad_request(f"{where} must be an object", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            self._message(item, where)
        elif kind == "function_call":
            self._function_call(item, where)
        elif kind == "function_call_output":
            self._function_output(item, where)
        elif kind == "reasoning":
            self._reasoning(item, where)
        else:
            raise _Unsupported(f"{where}: item of type {kind!r}")

    def _message(self, item: dict[str, Any], where: str) -> None:
        role = item.get("role")
        if role not in _MESSAGE_ROLES:
            raise bad_request(f"{where}.role must be one of {', '.join(sorted(_MESSAGE_ROLES))}", param=f"{where}.role")
        content = _content(item.get("content"), f"{where}.content")
        if role != "assistant":
            self.close()
            self.messages.append({"role": role, "content": content})
            return
        turn = self.turn()
        text = _text_of(content)
        turn["content"] = f"{turn['content']}\n\n{text}" if turn["content"] and text else (turn["content"] or text)

    def _function_call(self, item: dict[str, Any], where: str) -> None:
        arguments = item.get("arguments", "")
        if not isinstance(arguments, str):
            raise bad_request(f"{where}.arguments must be a string of JSON", param=f"{where}.arguments")
        call = {
            "id": _string(item, "call_id", where),
            "type": "function",
            "function": {"name": _string(item, "name", where), "arguments": arguments or "{}"},
        }
        self.turn().setdefault("tool_calls", []).append(call)

    def _function_output(self, item: dict[str, Any], where: str) -> None:
        call_id = _string(item, "call_id", where)
        output = item.get("output", "")
        content = _content(output, f"{where}.output")
        self.close()
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": content})

    def _reasoning(self, item: dict[str, Any], where: str) -> None:
        texts: list[str] = [
            part["text"]
            for key in ("summary", "content")
            for part in (item.get(key) or [])
            if isinstance(part, dict) and isinstance(part.get("text"), str) and part.get("text")
        ]
        turn = self.turn()
        if texts:
            joined = "\n\n".join(texts)
            previous = turn.get("reasoning_content")
            turn["reasoning_content"] = f"{previous}\n\n{joined}" if previous else joined
        carried = decode_reasoning(item.get("encrypted_content"))
        if carried is not None:
            blocks, extra = carried
            if blocks:
                turn.setdefault("thinking_blocks", []).extend(blocks)
            self.tool_extra.update(extra)


def _raw_input(payload: dict[str, Any]) -> str | list[Any] | None:
    """`input`, checked for its shape; None only when server-side state stands in for it."""
    raw = payload.get("input")
    if raw is None:
        if any(payload.get(name) for name in _STATEFUL):
            return None
        raise bad_request("Missing required field 'input'", param="input")
    if not isinstance(raw, str | list):
        raise bad_request("Field 'input' must be a string or an array of input items", param="input")
    if isinstance(raw, list) and not raw:
        raise bad_request("Field 'input' must not be empty", param="input")
    return raw


def _walk_input(payload: dict[str, Any], unsupported: list[str] | None) -> list[dict[str, Any]]:
    """Input items as chat messages; untranslatable items are skipped and, if asked, listed."""
    raw = _raw_input(payload)
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    conversation = _Conversation()
    for index, item in enumerate(raw):
        try:
            conversation.add(item, f"input[{index}]")
        except _Unsupported as exc:
            if unsupported is not None:
                unsupported.append(str(exc))
    conversation.close()
    return conversation.messages


# -- tools and options -----------------------------------------------------------------------------


def _tools(raw: object, unsupported: list[str] | None = None) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad_request("Field 'tools' must be an array", param="tools")
    tools = []
    for index, tool in enumerate(raw):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise bad_request(f"{where} must be an object", param=where)
        if not isinstance(tool.get("type"), str) or not tool["type"]:
            raise bad_request(f"{where}.type must be a non-empty string", param=f"{where}.type")
        if tool["type"] != "function":
            if unsupported is not None:
                unsupported.append(f"{where}: built-in tool {tool.get('type')!r}")
            continue
        tools.append({"type": "function", "function": _function(tool, where)})
    return tools


def _function(tool: dict[str, Any], where: str) -> dict[str, Any]:
    function: dict[str, Any] = {"name": _string(tool, "name", where)}
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise bad_request(f"{where}.parameters must be a JSON schema object", param=f"{where}.parameters")
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    if parameters is not None:
        function["parameters"] = parameters
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return function


def _tool_choice(raw: object, unsupported: list[str] | None = None) -> object:
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw not in _TOOL_CHOICES:
            choices = ", ".join(sorted(_TOOL_CHOICES))
            raise bad_request(f"Field 'tool_choice' must be one of {choices} or an object", param="tool_choice")
        return raw
    if not isinstance(raw, dict):
        raise bad_request("Field 'tool_choice' must be a string or an object", param="tool_choice")
    if raw.get("type") == "function":
        return {"type": "function", "function": {"name": _string(raw, "name", "tool_choice")}}
    if unsupported is not None:
        unsupported.append(f"tool_choice of type {raw.get('type')!r}")
    return None


def _response_format(text: object) -> dict[str, Any] | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise bad_request("Field 'text' must be an object", param="text")
    fmt = text.get("format")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None
    if not isinstance(fmt, dict):
        raise bad_request("Field 'text.format' must be an object", param="text.format")
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}
    if fmt.get("type") != "json_schema":
        raise bad_request("text.format.type must be text, json_object or json_schema", param="text.format.type")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise bad_request("text.format.schema must be a JSON schema object", param="text.format.schema")
    spec: dict[str, Any] = {"name": _string(fmt, "name", "text.format"), "schema": schema}
    for name in ("strict", "description"):
        if fmt.get(name) is not None:
            spec[name] = fmt[name]
    return {"type": "json_schema", "json_schema": spec}


def _number(payload: dict[str, Any], name: str) -> float | None:
    value = payload.get(name)
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise bad_request(f"Field '{name}' must be a number", param=name)
    return value


def _options(payload: dict[str, Any], canonical: dict[str, Any]) -> None:
    max_tokens = payload.get("max_output_tokens")
    if max_tokens is not None:
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise bad_request("Field 'max_output_tokens' must be a positive integer", param="max_output_tokens")
        canonical["max_tokens"] = max_tokens
    for name in ("temperature", "top_p"):
        if _number(payload, name) is not None:
            canonical[name] = payload[name]
    if isinstance(payload.get("parallel_tool_calls"), bool):
        canonical["parallel_tool_calls"] = payload["parallel_tool_calls"]
    reasoning = payload.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise bad_request("Field 'reasoning' must be an object", param="reasoning")
        effort = reasoning.get("effort")
        if effort is not None and not isinstance(effort, str):
            raise bad_request("reasoning.effort must be a string", param="reasoning.effort")
        if effort:
            canonical["reasoning_effort"] = effort
    user = payload.get("safety_identifier") or payload.get("user")
    if isinstance(user, str) and user:
        canonical["user"] = user
    text = payload.get("text")
    verbosity = text.get("verbosity") if isinstance(text, dict) else None
    if isinstance(verbosity, str) and verbosity != "medium":
        canonical["verbosity"] = verbosity  # OpenAI chat's own parameter of the same name


def _unsupported_options(payload: dict[str, Any]) -> list[str]:
    found = [why for name, why in _STATEFUL.items() if payload.get(name)]
    if payload.get("background"):
        found.append("background (responses run and stored at OpenAI)")
    if payload.get("top_logprobs"):
        found.append("top_logprobs")
    include = payload.get("include")
    if isinstance(include, list) and "message.output_text.logprobs" in include:
        found.append("include 'message.output_text.logprobs'")
    return found


def _instructions(payload: dict[str, Any]) -> str | None:
    instructions = payload.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise bad_request("Field 'instructions' must be a string", param="instructions")
    return instructions


# -- the format ------------------------------------------------------------------------------------


class ResponsesFormat(ClientFormat):
    stream_end_markers = (b"event: response.completed", b"event: response.incomplete")
    name = "responses"
    native_provider_format = "responses"

    def validate(self, payload: dict[str, Any]) -> Canonical | None:
        """The body's shape only: a Responses provider gets it as is (and checks the rest itself);
        the translation waits until the router knows the call is translated."""
        _raw_input(payload)
        _instructions(payload)
        if not isinstance(payload.get("tools", []), list | None):
            raise bad_request("Field 'tools' must be an array", param="tools")
        return None

    def to_canonical(self, payload: dict[str, Any]) -> Canonical:
        messages: list[dict[str, Any]] = []
        instructions = _instructions(payload)
        if instructions:
            messages.append({"role": "system", "content": instructions})
        messages.extend(_walk_input(payload, None))
        canonical: dict[str, Any] = {
            "model": payload.get("model"),
            "messages": messages,
            "stream": payload.get("stream") is True,
        }
        tools = _tools(payload.get("tools"))
        if tools:
            canonical["tools"] = tools
        tool_choice = _tool_choice(payload.get("tool_choice"))
        if tool_choice is not None:
            canonical["tool_choice"] = tool_choice
        response_format = _response_format(payload.get("text"))
        if response_format is not None:
            canonical["response_format"] = response_format
        _options(payload, canonical)
        return canonical

    def check_translatable(self, payload: dict[str, Any]) -> None:
        found = _unsupported_options(payload)
        _walk_input(payload, found)
        _tools(payload.get("tools"), found)
        _tool_choice(payload.get("tool_choice"), found)
        if found:
            raise bad_request(
                "This model's provider does not speak the Responses API, and the request uses what only a "
                f"Responses provider can serve: {'; '.join(found)}",
                code="unsupported_feature",
            )

    def render_response(self, response: Canonical) -> bytes:
        return orjson.dumps(render_response(response))

    def stream_encoder(self, *, model: str, request_id: str, include_usage: bool) -> StreamEncoder:
        return ResponsesStreamEncoder(model)

    def stream_error(self, err: GatewayError) -> bytes:
        return error_event(err.message, err.code or err.type)


FORMAT = ResponsesFormat()
