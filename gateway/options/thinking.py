"""The thinking budget setting, applied to the body sent to each provider.

Applied per attempt (a combo's members may be different providers and models) to the body
the adapter is about to encode: the canonical body when the request is translated (the
adapters map `reasoning_effort` / `thinking_budget` to each wire format), or the client's
own body when it passes through to a provider of its format. Modes (docs/API.md §13):

- passthrough: nothing is touched (no policy object exists).
- custom: every reasoning model gets `effortLevel` (effort-based formats) and
  `customBudget` tokens (budget-based formats).
- auto: the client's own reasoning request stands (translated across formats); when the
  client asked for nothing, `effortLevel` and its budget apply.
- adaptive: the request's size picks a tier: low / medium / high effort and
  0.25x / 1x / 2x `customBudget` tokens.

Models the catalog marks as not reasoning get every reasoning field removed (all modes but
passthrough); models the catalog does not know are assumed able to reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

EFFORT_LEVELS = ("none", "minimal", "low", "medium", "high")
# Budget of an effort level for budget-based providers (Anthropic, Gemini); auto mode.
EFFORT_BUDGETS = {"none": 0, "minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
MAX_BUDGET = 131072
ANTHROPIC_MIN_BUDGET = 1024
# Adaptive tiers: (body bytes below, turns at most) -> small; (bytes from, turns above) -> large.
SMALL_BYTES, SMALL_TURNS = 2_000, 4
LARGE_BYTES, LARGE_TURNS = 20_000, 20
TIERS = {"small": ("low", 0.25), "medium": ("medium", 1.0), "large": ("high", 2.0)}


@dataclass(frozen=True, slots=True)
class ThinkingPolicy:
    mode: str  # auto | custom | adaptive
    custom_budget: int
    effort_level: str


@dataclass(frozen=True, slots=True)
class Decision:
    effort: str  # for effort-based formats (OpenAI chat, Responses)
    budget: int  # tokens for budget-based formats (Anthropic, Gemini); 0 = off


def request_tier(body: dict[str, Any]) -> str:
    """small / medium / large, from the body's JSON size (tools included) and its turn count."""
    size = len(orjson.dumps(body))
    turns = next((len(v) for k in ("messages", "contents", "input") if isinstance(v := body.get(k), list)), 1)
    if size >= LARGE_BYTES or turns > LARGE_TURNS:
        return "large"
    if size < SMALL_BYTES and turns <= SMALL_TURNS:
        return "small"
    return "medium"


def decide(policy: ThinkingPolicy, body: dict[str, Any], fmt: str) -> Decision | None:
    """What to send, or None to leave the body's own reasoning fields as they are."""
    if policy.mode == "custom":
        return Decision(policy.effort_level, policy.custom_budget)
    if policy.mode == "auto":
        if _requested(body, fmt):
            return None
        return Decision(policy.effort_level, EFFORT_BUDGETS[policy.effort_level])
    effort, factor = TIERS[request_tier(body)]
    return Decision(effort, min(MAX_BUDGET, round(policy.custom_budget * factor)))


def apply_thinking(
    policy: ThinkingPolicy, body: dict[str, Any], *, fmt: str, provider_format: str, reasoning: bool | None
) -> dict[str, Any]:
    """The body to send. `fmt`: "canonical" or the native wire format of a passthrough body;
    `provider_format`: the target's wire format; `reasoning`: the catalog's flag (None: unknown)."""
    if reasoning is False:
        return _strip(body, fmt)
    decision = decide(policy, body, fmt)
    if decision is None:
        return body
    if fmt == "canonical":
        return _canonical(body, decision, provider_format)
    return _WRITERS[fmt](dict(body), decision)


# -- reading what the client asked ------------------------------------------------------------


def _gemini_config(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for key in ("generationConfig", "generation_config"):
        if isinstance(body.get(key), dict):
            return key, body[key]
    return "generationConfig", {}


def _requested(body: dict[str, Any], fmt: str) -> bool:
    if fmt == "canonical":
        return body.get("reasoning_effort") is not None or body.get("thinking_budget") is not None
    if fmt == "openai":
        return body.get("reasoning_effort") is not None
    if fmt == "responses":
        reasoning = body.get("reasoning")
        return isinstance(reasoning, dict) and reasoning.get("effort") is not None
    if fmt == "anthropic":
        return body.get("thinking") is not None
    config = _gemini_config(body)[1]
    return any(config.get(k) is not None for k in ("thinkingConfig", "thinking_config"))


# -- writing -----------------------------------------------------------------------------------


def _anthropic_budget(budget: int, max_tokens: Any, tool_choice_forced: bool) -> int:
    """Anthropic's rules: budget_tokens >= 1024 and < max_tokens; no thinking with a forced tool."""
    if budget <= 0 or tool_choice_forced:
        return 0
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        if max_tokens <= ANTHROPIC_MIN_BUDGET:
            return 0
        budget = min(budget, max_tokens - 1)
    return max(budget, ANTHROPIC_MIN_BUDGET)


def _canonical(body: dict[str, Any], decision: Decision, provider_format: str) -> dict[str, Any]:
    out = dict(body)
    out["reasoning_effort"] = decision.effort
    budget = decision.budget
    if provider_format == "anthropic":
        choice = body.get("tool_choice")
        forced = choice == "required" or isinstance(choice, dict)
        budget = _anthropic_budget(budget, body.get("max_completion_tokens") or body.get("max_tokens"), forced)
        if budget:
            # Anthropic refuses sampling changes while thinking.
            out.pop("temperature", None)
            out.pop("top_p", None)
    out["thinking_budget"] = budget
    return out


def _openai(body: dict[str, Any], decision: Decision) -> dict[str, Any]:
    body["reasoning_effort"] = decision.effort
    return body


def _responses(body: dict[str, Any], decision: Decision) -> dict[str, Any]:
    reasoning = body.get("reasoning")
    body["reasoning"] = {**(reasoning if isinstance(reasoning, dict) else {}), "effort": decision.effort}
    return body


def _anthropic(body: dict[str, Any], decision: Decision) -> dict[str, Any]:
    choice = body.get("tool_choice")
    forced = isinstance(choice, dict) and choice.get("type") in ("any", "tool")
    budget = _anthropic_budget(decision.budget, body.get("max_tokens"), forced)
    if not budget:
        body.pop("thinking", None)
        return body
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    for name in ("temperature", "top_k", "top_p"):
        body.pop(name, None)
    return body


def _gemini(body: dict[str, Any], decision: Decision) -> dict[str, Any]:
    key, config = _gemini_config(body)
    config = dict(config)
    previous = config.pop("thinkingConfig", None) or config.pop("thinking_config", None)
    thinking = {
        k: v
        for k, v in (previous if isinstance(previous, dict) else {}).items()
        if k not in ("thinkingBudget", "thinking_budget", "thinkingLevel", "thinking_level")
    }
    thinking["thinkingBudget"] = decision.budget
    config["thinkingConfig"] = thinking
    body[key] = config
    return body


_WRITERS = {"openai": _openai, "responses": _responses, "anthropic": _anthropic, "gemini": _gemini}


# -- stripping (models that cannot reason) -------------------------------------------------------

_TOP_LEVEL = {
    "canonical": ("reasoning_effort", "thinking_budget"),
    "openai": ("reasoning_effort",),
    "responses": ("reasoning",),
    "anthropic": ("thinking",),
}


def _strip(body: dict[str, Any], fmt: str) -> dict[str, Any]:
    if fmt == "gemini":
        key, config = _gemini_config(body)
        if not any(k in config for k in ("thinkingConfig", "thinking_config")):
            return body
        trimmed = {k: v for k, v in config.items() if k not in ("thinkingConfig", "thinking_config")}
        return {**body, key: trimmed}
    names = _TOP_LEVEL.get(fmt, ())
    if not any(name in body for name in names):
        return body
    return {k: v for k, v in body.items() if k not in names}


def thinking_for_target(
    policy: ThinkingPolicy, body: dict[str, Any], target: Any, provider_format: str, passthrough: bool
) -> dict[str, Any]:
    """`apply_thinking` for a router target (`provider`: ProviderInfo, `model_id`)."""
    model = target.provider.model(target.model_id)
    reasoning = model.reasoning if model is not None else None
    fmt = provider_format if passthrough else "canonical"
    return apply_thinking(policy, body, fmt=fmt, provider_format=provider_format, reasoning=reasoning)
