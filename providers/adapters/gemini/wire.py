"""Pieces of the Gemini `generateContent` wire format shared by both directions.

Used by the Gemini provider adapter (canonical -> Gemini request, Gemini answer -> canonical)
and by the Gemini client format (Gemini request -> canonical, canonical -> Gemini answer).

Gemini's JSON is proto3 JSON: a parser must accept both `lowerCamelCase` and the proto's
`snake_case` field names, and the google-genai SDK really does send both (`inlineData` with
`mime_type` inside, `thinkingConfig` with `thinking_budget`). `pick` reads either.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

# Google documents this value for function calls whose signature was lost (history from another
# model or provider): Gemini 3 then skips its signature check instead of answering 400.
SKIP_SIGNATURE = "skip_thought_signature_validator"
# A signature transform: the value to write, or None to leave the signature out.
Signature = Callable[[str], str | None]

FINISH_TO_CANONICAL = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}
FINISH_TO_GEMINI = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*?;base64,(?P<data>.*)$", re.S)
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/x-wav": "wav", "audio/mp3": "mp3", "audio/mpeg": "mp3"}
_AUDIO_MIMES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


@lru_cache(maxsize=512)
def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def pick(obj: dict[str, Any], name: str) -> Any:
    """Field `name` (lowerCamelCase) of a Gemini object, also under its snake_case name."""
    value = obj.get(name)
    if value is None:
        value = obj.get(snake(name))
    return value


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# -- usage and finish reasons ------------------------------------------------------------------


def _count(meta: dict[str, Any], name: str) -> int:
    value = pick(meta, name)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def usage_to_canonical(meta: Any) -> dict[str, Any] | None:
    """`usageMetadata` -> OpenAI usage. Completion tokens include the thoughts, as OpenAI counts them."""
    if not isinstance(meta, dict):
        return None
    prompt = _count(meta, "promptTokenCount") + _count(meta, "toolUsePromptTokenCount")
    thoughts = _count(meta, "thoughtsTokenCount")
    completion = _count(meta, "candidatesTokenCount") + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _count(meta, "totalTokenCount") or prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _count(meta, "cachedContentTokenCount")},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def usage_to_gemini(usage: Any) -> dict[str, Any]:
    if not isinstance(usage, dict):
        return {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("completion_tokens_details")
    reasoning = int(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0
    prompt_details = usage.get("prompt_tokens_details")
    cached = int(prompt_details.get("cached_tokens") or 0) if isinstance(prompt_details, dict) else 0
    meta: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": max(0, completion - reasoning),
        "totalTokenCount": int(usage.get("total_tokens") or prompt + completion),
    }
    if cached:
        meta["cachedContentTokenCount"] = cached
    if reasoning:
        meta["thoughtsTokenCount"] = reasoning
    return meta


def finish_to_canonical(reason: Any, *, has_tool_calls: bool) -> str | None:
    if not isinstance(reason, str) or not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    if has_tool_calls and reason == "STOP":
        return "tool_calls"
    return FINISH_TO_CANONICAL.get(reason, "stop")


def finish_to_gemini(reason: Any) -> str | None:
    if not isinstance(reason, str) or not reason:
        return None
    return FINISH_TO_GEMINI.get(reason, "OTHER")


# -- media -------------------------------------------------------------------------------------


def parse_data_url(url: str) -> tuple[str, str] | None:
    """(mime type, base64 data) of a `data:...;base64,...` URL."""
    match = _DATA_URL.match(url)
    if match is None:
        return None
    return match["mime"] or "application/octet-stream", match["data"]


def standard_base64(data: str) -> str:
    """Gemini accepts URL-safe base64 (the google-genai SDK sends it); data URLs and OpenAI-style
    providers want the standard alphabet. The two differ only in these two characters."""
    if "-" in data or "_" in data:
        return data.replace("-", "+").replace("_", "/")
    return data


def is_base64(value: str) -> bool:
    """Exactly what a proto `bytes` field (and the google-genai SDK) accepts: canonical base64,
    either alphabet, padding and unused bits included."""
    standard = standard_base64(value)
    try:
        return base64.b64encode(base64.b64decode(standard, validate=True)).decode() == standard
    except (binascii.Error, ValueError):
        return False


def same(signature: str) -> str | None:
    return signature


def media_to_canonical(mime: str, data: str) -> dict[str, Any]:
    """Inline bytes -> a canonical (OpenAI chat) content part: image, audio or file."""
    data = standard_base64(data)
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
    audio = _AUDIO_FORMATS.get(mime)
    if audio is not None:
        return {"type": "input_audio", "input_audio": {"data": data, "format": audio}}
    return {"type": "file", "file": {"file_data": f"data:{mime};base64,{data}"}}


def audio_mime(fmt: str) -> str:
    return _AUDIO_MIMES.get(fmt, f"audio/{fmt}")


# -- schemas -----------------------------------------------------------------------------------

_SCHEMA_KEYS = {
    "any_of": "anyOf",
    "min_items": "minItems",
    "max_items": "maxItems",
    "min_length": "minLength",
    "max_length": "maxLength",
    "min_properties": "minProperties",
    "max_properties": "maxProperties",
}


def schema_to_json(schema: Any) -> Any:
    """A Gemini `Schema` (OpenAPI subset: `type: "OBJECT"`, `nullable`) -> JSON Schema."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for raw_key, value in schema.items():
        key = _SCHEMA_KEYS.get(str(raw_key), str(raw_key))
        if key == "type" and isinstance(value, str):
            if value.upper() != "TYPE_UNSPECIFIED":
                out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: schema_to_json(sub) for name, sub in value.items()}
        elif key == "items":
            out["items"] = schema_to_json(value)
        elif key == "anyOf" and isinstance(value, list):
            out["anyOf"] = [schema_to_json(sub) for sub in value]
        elif key == "example":
            out["examples"] = [value]
        elif key not in ("nullable", "propertyOrdering", "property_ordering"):
            # propertyOrdering only orders Gemini's output; JSON Schema has no such hint.
            out[key] = value
    if schema.get("nullable") is True:
        kind = out.get("type")
        out["type"] = [kind, "null"] if isinstance(kind, str) else kind
        if kind is None:
            out.pop("type")
    return out


# -- assistant turns ---------------------------------------------------------------------------


def model_parts_to_assistant(
    parts: list[dict[str, Any]], mint_id: Callable[[], str], signature_of: Signature = same
) -> tuple[dict[str, Any], list[str]]:
    """A `model` turn's parts -> a canonical assistant message, plus the part kinds it cannot hold.

    Thought text becomes `reasoning_content`. A signature on a thought or text part closes a
    thinking block (`thinking_blocks`, the thought text since the previous signature); a
    signature on a function call stays with that call (`extra_content.google.thought_signature`).
    `signature_of` maps each signature read to the canonical value.
    """
    texts: list[str] = []
    thoughts: list[str] = []
    pending: list[str] = []
    blocks: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    other: list[str] = []
    for part in parts:
        raw = pick(part, "thoughtSignature")
        signature = signature_of(raw) if isinstance(raw, str) and raw else None
        call = pick(part, "functionCall")
        if isinstance(call, dict):
            calls.append(tool_call_of(call, signature, mint_id))
            continue
        text = part.get("text")
        if not isinstance(text, str):
            other.extend(key for key in part if key not in ("thought", "thoughtSignature", "thought_signature"))
            continue
        if part.get("thought") is True:
            thoughts.append(text)
            pending.append(text)
        else:
            texts.append(text)
        if signature:
            blocks.append({"type": "thinking", "thinking": "".join(pending), "signature": signature})
            pending = []
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if blocks:
        message["thinking_blocks"] = blocks
    if calls:
        message["tool_calls"] = calls
    return message, other


def tool_call_of(call: dict[str, Any], signature: Any, mint_id: Callable[[], str]) -> dict[str, Any]:
    args = call.get("args")
    call_id = call.get("id")
    out: dict[str, Any] = {
        "id": call_id if isinstance(call_id, str) and call_id else mint_id(),
        "type": "function",
        "function": {"name": call.get("name") or "", "arguments": dumps(args if args is not None else {})},
    }
    if isinstance(signature, str) and signature:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def call_signature(call: dict[str, Any]) -> str | None:
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def function_call_part(call: dict[str, Any], signature_of: Signature = same) -> dict[str, Any]:
    """A canonical tool call -> a Gemini `functionCall` part (arguments parsed back to an object)."""
    function = call.get("function") or {}
    raw = function.get("arguments")
    try:
        args = orjson.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except orjson.JSONDecodeError:
        args = {"arguments": raw}
    body: dict[str, Any] = {"name": function.get("name") or "", "args": args}
    if call.get("id"):
        body["id"] = call["id"]
    part: dict[str, Any] = {"functionCall": body}
    signature = call_signature(call)
    signature = signature_of(signature) if signature else None
    if signature:
        part["thoughtSignature"] = signature
    return part


def assistant_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def assistant_to_model_parts(
    message: dict[str, Any], *, unsigned_thoughts: bool, signature_of: Signature = same
) -> list[dict[str, Any]]:
    """A canonical assistant message -> `model` parts: thoughts, text, then function calls.

    Each thinking block becomes a thought part; the last block's signature rides on the text
    part when there is one (where Gemini itself puts it), else on the thought part.
    `unsigned_thoughts`: also send reasoning text no signature vouches for (Gemini ignores it
    in requests, so the adapter leaves it out; a Gemini client is shown it). `signature_of`
    maps each canonical signature to the value written (None: left out).
    """
    text = assistant_text(message.get("content"))
    parts: list[dict[str, Any]] = []
    carried: str | None = None
    blocks = [b for b in message.get("thinking_blocks") or [] if isinstance(b, dict) and b.get("type") == "thinking"]
    for number, block in enumerate(blocks):
        thought, signature = block.get("thinking") or "", block.get("signature") or None
        signature = signature_of(signature) if signature else None
        last = number == len(blocks) - 1
        if not signature and not unsigned_thoughts:
            continue
        if last and text and signature:
            carried, signature = signature, None
        if thought:
            part: dict[str, Any] = {"text": thought, "thought": True}
            if signature:
                part["thoughtSignature"] = signature
            parts.append(part)
    reasoning = message.get("reasoning_content")
    if not blocks and unsigned_thoughts and isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    if text:
        parts.append({"text": text, "thoughtSignature": carried} if carried else {"text": text})
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict):
            parts.append(function_call_part(call, signature_of))
    return parts
