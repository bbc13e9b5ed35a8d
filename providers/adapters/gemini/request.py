"""Canonical (OpenAI chat) request -> Gemini `generateContent` request body.

What Gemini cannot express is a 400 naming it (logprobs, logit_bias, audio output,
parallel_tool_calls=false, non-function tools); see docs/API.md §2 (Gemini).
"""

from __future__ import annotations

import mimetypes
import re
from typing import Any

import orjson

from gateway.errors import GatewayError, bad_request

from .wire import (
    SKIP_SIGNATURE,
    assistant_to_model_parts,
    audio_mime,
    is_base64,
    parse_data_url,
)

# Canonical fields with no Gemini counterpart: refusing beats silently ignoring them.
_REFUSED = ("logprobs", "top_logprobs", "logit_bias", "audio", "prediction", "web_search_options")
# Gemini 2.5 takes a token budget; these are its usual levels for OpenAI's effort names.
_EFFORT_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
# Gemini 3 takes a level instead (its budget is kept only for compatibility).
_EFFORT_LEVELS = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high"}
_GEMINI_MAJOR = re.compile(r"gemini-(\d+)")


def unsupported(feature: str) -> GatewayError:
    return bad_request(f"The Gemini provider format cannot express {feature}", code="unsupported_feature")


def gemini_major(model_id: str) -> int:
    match = _GEMINI_MAJOR.search(model_id)
    return int(match.group(1)) if match else 0


def build_request(body: dict[str, Any], model_id: str) -> dict[str, Any]:
    for name in _REFUSED:
        if body.get(name) not in (None, False, 0):
            raise unsupported(f"'{name}'")
    if body.get("parallel_tool_calls") is False:
        raise unsupported("'parallel_tool_calls': false (Gemini decides on parallel calls itself)")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise unsupported(f"'modalities': {modalities!r} (only text output)")
    system, contents = _contents(body.get("messages") or [], model_id)
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    tools = _tools(body.get("tools"))
    if tools:
        request["tools"] = tools
    tool_config = _tool_config(body.get("tool_choice"))
    if tool_config:
        request["toolConfig"] = {"functionCallingConfig": tool_config}
    config = _generation_config(body, model_id)
    if config:
        request["generationConfig"] = config
    return request


# -- messages ----------------------------------------------------------------------------------


def _contents(messages: list[Any], model_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name: a functionResponse must name its function
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request(f"messages[{index}] must be an object", param=f"messages[{index}]")
        role = message.get("role")
        if role in ("system", "developer"):
            # Gemini has one system instruction; every system message joins it, in order.
            system.extend(_text_parts(message.get("content"), f"messages[{index}]"))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), f"messages[{index}]"))
        elif role == "assistant":
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and call.get("id"):
                    names[call["id"]] = (call.get("function") or {}).get("name") or ""
            parts = assistant_to_model_parts(message, unsigned_thoughts=False, signature_of=_own_signature)
            _append(contents, "model", parts)
        elif role == "tool":
            _append(contents, "user", [_function_response(message, names, index)])
        else:
            raise bad_request(f"messages[{index}].role {role!r} is not supported", param=f"messages[{index}].role")
    if gemini_major(model_id) >= 3:
        _fill_signatures(contents)
    return system, contents


def _own_signature(signature: str) -> str | None:
    """Only base64 can be a Gemini signature (proto bytes); another provider's opaque reasoning
    state (e.g. a Responses reasoning item) is left out rather than sent to fail."""
    return signature if is_base64(signature) else None


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    """Add a turn, merging it into the previous one of the same role (tool results and the user
    text after them are one Gemini `user` turn)."""
    if not parts:
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _fill_signatures(contents: list[dict[str, Any]]) -> None:
    """Gemini 3 answers 400 when a step's first function call has no signature (history from
    another provider or a client that dropped it): mark those with Google's documented skip value."""
    for content in contents:
        if content["role"] != "model":
            continue
        first = next((p for p in content["parts"] if "functionCall" in p), None)
        if first is not None and not first.get("thoughtSignature"):
            first["thoughtSignature"] = SKIP_SIGNATURE


def _text_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for part in content or []:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise unsupported(f"non-text content in a system message ({where})")
        if part.get("text"):
            parts.append({"text": part["text"]})
    return parts


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        return []
    return [converted for part in content if (converted := _user_part(part, where)) is not None]


def _user_part(part: Any, where: str) -> dict[str, Any] | None:
    if not isinstance(part, dict):
        raise bad_request(f"{where}.content parts must be objects", param=where)
    kind = part.get("type")
    if kind == "text":
        return {"text": part["text"]} if part.get("text") else None
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        if not isinstance(url, str) or not url:
            raise bad_request(f"{where}: image_url.url must be a non-empty string", param=where)
        return _media_part(url)
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        return {"inlineData": {"mimeType": audio_mime(str(audio.get("format") or "wav")), "data": audio.get("data")}}
    if kind == "file":
        file = part.get("file") or {}
        if isinstance(file.get("file_data"), str):
            return _media_part(file["file_data"])
        if isinstance(file.get("file_url"), str):
            return _media_part(file["file_url"])
        raise unsupported(f"file parts without inline data or a URL ({where}); Gemini cannot read OpenAI file ids")
    raise unsupported(f"content parts of type {kind!r} ({where})")


def _media_part(url: str) -> dict[str, Any]:
    """A data URL becomes inline bytes; any other URL becomes `fileData`, which Gemini fetches
    itself (public and signed HTTPS URLs, Files API and gs:// URIs). The gateway never fetches."""
    inline = parse_data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    if url.startswith("data:"):
        raise bad_request("Only base64 data URLs are supported for media", param="messages")
    file_data = {"fileUri": url}
    mime, _ = mimetypes.guess_type(url.split("?", 1)[0])
    if mime:
        file_data["mimeType"] = mime
    return {"fileData": file_data}


def _function_response(message: dict[str, Any], names: dict[str, str], index: int) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if not name:
        raise bad_request(
            f"messages[{index}]: tool_call_id {call_id!r} matches no earlier assistant tool call "
            "(Gemini needs the function name of every tool result)",
            param=f"messages[{index}].tool_call_id",
        )
    body: dict[str, Any] = {"name": name, "response": _tool_result(message.get("content"), index)}
    body["id"] = call_id
    return {"functionResponse": body}


def _tool_result(content: Any, index: int) -> dict[str, Any]:
    """Gemini wants an object: a JSON object result is passed as is, anything else as `output`."""
    if isinstance(content, list):
        if any(isinstance(p, dict) and p.get("type") not in (None, "text") for p in content):
            raise unsupported(f"non-text tool results (messages[{index}])")
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        content = "" if content is None else orjson.dumps(content).decode()
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return {"output": content}
    return value if isinstance(value, dict) else {"output": content}


# -- tools -------------------------------------------------------------------------------------


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not tools:
        return []
    declarations = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
            raise unsupported(f"tools of type {kind!r} (tools[{index}])")
        function = tool.get("function") or {}
        declaration: dict[str, Any] = {"name": function.get("name")}
        if function.get("description"):
            declaration["description"] = function["description"]
        if function.get("parameters") is not None:
            # Full JSON Schema: no lossy conversion to Gemini's OpenAPI subset.
            declaration["parametersJsonSchema"] = function["parameters"]
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}]


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        return {"mode": "ANY", "allowedFunctionNames": [name]}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = [(t.get("function") or {}).get("name") for t in allowed.get("tools") or [] if isinstance(t, dict)]
        return {"mode": "ANY" if allowed.get("mode") == "required" else "AUTO", "allowedFunctionNames": names}
    raise bad_request(f"Unsupported tool_choice {choice!r}", param="tool_choice")


# -- generation config -------------------------------------------------------------------------


def _generation_config(body: dict[str, Any], model_id: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    for source, target in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(source) is not None:
            config[target] = body[source]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(body.get("n"), int) and body["n"] > 1:
        config["candidateCount"] = body["n"]
    config.update(_response_format(body.get("response_format")))
    thinking = _thinking(body, model_id)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def _response_format(fmt: Any) -> dict[str, Any]:
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return {}
    if fmt["type"] == "json_object":
        return {"responseMimeType": "application/json"}
    if fmt["type"] == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        out: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema is not None:
            out["responseJsonSchema"] = schema
        return out
    raise bad_request(f"Unsupported response_format type {fmt['type']!r}", param="response_format")


def _thinking(body: dict[str, Any], model_id: str) -> dict[str, Any]:
    budget = body.get("thinking_budget")
    if isinstance(budget, int) and not isinstance(budget, bool):
        return {"thinkingBudget": budget, "includeThoughts": budget != 0}
    effort = body.get("reasoning_effort")
    if not isinstance(effort, str):
        return {}
    if effort not in _EFFORT_BUDGETS:
        raise bad_request(f"Unsupported reasoning_effort {effort!r}", param="reasoning_effort")
    if gemini_major(model_id) >= 3:
        return {"thinkingLevel": _EFFORT_LEVELS.get(effort, "high"), "includeThoughts": effort != "none"}
    return {"thinkingBudget": _EFFORT_BUDGETS[effort], "includeThoughts": effort != "none"}
