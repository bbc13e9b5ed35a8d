"""What makes two requests the same answer: the cache key, and the semantic split.

The key hashes the client's own body (every client format), minus the fields that do not
change the answer (`stream`, `stream_options`, `user`, metadata...), together with the
client format family, the model name the client asked for and the plan's resolved targets
(so an alias or combo that now points elsewhere no longer hits old entries).

Semantic matching compares only the last user message: every other part of the request (the
earlier turns, system prompt, tools, parameters) goes into a `scope` hash that must match
exactly, so a paraphrase is only served an answer given in the same context.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from .routing import Plan

# Fields that never change the answer.
_IGNORED = frozenset(
    {
        "model",
        "stream",
        "stream_options",
        "user",
        "metadata",
        "store",
        "keep_alive",
        "prompt_cache_key",
        "safety_identifier",
        "service_tier",
    }
)
# Where each client format keeps the sampling parameters.
_NESTED = ("generationConfig", "generation_config", "options")


@dataclass(frozen=True, slots=True)
class Lookup:
    key: str  # sha256 hex of the normalized request
    scope: str  # sha256 hex of everything but the last user message ("" without one)
    prompt: str  # the last user message's text, for semantic matching ("" without one)
    requested: str  # the model name the client sent


def _param(payload: dict[str, Any], name: str) -> Any:
    if name in payload:
        return payload[name]
    for nested in _NESTED:
        block = payload.get(nested)
        if isinstance(block, dict) and name in block:
            return block[name]
    return None


def deterministic(payload: dict[str, Any]) -> bool:
    """Temperature 0 or a seed (absent temperature means the provider's default, usually 1)."""
    temperature = _param(payload, "temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool) and temperature == 0:
        return True
    seed = _param(payload, "seed")
    return isinstance(seed, int) and not isinstance(seed, bool)


def _normal(value: Any) -> Any:
    """Integral floats as ints: `0.0` and `0` are the same JSON number (SDKs differ)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _hash(family: str, plan: Plan, body: Any, thinking: Any = None) -> str:
    material = {"v": 1, "f": family, "m": plan.requested, "t": [t.name for t in plan.targets], "b": _normal(body)}
    if thinking is not None:  # the operator's thinking budget changes what the provider is asked
        material["k"] = [thinking.mode, thinking.custom_budget, thinking.effort_level]
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _text(content: Any) -> str:
    """Text of a message's content in any format: a string, or parts with `text`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def split_last_user(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(the body without its last user message, that message's text); ("", ...) when the
    conversation does not end with a user message."""
    for field in ("messages", "contents", "input"):
        items = body.get(field)
        if field == "input" and isinstance(items, str):
            return {**body, "input": None}, items
        if not isinstance(items, list) or not items or not isinstance(items[-1], dict):
            continue
        last = items[-1]
        if last.get("role", "user") != "user":
            return body, ""
        text = _text(last.get("parts") if field == "contents" else last.get("content"))
        return {**body, field: items[:-1]}, text
    return body, ""


def describe(
    client: str, payload: dict[str, Any], plan: Plan, *, non_deterministic: bool, thinking: Any = None
) -> Lookup | None:
    """The request's cache identity; None when it must not be cached (not deterministic).
    `thinking`: the thinking-budget setting applied to the request (gateway.options.thinking),
    part of the identity so that changing it does not serve answers produced under another."""
    if not non_deterministic and not deterministic(payload):
        return None
    family = client  # (the Gemini JSON-array stream's format is named "gemini" too)
    body = {k: v for k, v in payload.items() if k not in _IGNORED}
    try:
        key = _hash(family, plan, body, thinking)
        context, prompt = split_last_user(body)
        scope = _hash(family, plan, context, thinking) if prompt.strip() else ""
    except (TypeError, orjson.JSONEncodeError):  # not JSON-serializable (cannot come from a parsed body)
        return None
    return Lookup(key=key, scope=scope, prompt=prompt if scope else "", requested=plan.requested)
