"""Gemini `generateContent` request -> canonical (OpenAI chat) request.

Malformed bodies are a 400 here, whatever the target. Features that only Gemini can carry
(safety settings, cached content, built-in tools such as Google Search, more than one
candidate...) are collected instead: a Gemini provider receives the client's own body
unchanged, and any other target gets a 400 naming them (`check_translatable`).
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError, bad_request
from providers.adapters.gemini.wire import (
    dumps,
    media_to_canonical,
    model_parts_to_assistant,
    pick,
    schema_to_json,
)

from .signatures import from_client

_TOP_LEVEL = {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "model"}
_GEMINI_ONLY = {"safetySettings": "safetySettings", "cachedContent": "cachedContent"}
_CONFIG_FIELDS = {
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "stopSequences",
    "candidateCount",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "thinkingConfig",
}
_DATA_FIELDS = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
_LEVELS = {"minimal", "low", "medium", "high"}


def invalid(message: str, param: str | None = None) -> GatewayError:
    return bad_request(message, param=param, code="INVALID_ARGUMENT")


class Reader:
    """One request's conversion: collects what only a Gemini provider could serve."""

    def __init__(self) -> None:
        self.untranslatable: list[str] = []
        self.calls: list[tuple[str, str]] = []  # (function name, call id) not yet answered
        self.minted = 0

    def gemini_only(self, feature: str) -> None:
        if feature not in self.untranslatable:
            self.untranslatable.append(feature)

    def mint_id(self) -> str:
        """Ids for function calls that came without one; stable within the request."""
        self.minted += 1
        return f"call_gemini_{self.minted}"


def convert(payload: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The canonical request, and the Gemini-only features it had to leave out."""
    reader = Reader()
    messages = _system(payload)
    messages.extend(_contents(pick(payload, "contents"), reader))
    canonical: dict[str, Any] = {"messages": messages}
    for key in payload:
        name = _camel(key)
        if name in _GEMINI_ONLY:
            if payload[key]:
                reader.gemini_only(_GEMINI_ONLY[name])
        elif name not in _TOP_LEVEL:
            reader.gemini_only(name)
    _tools(payload, canonical, reader)
    _generation_config(pick(payload, "generationConfig"), canonical, reader)
    return canonical, reader.untranslatable


def validate(payload: dict[str, Any]) -> None:
    """The 400s of a malformed body, without converting the contents (a passthrough never
    needs them converted; inline media can be megabytes)."""
    _check_contents(pick(payload, "contents"))
    _system(payload)
    scratch: dict[str, Any] = {}
    _tools(payload, scratch, Reader())
    _generation_config(pick(payload, "generationConfig"), scratch, Reader())


def refuse(features: list[str]) -> None:
    if features:
        raise bad_request(
            "Not supported when routing a Gemini request to a non-Gemini provider (or streaming without "
            f"alt=sse): {', '.join(features)}",
            code="unsupported_feature",
        )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


# -- contents ----------------------------------------------------------------------------------


def _system(payload: dict[str, Any]) -> list[dict[str, Any]]:
    system = pick(payload, "systemInstruction")
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if not isinstance(system, dict) or not isinstance(system.get("parts"), list):
        raise invalid("systemInstruction must be a Content object with parts", "systemInstruction")
    texts = []
    for index, part in enumerate(system["parts"]):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise invalid(f"systemInstruction.parts[{index}] must be a text part", "systemInstruction")
        texts.append(part["text"])
    return [{"role": "system", "content": "\n".join(texts)}] if texts else []


def _check_contents(contents: Any) -> list[dict[str, Any]]:
    if contents is None:
        raise invalid("contents is not specified", "contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("contents must be a non-empty array of Content objects", "contents")
    for index, content in enumerate(contents):
        where = f"contents[{index}]"
        if not isinstance(content, dict):
            raise invalid(f"{where} must be an object", where)
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            raise invalid(f"{where}.parts must be a non-empty array", f"{where}.parts")
        if (content.get("role") or "user") not in ("user", "model", "function"):
            raise invalid(f"{where}.role must be 'user' or 'model', got {content['role']!r}", f"{where}.role")
        for number, part in enumerate(parts):
            _check_part(part, f"{where}.parts[{number}]")
    return contents


def _contents(contents: Any, reader: Reader) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for index, content in enumerate(_check_contents(contents)):
        parts = content["parts"]
        if content.get("role") == "model":
            messages.append(_model_turn(parts, reader))
        else:
            messages.extend(_user_turn(parts, f"contents[{index}]", reader))
    return messages


def _check_part(part: Any, where: str) -> None:
    if not isinstance(part, dict):
        raise invalid(f"{where} must be an object", where)
    fields = [name for name in _DATA_FIELDS if pick(part, name) is not None]
    if len(fields) != 1:
        raise invalid(f"{where} must have exactly one data field (text, inlineData, functionCall...)", where)
    if "text" in fields and not isinstance(part["text"], str):
        raise invalid(f"{where}.text must be a string", where)
    call = pick(part, "functionCall")
    if call is not None and (not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]):
        raise invalid(f"{where}.functionCall.name must be a non-empty string", where)
    answer = pick(part, "functionResponse")
    if answer is not None and (
        not isinstance(answer, dict) or not isinstance(answer.get("name"), str) or not answer["name"]
    ):
        raise invalid(f"{where}.functionResponse.name must be a non-empty string", where)
    for name in ("inlineData", "fileData"):
        media = pick(part, name)
        key = "data" if name == "inlineData" else "fileUri"
        if media is not None and (not isinstance(media, dict) or not isinstance(pick(media, key), str)):
            raise invalid(f"{where}.{name}.{key} must be a string", where)


def _model_turn(parts: list[dict[str, Any]], reader: Reader) -> dict[str, Any]:
    message, other = model_parts_to_assistant(parts, reader.mint_id, from_client)
    for kind in other:
        reader.gemini_only(f"{kind} parts in model turns")
    for call in message.get("tool_calls") or []:
        reader.calls.append((call["function"]["name"], call["id"]))
    return message


def _user_turn(parts: list[dict[str, Any]], where: str, reader: Reader) -> list[dict[str, Any]]:
    """Function responses become tool messages, placed first: OpenAI-style targets need them
    right after the assistant's tool calls. The other parts form one user message."""
    tools: list[dict[str, Any]] = []
    content: list[dict[str, Any]] = []
    for part in parts:
        answer = pick(part, "functionResponse")
        if isinstance(answer, dict):
            tools.append(_tool_message(answer, reader, where))
        elif isinstance(part.get("text"), str):
            content.append({"type": "text", "text": part["text"]})
        elif (media := _media(part)) is not None:
            content.append(media)
        else:
            reader.gemini_only(f"{next(k for k in part if k not in ('thought', 'thoughtSignature'))} parts")
    messages = tools
    if content:
        only_text = len(content) == 1 and content[0]["type"] == "text"
        messages.append({"role": "user", "content": content[0]["text"] if only_text else content})
    return messages


def _media(part: dict[str, Any]) -> dict[str, Any] | None:
    inline = pick(part, "inlineData")
    if isinstance(inline, dict):
        return media_to_canonical(str(pick(inline, "mimeType") or "application/octet-stream"), pick(inline, "data"))
    file = pick(part, "fileData")
    if isinstance(file, dict):
        uri, mime = pick(file, "fileUri"), str(pick(file, "mimeType") or "")
        if mime.startswith("image/") or not mime:
            return {"type": "image_url", "image_url": {"url": uri}}
        return {"type": "file", "file": {"file_url": uri}}
    return None


def _tool_message(answer: dict[str, Any], reader: Reader, where: str) -> dict[str, Any]:
    name, given = answer["name"], answer.get("id")
    match = next((c for c in reader.calls if given and c[1] == given), None)
    match = match or next((c for c in reader.calls if c[0] == name), None)
    if match is None:
        reader.gemini_only(f"functionResponse '{name}' without a matching functionCall")
        call_id = given if isinstance(given, str) and given else reader.mint_id()
    else:
        reader.calls.remove(match)
        call_id = match[1]
    response = answer.get("response")
    if response is not None and not isinstance(response, dict):
        raise invalid(f"{where}: functionResponse.response must be an object", where)
    if pick(answer, "parts"):
        reader.gemini_only("functionResponse.parts")
    return {"role": "tool", "tool_call_id": call_id, "content": dumps(response or {})}


# -- tools -------------------------------------------------------------------------------------


def _tools(payload: dict[str, Any], canonical: dict[str, Any], reader: Reader) -> None:
    tools = pick(payload, "tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise invalid("tools must be an array of Tool objects", "tools")
    declared: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"tools[{index}] must be an object", f"tools[{index}]")
        for key in tool:
            if _camel(key) != "functionDeclarations":
                reader.gemini_only(f"tools[{index}].{_camel(key)}")
        declarations = pick(tool, "functionDeclarations") or []
        if not isinstance(declarations, list):
            raise invalid(f"tools[{index}].functionDeclarations must be an array", f"tools[{index}]")
        declared.extend(_function(d, f"tools[{index}].functionDeclarations[{n}]") for n, d in enumerate(declarations))
    if declared:
        canonical["tools"] = declared
        _tool_choice(pick(payload, "toolConfig"), canonical)


def _function(declaration: Any, where: str) -> dict[str, Any]:
    if not isinstance(declaration, dict) or not isinstance(declaration.get("name"), str) or not declaration["name"]:
        raise invalid(f"{where}.name must be a non-empty string", where)
    function: dict[str, Any] = {"name": declaration["name"]}
    if isinstance(declaration.get("description"), str):
        function["description"] = declaration["description"]
    schema = pick(declaration, "parametersJsonSchema")
    if schema is None and pick(declaration, "parameters") is not None:
        schema = schema_to_json(pick(declaration, "parameters"))
    if schema is not None:
        if not isinstance(schema, dict):
            raise invalid(f"{where}.parameters must be a schema object", where)
        function["parameters"] = schema
    # `response`/`responseJsonSchema` describe what the function returns; the model is not
    # constrained by them and OpenAI-style tools have no such field, so they are not carried.
    return {"type": "function", "function": function}


def _tool_choice(config: Any, canonical: dict[str, Any]) -> None:
    calling = pick(config, "functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict):
        return
    mode = str(calling.get("mode") or "AUTO").upper()
    names = pick(calling, "allowedFunctionNames") or []
    if mode not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
        raise invalid(f"toolConfig.functionCallingConfig.mode {mode!r} is not valid", "toolConfig")
    if names:
        known = {tool["function"]["name"] for tool in canonical["tools"]}
        unknown = [name for name in names if name not in known]
        if unknown:
            raise invalid(f"allowedFunctionNames names undeclared functions: {', '.join(unknown)}", "toolConfig")
    if mode == "NONE":
        canonical["tool_choice"] = "none"
    elif mode == "ANY" and len(names) == 1:
        canonical["tool_choice"] = {"type": "function", "function": {"name": names[0]}}
    else:
        # Several allowed names: only those tools are offered for this turn.
        if names:
            canonical["tools"] = [tool for tool in canonical["tools"] if tool["function"]["name"] in names]
        canonical["tool_choice"] = "required" if mode == "ANY" else "auto"


# -- generation config -------------------------------------------------------------------------


def _number(config: dict[str, Any], name: str) -> float | None:
    value = pick(config, name)
    if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
        raise invalid(f"generationConfig.{name} must be a number", f"generationConfig.{name}")
    return value


def _integer(config: dict[str, Any], name: str, minimum: int) -> int | None:
    value = _number(config, name)
    if value is None:
        return None
    if value != int(value) or value < minimum:
        raise invalid(f"generationConfig.{name} must be an integer of at least {minimum}", f"generationConfig.{name}")
    return int(value)


def _generation_config(config: Any, canonical: dict[str, Any], reader: Reader) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        raise invalid("generationConfig must be an object", "generationConfig")
    for key, value in config.items():
        if _camel(key) not in _CONFIG_FIELDS and value is not None:
            reader.gemini_only(f"generationConfig.{_camel(key)}")
    for name, target, minimum in (
        ("maxOutputTokens", "max_tokens", 1),
        ("topK", "top_k", 1),
        ("seed", "seed", -(2**63)),
    ):
        if (value := _integer(config, name, minimum)) is not None:
            canonical[target] = value
    for name, target in (
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
    ):
        if (number := _number(config, name)) is not None:
            canonical[target] = number
    candidates = _integer(config, "candidateCount", 1)
    if candidates is not None and candidates > 1:
        reader.gemini_only("generationConfig.candidateCount > 1")
    _stop(config, canonical)
    _modalities(config, reader)
    _response_format(config, canonical, reader)
    _thinking(pick(config, "thinkingConfig"), canonical)


def _stop(config: dict[str, Any], canonical: dict[str, Any]) -> None:
    stop = pick(config, "stopSequences")
    if stop is None:
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise invalid("generationConfig.stopSequences must be an array of strings", "generationConfig.stopSequences")
    if stop:
        canonical["stop"] = stop


def _modalities(config: dict[str, Any], reader: Reader) -> None:
    modalities = pick(config, "responseModalities")
    if isinstance(modalities, list) and any(str(m).upper() != "TEXT" for m in modalities):
        reader.gemini_only("generationConfig.responseModalities other than TEXT")


def _response_format(config: dict[str, Any], canonical: dict[str, Any], reader: Reader) -> None:
    mime = pick(config, "responseMimeType")
    schema = pick(config, "responseJsonSchema")
    if schema is None and pick(config, "responseSchema") is not None:
        schema = schema_to_json(pick(config, "responseSchema"))
    if mime in (None, "text/plain"):
        if schema is not None:
            raise invalid("responseSchema needs responseMimeType application/json", "generationConfig")
        return
    if mime != "application/json":
        reader.gemini_only(f"generationConfig.responseMimeType {mime!r}")
        return
    if schema is None:
        canonical["response_format"] = {"type": "json_object"}
    else:
        canonical["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}


def _thinking(thinking: Any, canonical: dict[str, Any]) -> None:
    """thinkingBudget n > 0 -> `thinking_budget`; 0 (off) -> `thinking_budget: 0`; -1 (dynamic) ->
    the provider's default; thinkingLevel -> `reasoning_effort`. includeThoughts has no canonical
    form: providers return their reasoning when they produce it."""
    if thinking is None:
        return
    if not isinstance(thinking, dict):
        raise invalid("generationConfig.thinkingConfig must be an object", "generationConfig.thinkingConfig")
    budget = _integer(thinking, "thinkingBudget", -1)
    level = pick(thinking, "thinkingLevel")
    if level is not None:
        level = str(level).lower()
        if level not in _LEVELS:
            raise invalid(f"thinkingLevel {level!r} is not valid", "generationConfig.thinkingConfig")
        canonical["reasoning_effort"] = level
    if budget is not None and budget >= 0:
        canonical["thinking_budget"] = budget
