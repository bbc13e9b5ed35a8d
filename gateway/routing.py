"""Model resolution into a plan of targets, combo strategies, and the penalties that
failures earn (cooldowns, breaker failures).

Resolution order for the `model` a client sends (docs/API.md §2):
combo name → `provider/model` → alias (exact, then glob) → catalog (bare model id).
"""

from __future__ import annotations

import fnmatch
import random
import re
from dataclasses import dataclass

from providers.adapters.base import ProviderError
from providers.catalog import ProviderInfo

from .errors import GatewayError
from .pipeline import Target, resolve_model
from .snapshot import ComboEntry, ComboMember, KeyEntry, ResilienceProfileEntry, Snapshot
from .state import BreakerPolicy, LocalState

MAX_COMBO_DEPTH = 3
_CREDIT_HINT = re.compile(
    r"credit|quota|billing|insufficient|balance|exceeded your|payment|deactivated|suspended", re.I
)


@dataclass(slots=True)
class Plan:
    requested: str
    targets: list[Target]
    combo: ComboEntry | None = None


def _alias_target(model: str, snap: Snapshot) -> str | None:
    target = snap.aliases.get(model)
    if target is not None:
        return target
    lowered = model.lower()
    for pattern, target in snap.alias_globs:
        if fnmatch.fnmatchcase(lowered, pattern.lower()):
            return target
    return None


async def _expand(
    combo: ComboEntry, snap: Snapshot, state: LocalState, depth: int, seen: frozenset[str]
) -> list[Target]:
    """Members of a combo in the order its strategy chooses now; nested combos expanded in place."""
    members = await order_members(combo, state, snap)
    targets: list[Target] = []
    for member in members:
        if member.is_combo:
            nested = snap.combos.get(member.model)
            # Depth and cycles are checked on save; a race between two saves must still not loop here.
            if nested is None or not nested.is_active or nested.name in seen or depth >= MAX_COMBO_DEPTH:
                continue
            targets.extend(await _expand(nested, snap, state, depth + 1, seen | {nested.name}))
        else:
            target = resolve_model(member.model, snap)
            target.member = f"{combo.name}:{target.name}"
            targets.append(target)
    return targets


async def resolve_plan(model: str, snap: Snapshot, state: LocalState) -> Plan:
    combo = snap.combos.get(model)
    if combo is not None and combo.is_active:
        targets = await _expand(combo, snap, state, 1, frozenset({combo.name}))
        if not targets:
            raise GatewayError(503, f"Combo '{model}' has no usable member", code="combo_empty")
        return Plan(requested=model, targets=targets, combo=combo)
    if "/" not in model:
        alias = _alias_target(model, snap)
        if alias is not None:
            if alias in snap.combos:
                return await resolve_plan(alias, snap, state)
            return Plan(requested=model, targets=[resolve_model(alias, snap)])
    return Plan(requested=model, targets=[resolve_model(model, snap)])


def authorize_plan(key: KeyEntry | None, plan: Plan) -> None:
    """A key may use a combo or alias by its own name, or a model by provider/model."""
    if key is None or not key.allowed_models:
        return
    if key.allows_model(plan.requested) or all(key.allows_model(t.name) for t in plan.targets):
        return
    raise GatewayError(403, f"This API key may not use model '{plan.requested}'", code="model_not_allowed")


# -- combo strategies ----------------------------------------------------------------------


def _member_price(model: str, snap: Snapshot) -> float:
    prefix, _, model_id = model.partition("/")
    provider = snap.catalog.resolve_provider(prefix)
    info = provider.model(model_id) if provider else None
    if info is None or not info.price:
        return float("inf")  # unknown price: last
    return info.price.get("input", 0.0) + info.price.get("output", 0.0)


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
        members.sort(key=lambda m: state.usage_count(f"{combo.name}:{m.model}"))
    elif strategy == "cost-optimized":
        members.sort(key=lambda m: _member_price(m.model, snap))
    elif strategy == "latency-optimized":
        # No sample yet counts as fastest, so every member gets measured.
        members.sort(key=lambda m: state.latency_p50(m.model) or 0.0)
    return members


def _weighted_order(members: list[ComboMember]) -> list[ComboMember]:
    """Weighted random order without replacement: the first pick follows the weights."""
    pool = list(members)
    ordered = []
    while pool:
        weights = [max(m.weight or 0, 0) for m in pool]
        if sum(weights) <= 0:
            ordered.extend(pool)
            break
        pick = random.choices(range(len(pool)), weights=weights)[0]
        ordered.append(pool.pop(pick))
    return ordered


# -- penalties -------------------------------------------------------------------------------


def profile_for(provider: ProviderInfo, snap: Snapshot) -> ResilienceProfileEntry:
    auth_type = "oauth" if provider.auth == "oauth" else "apikey"
    return snap.profiles.get(auth_type) or snap.profiles["default"]


def breaker_policy(profile: ResilienceProfileEntry) -> BreakerPolicy:
    return BreakerPolicy(
        failure_threshold=profile.breaker_failure_threshold, reset_seconds=profile.breaker_reset_seconds
    )


def is_credit_error(err: ProviderError) -> bool:
    return err.status == 402 or (err.status in (401, 403, 429) and bool(_CREDIT_HINT.search(err.message)))


async def penalize(
    err: ProviderError, connection_id: int | None, provider_id: str, profile: ResilienceProfileEntry, state: LocalState
) -> None:
    """What a failed attempt costs its connection and provider, before the next attempt."""
    conn_key = f"conn:{connection_id}"
    if is_credit_error(err) or err.status == 401:
        reason = "credit or quota exhausted" if is_credit_error(err) else "authentication failed"
        await state.set_cooldown(conn_key, profile.credit_error_cooldown_seconds, f"{reason}: {err.message[:200]}")
    elif err.status == 429:
        strikes = await state.next_counter(f"429:{conn_key}")
        backoff = profile.cooldown_base_seconds * (profile.backoff_multiplier**strikes)
        seconds = err.retry_after if err.retry_after is not None else min(backoff, profile.cooldown_max_seconds)
        await state.set_cooldown(conn_key, max(seconds, 0.001), f"rate limited ({err.status}): {err.message[:200]}")
    elif err.status >= 500 or err.status == 408:
        await state.record_failure(f"provider:{provider_id}", breaker_policy(profile))


def moves_to_next_connection(err: ProviderError) -> bool:
    """Another account of the same provider may succeed."""
    return err.retryable and err.status != 404


def moves_to_next_member(err: ProviderError) -> bool:
    """Another provider or model may succeed: everything but a request any provider would reject."""
    return err.retryable or err.status in (404, 413) or is_credit_error(err)
