"""Model resolution into a plan of targets, combo strategies, connection selection, and the
fallback rules: what a failure costs (cooldowns, breaker failures) and where the request
goes next. docs/API.md §3 states the same rules as a table.

Resolution order for the `model` a client sends (docs/API.md §2):
combo name → `provider/model` → alias (exact, then glob) → catalog (bare model id).
"""

from __future__ import annotations

import enum
import fnmatch
import logging
import random
import re
from dataclasses import dataclass, field
from functools import lru_cache

from providers.adapters.base import ProviderError
from providers.catalog import ProviderInfo

from .errors import GatewayError, bad_request
from .options.effective import connection_selection_setting
from .pipeline import Target, resolve_model
from .snapshot import ComboEntry, ComboMember, KeyEntry, ResilienceProfileEntry, Snapshot
from .state import BreakerPolicy, LocalState

log = logging.getLogger(__name__)

MAX_COMBO_DEPTH = 3
# A deactivated or suspended account stays out until an operator clears it.
DEACTIVATED_COOLDOWN_SECONDS = 365 * 24 * 3600.0
# Backoff levels of 429s without a wait hint count up while 429s keep coming and start over
# after this long without one.
BACKOFF_MEMORY_SECONDS = 600.0
SELECTION_STRATEGIES = ("priority", "round-robin")

_CREDIT_HINT = re.compile(
    r"insufficient[_ ]quota|insufficient[_ ](?:credits?|balance|funds)|credit[_ ]balance|out of credits?"
    r"|credits? (?:exhausted|depleted|used up)|no (?:remaining )?credits|billing|payment[_ ]required"
    r"|exceeded your current quota|quota (?:has been )?exhausted|top up",
    re.I,
)
_DEACTIVATED_HINT = re.compile(
    r"account[_ ]deactivated|account (?:has been |is )?(?:deactivated|disabled|suspended|banned)"
    r"|organization (?:has been |is )?(?:deactivated|disabled|suspended)|verify your account",
    re.I,
)
# 400s that depend on the provider or model, not on the request as such: another member may take it.
_PROVIDER_SCOPED_HINT = re.compile(
    r"not supported|unsupported|does not support|prohibited[_ ]content|third-party|"
    r"no such tool|not available in your (?:country|region)|model_not_available",
    re.I,
)


@dataclass(slots=True)
class Plan:
    requested: str
    targets: list[Target]
    combo: ComboEntry | None = None
    # Per target: the least-used counters a success increments ("combo:member" at each level).
    usage_keys: list[tuple[str, ...]] = field(default_factory=list)


def alias_target(model: str, snap: Snapshot) -> str | None:
    target = snap.aliases.get(model)
    if target is not None:
        return target
    lowered = model.lower()
    for pattern, target in snap.alias_globs:
        if fnmatch.fnmatchcase(lowered, pattern.lower()):
            return target
    return None


async def _expand(
    combo: ComboEntry,
    snap: Snapshot,
    state: LocalState,
    depth: int,
    seen: frozenset[str],
    keys: tuple[str, ...],
    out: Plan,
) -> None:
    """Members of a combo in the order its strategy chooses now; nested combos expanded in place."""
    for member in await order_members(combo, state, snap):
        member_keys = (*keys, f"{combo.name}:{member.model}")
        if member.is_combo:
            nested = snap.combos.get(member.model)
            # Depth and cycles are checked on save; a race between two saves must still not loop here.
            if nested is None or not nested.is_active or nested.name in seen or depth >= MAX_COMBO_DEPTH:
                continue
            await _expand(nested, snap, state, depth + 1, seen | {nested.name}, member_keys, out)
        else:
            target = resolve_model(member.model, snap)
            target.member = f"{combo.name}:{target.name}"
            out.targets.append(target)
            out.usage_keys.append(member_keys)


async def resolve_plan(model: str, snap: Snapshot, state: LocalState) -> Plan:
    combo = snap.combos.get(model)
    if combo is not None and combo.is_active:
        plan = Plan(requested=model, targets=[], combo=combo)
        await _expand(combo, snap, state, 1, frozenset({combo.name}), (), plan)
        if not plan.targets:
            raise GatewayError(503, f"Combo '{model}' has no usable member", code="combo_empty")
        return plan
    if "/" not in model:
        alias = alias_target(model, snap)
        if alias is not None:
            if alias in snap.combos:
                return await resolve_plan(alias, snap, state)
            return Plan(requested=model, targets=[resolve_model(alias, snap)])
    return Plan(requested=model, targets=[resolve_model(model, snap)])


def pinned_plan(provider_name: str, model: str, snap: Snapshot) -> Plan:
    """`/v1/providers/{provider}/...`: the model of that one provider, no combos or aliases.

    The provider prefix is added when missing; a model id that is in the provider's catalog
    is taken as is even when it contains a slash (OpenRouter's `openai/gpt-4o-mini`)."""
    provider = snap.catalog.resolve_provider(provider_name)
    if provider is None:
        raise bad_request(f'Unknown provider "{provider_name}"', code="unknown_provider")
    model_id = model
    if provider.model(model) is None:
        prefix, slash, rest = model.partition("/")
        other = snap.catalog.resolve_provider(prefix) if slash else None
        if other is not None:
            if other.id != provider.id:
                raise bad_request(
                    f'Model "{model}" does not belong to provider "{provider.id}"', param="model", code="wrong_provider"
                )
            if not rest:
                raise bad_request(f"Model '{model}' names no model after the provider", param="model")
            model_id = rest
    target = Target(provider=provider, model_id=model_id)
    return Plan(requested=target.name, targets=[target])


def authorize_plan(key: KeyEntry | None, plan: Plan) -> None:
    """A key may use a combo or alias by its own name, or a model by provider/model."""
    if key is None or not key.allowed_models:
        return
    if key.allows_model(plan.requested) or all(key.allows_model(t.name) for t in plan.targets):
        return
    raise GatewayError(403, f"This API key may not use model '{plan.requested}'", code="model_not_allowed")


# -- combo strategies ----------------------------------------------------------------------


def canonical_model(model: str, snap: Snapshot) -> str:
    """`ds/x` → `deepseek/x`: the name latency samples are kept under."""
    prefix, slash, rest = model.partition("/")
    provider = snap.catalog.resolve_provider(prefix) if slash else None
    return f"{provider.id}/{rest}" if provider is not None else model


def _leaves(member: ComboMember, snap: Snapshot) -> list[str]:
    """A member's models: itself, or the direct non-combo members of a nested combo."""
    if not member.is_combo:
        return [member.model]
    nested = snap.combos.get(member.model)
    return [m.model for m in nested.members if not m.is_combo] if nested else []


def _model_price(model: str, snap: Snapshot) -> float:
    prefix, _, model_id = model.partition("/")
    provider = snap.catalog.resolve_provider(prefix)
    info = provider.model(model_id) if provider else None
    if info is None or not info.price:
        return float("inf")  # unknown price: last
    return info.price.get("input", 0.0) + info.price.get("output", 0.0)


def _member_price(member: ComboMember, snap: Snapshot) -> float:
    return min((_model_price(m, snap) for m in _leaves(member, snap)), default=float("inf"))


def _member_latency(member: ComboMember, state: LocalState, snap: Snapshot) -> float:
    """The member's live p50 (ms); a member without samples counts as fastest, so it gets measured."""
    samples = [state.latency_p50(canonical_model(m, snap)) for m in _leaves(member, snap)]
    known = [s for s in samples if s is not None]
    return min(known) if known else 0.0


async def order_members(combo: ComboEntry, state: LocalState, snap: Snapshot) -> list[ComboMember]:
    members = list(combo.members)
    strategy = combo.strategy
    if strategy == "random":
        random.shuffle(members)
    elif strategy == "weighted":
        members = _weighted_order(members)
    elif strategy == "round-robin":
        if members:
            # One sequence across processes when Redis is configured.
            start = await state.next_counter(f"combo:{combo.name}") % len(members)
            members = members[start:] + members[:start]
    elif strategy == "least-used":
        # Stable sort: ties keep the listed order.
        members.sort(key=lambda m: state.usage_count(f"{combo.name}:{m.model}"))
    elif strategy == "cost-optimized":
        members.sort(key=lambda m: _member_price(m, snap))
    elif strategy == "latency-optimized":
        members.sort(key=lambda m: _member_latency(m, state, snap))
    return members


def _weighted_order(members: list[ComboMember]) -> list[ComboMember]:
    """Weighted random order without replacement: the first pick follows the weights.

    Members with weight 0 come after all weighted ones (in listed order); when no member has
    a weight, the order is uniformly random."""
    weighted = [m for m in members if (m.weight or 0) > 0]
    rest = [m for m in members if (m.weight or 0) <= 0]
    if not weighted:
        random.shuffle(rest)
        return rest
    ordered = []
    while weighted:
        pick = random.choices(range(len(weighted)), weights=[m.weight or 0 for m in weighted])[0]
        ordered.append(weighted.pop(pick))
    return ordered + rest


# -- connections -----------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _parse_selection(raw: str) -> tuple[str, dict[str, str]]:
    """`CONNECTION_SELECTION`: `priority` | `round-robin`, optionally followed by per-provider
    overrides, e.g. `priority,openai=round-robin,groq=round-robin`."""
    default, per_provider = "priority", {}
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        name, eq, value = entry.partition("=")
        strategy = (value if eq else name).strip().lower()
        if strategy not in SELECTION_STRATEGIES:
            log.warning("CONNECTION_SELECTION: unknown strategy %r ignored (use priority or round-robin)", strategy)
            continue
        if eq:
            per_provider[name.strip().lower()] = strategy
        else:
            default = strategy
    return default, per_provider


def connection_selection(provider_id: str) -> str:
    default, per_provider = _parse_selection(connection_selection_setting())
    return per_provider.get(provider_id, default)


def selection_overview() -> dict[str, object]:
    default, per_provider = _parse_selection(connection_selection_setting())
    return {"default": default, "providers": dict(per_provider)}


# -- fallback rules ------------------------------------------------------------------------------


def connection_cooldown_key(connection_id: int | None) -> str:
    return f"conn:{connection_id}"


def model_cooldown_key(connection_id: int | None, model_id: str) -> str:
    """The cooldown of one model on one connection: `conn:<id>:<model id>`."""
    return f"conn:{connection_id}:{model_id}"


def cooldown_left(state: LocalState, connection_id: int | None, model_id: str) -> float:
    """Seconds until the connection may serve the model: the longer of its two cooldowns."""
    if not state.cooldowns:
        return 0.0
    return max(
        state.cooldown_remaining(f"conn:{connection_id}"), state.cooldown_remaining(f"conn:{connection_id}:{model_id}")
    )


class Move(enum.Enum):
    NEXT_CONNECTION = "next connection"  # another account of the same provider may succeed
    NEXT_MEMBER = "next member"  # this provider/model will not: try the plan's next target
    END = "end"  # any provider would reject the request: answer the client now


def _about_account(err: ProviderError) -> bool:
    """A 4xx, or a 200 whose body is an error (reported by the router as 502 `error_in_body`):
    the kinds of answer whose text may say the account is the problem."""
    return 400 <= err.status < 500 or err.code == "error_in_body"


def is_deactivated(err: ProviderError) -> bool:
    return _about_account(err) and bool(_DEACTIVATED_HINT.search(err.message))


def is_credit_error(err: ProviderError) -> bool:
    """Credits, balance or quota of the account are exhausted: 402, or a message that says so."""
    return err.status == 402 or (_about_account(err) and bool(_CREDIT_HINT.search(err.message)))


def classify(err: ProviderError) -> Move:
    status = err.status
    if status >= 500 or status in (408, 409, 425, 429):
        return Move.NEXT_CONNECTION
    if status in (401, 402, 403) or is_credit_error(err) or is_deactivated(err):
        return Move.NEXT_CONNECTION
    if status in (400, 422):
        if err.retryable:  # the adapter knows it is about the account (e.g. Gemini API_KEY_INVALID)
            return Move.NEXT_CONNECTION
        if _PROVIDER_SCOPED_HINT.search(err.message):
            return Move.NEXT_MEMBER
        return Move.END
    return Move.NEXT_MEMBER  # 404, 413 and other 4xx: this provider or model, not the request


def profile_for(provider: ProviderInfo, snap: Snapshot) -> ResilienceProfileEntry:
    auth_type = "oauth" if provider.auth == "oauth" else "apikey"
    return snap.profiles.get(auth_type) or snap.profiles["default"]


def breaker_policy(profile: ResilienceProfileEntry) -> BreakerPolicy:
    return BreakerPolicy(
        failure_threshold=profile.breaker_failure_threshold,
        reset_seconds=profile.breaker_reset_seconds,
        half_open_probes=profile.breaker_half_open_probes,
    )


def counts_against_breaker(err: ProviderError) -> bool:
    """Failures that say the provider (or the member's model) is unwell, not one account:
    5xx, 408, timeouts and transport errors (which the router reports as 502/504)."""
    return (err.status >= 500 or err.status == 408) and not (is_credit_error(err) or is_deactivated(err))


def _backoff(profile: ResilienceProfileEntry, level: int) -> float:
    return float(min(profile.cooldown_base_seconds * (profile.backoff_multiplier**level), profile.cooldown_max_seconds))


async def penalize(
    err: ProviderError,
    connection_id: int | None,
    target: Target,
    profile: ResilienceProfileEntry,
    state: LocalState,
) -> None:
    """What a failed attempt costs its connection, before the next attempt.

    Account problems (credits, auth, deactivation) cool the whole connection down; a rate
    limit only the connection's use of this model (providers limit per model), so another
    model on the same account may still serve. Server errors cost nothing here: see
    `penalize_outcome`, which knows whether another connection did better."""
    conn_key = f"conn:{connection_id}"
    message = err.message[:200]
    if is_deactivated(err):
        await state.set_cooldown(
            conn_key, DEACTIVATED_COOLDOWN_SECONDS, f"account deactivated ({err.status}): {message}"
        )
    elif is_credit_error(err):
        await state.set_cooldown(
            conn_key, profile.credit_error_cooldown_seconds, f"credits or quota exhausted ({err.status}): {message}"
        )
    elif err.status == 401:
        await state.set_cooldown(
            conn_key, profile.credit_error_cooldown_seconds, f"authentication failed ({err.status}): {message}"
        )
    elif err.status == 429:
        model_key = model_cooldown_key(connection_id, target.model_id)
        if err.retry_after is not None:
            seconds = err.retry_after
        else:
            seconds = _backoff(profile, await state.next_counter(f"429:{model_key}", ttl=BACKOFF_MEMORY_SECONDS))
        await state.set_cooldown(model_key, max(seconds, 0.001), f"rate limited ({err.status}): {message}")


async def penalize_outcome(
    target: Target,
    served: bool,
    errors: list[tuple[int | None, ProviderError]],
    profile: ResilienceProfileEntry,
    state: LocalState,
) -> None:
    """What the target's server-side failures cost, once its connections are done with.

    - Another connection served: the failing ones are the problem, not the provider. Each
      cools down for this model with the backoff of the profile (like a 429 without a hint).
    - None served: the provider is (one failure on its breaker) and, in a combo, the member
      (a 404 counts there too: the member's model is missing).
    """
    sick = [(cid, err) for cid, err in errors if counts_against_breaker(err)]
    if served:
        for connection_id, err in sick:
            key = model_cooldown_key(connection_id, target.model_id)
            level = await state.next_counter(f"5xx:{key}", ttl=BACKOFF_MEMORY_SECONDS)
            reason = f"failed ({err.status}) while another connection served: {err.message[:200]}"
            await state.set_cooldown(key, _backoff(profile, level), reason)
        return
    policy = breaker_policy(profile)
    if sick:
        await state.record_failure(f"provider:{target.provider.id}", policy)
    if target.member and (sick or any(err.status == 404 for _, err in errors)):
        await state.record_failure(f"member:{target.member}", policy)
