"""Runtime routing state for the management API: resilience reset, model availability,
rate-limit state, and combo tests through the gateway's own pipeline.

The management API is sync Django; the routing state (gateway/state.py) is async and,
with Redis, bound to an event loop per client. Every call here runs its async part on a
private event loop (`run_private`), so it neither blocks nor borrows the data plane's loop;
the state *object* is the process's one, so in the embedded mode the management API and
the data plane see and change the same dicts, and with Redis the change reaches every
process.

Combo tests call the data plane in-process (gateway/inprocess.py) on the pinned route
`/v1/providers/{provider}/chat/completions`: the whole path of a client request —
resolution, cooldowns and breakers, fallback across the provider's connections,
translation, usage record — without a network round trip.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
from asgiref.sync import async_to_sync

from providers.catalog import ProviderInfo
from providers.outbound import close_session

from . import inprocess
from .api.errors import InvalidInput, NotFound
from .errors import GatewayError
from .pipeline import Target, resolve_model
from .redis_client import close_async_redis, redis_configured
from .routing import alias_target, breaker_policy, pinned_plan, profile_for, selection_overview
from .snapshot import ComboEntry, Snapshot, get_snapshot_sync
from .state import HALF_OPEN, OPEN, Breaker, BreakerPolicy, Cooldown, LocalState, get_state

T = TypeVar("T")

COMBO_TEST_TIMEOUT = 20.0
COMBO_TEST_PROMPT = "Reply with the single word: OK"


def run_private(fn: Callable[[], Awaitable[T]]) -> T:
    """Run `fn()` on a private event loop; close what that loop opened (HTTP pool, Redis client)."""

    async def main() -> T:
        try:
            return await fn()
        finally:
            await close_session()
            if redis_configured():
                await close_async_redis()

    return async_to_sync(main, force_new_loop=True)()


def _when(epoch: float) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def _round(seconds: float) -> float:
    return round(max(seconds, 0.0), 1)


def _connections(provider: str | None = None) -> list[Any]:
    from providers.models import ProviderConnection

    rows = ProviderConnection.objects.order_by("provider", "priority", "id")
    if provider is not None:
        rows = rows.filter(provider=provider)
    return list(rows.only("id", "provider", "name", "priority", "is_active"))


def _policy_for(provider_id: str, snap: Snapshot) -> BreakerPolicy:
    provider = snap.catalog.providers.get(provider_id)
    if provider is None:
        return breaker_policy(snap.profiles["default"])
    return breaker_policy(profile_for(provider, snap))


def _parse_breaker_key(key: str) -> dict[str, str]:
    """`provider:openai` → provider; `member:combo:openai/gpt-4o` → combo, provider, model."""
    kind, _, rest = key.partition(":")
    if kind == "member":
        combo, _, target = rest.partition(":")
        provider, _, model = target.partition("/")
        return {"combo": combo, "provider": provider, "model": model}
    return {"provider": rest}


def _breaker_info(key: str, breaker: Breaker, policy: BreakerPolicy, now: float) -> dict[str, Any]:
    state, retry_in = breaker.state, 0.0
    if state == OPEN:
        retry_in = policy.reset_seconds - (now - breaker.opened_at)
        if retry_in <= 0:
            state, retry_in = HALF_OPEN, 0.0  # the next request is let through as a probe
    return {
        **_parse_breaker_key(key),
        "state": state,
        "failures": breaker.failures,
        "threshold": policy.failure_threshold,
        "resetSeconds": policy.reset_seconds,
        "retryInSeconds": _round(retry_in),
        "openedAt": _when(breaker.opened_at) if breaker.state != "closed" else None,
    }


def _parse_cooldown_key(key: str) -> tuple[int, str | None] | None:
    """`conn:12` → (12, None); `conn:12:gpt-4o` → (12, "gpt-4o"); anything else → None."""
    if not key.startswith("conn:"):
        return None
    raw_id, _, model = key[5:].partition(":")
    try:
        return int(raw_id), (model or None)
    except ValueError:
        return None


def _cooldowns_by_connection(view: LocalState, now: float) -> dict[int, list[tuple[str | None, Cooldown]]]:
    """Running cooldowns per connection id: (None, c) for the whole account, (model, c) for one model."""
    found: dict[int, list[tuple[str | None, Cooldown]]] = {}
    for key, cooldown in list(view.cooldowns.items()):
        parsed = _parse_cooldown_key(key)
        if parsed is not None and cooldown.until > now:
            found.setdefault(parsed[0], []).append((parsed[1], cooldown))
    return found


def _policy_for_key(key: str, snap: Snapshot) -> BreakerPolicy:
    return _policy_for(_parse_breaker_key(key)["provider"], snap)


# -- reset -------------------------------------------------------------------------------------


def resilience_reset() -> dict[str, Any]:
    """Close every breaker, end every cooldown (in every process when Redis is configured)."""
    state = get_state()

    async def reset() -> tuple[int, int]:
        view = await state.view()
        now = time.time()
        cooldowns = sum(1 for c in list(view.cooldowns.values()) if c.until > now)
        breakers = sum(1 for b in list(view.breakers.values()) if b.state != "closed")
        await state.reset()
        return cooldowns, breakers

    cooldowns, breakers = run_private(reset)
    return {
        "ok": True,
        "resetCount": cooldowns + breakers,
        "cooldowns": cooldowns,
        "breakers": breakers,
        "message": f"Reset {breakers} circuit breaker(s) and {cooldowns} cooldown(s)",
    }


# -- availability -----------------------------------------------------------------------------


def _unavailable(view: LocalState, snap: Snapshot) -> list[dict[str, Any]]:
    now = time.time()
    by_id = {c.pk: c for c in _connections()}
    entries: list[dict[str, Any]] = []
    for connection_id, cooldowns in _cooldowns_by_connection(view, now).items():
        conn = by_id.get(connection_id)
        for model, cooldown in cooldowns:
            entry: dict[str, Any] = {"provider": conn.provider if conn else None}
            if model is not None:
                entry["model"] = model
            entry.update(
                connectionId=connection_id,
                connectionName=conn.name if conn else None,
                reason=cooldown.reason,
                cooldownSeconds=_round(cooldown.until - now),
                since=_when(cooldown.since),
            )
            entries.append(entry)
    for key, breaker in list(view.breakers.items()):
        info = _breaker_info(key, breaker, _policy_for_key(key, snap), now)
        if info["state"] != OPEN:
            continue
        entry = {"provider": info["provider"]}
        if "model" in info:
            entry.update(model=info["model"], combo=info["combo"])
            reason = f"combo member circuit breaker open after {breaker.failures} failure(s)"
        else:
            reason = f"provider circuit breaker open after {breaker.failures} failure(s)"
        entry.update(reason=reason, cooldownSeconds=info["retryInSeconds"], since=info["openedAt"])
        entries.append(entry)
    entries.sort(key=lambda e: (e["provider"] or "", e.get("connectionId") or 0, e.get("model") or ""))
    return entries


def availability_list() -> dict[str, Any]:
    snap = get_snapshot_sync()
    view = run_private(get_state().view)
    models = _unavailable(view, snap)
    return {"unavailableCount": len(models), "models": models}


def _resolve_target(model: str, provider: str | None, snap: Snapshot) -> Target:
    try:
        if provider:
            if snap.catalog.resolve_provider(provider) is None:
                raise InvalidInput(f"Unknown provider '{provider}'", field="provider")
            return pinned_plan(provider, model, snap).targets[0]
        if model in snap.combos:
            members = ", ".join(m.model for m in snap.combos[model].members)
            raise InvalidInput(f"'{model}' is a combo; ask about one of its models: {members}", field="model")
        if "/" not in model:
            model = alias_target(model, snap) or model
            if model in snap.combos:
                raise InvalidInput(f"'{model}' is a combo; ask about one of its models", field="model")
        return resolve_model(model, snap)
    except GatewayError as exc:
        if exc.status == 404:
            raise NotFound(exc.message) from None
        raise InvalidInput(exc.message, field="model") from None


def _model_report(target: Target, view: LocalState, snap: Snapshot, connections: list[Any]) -> dict[str, Any]:
    now = time.time()
    provider: ProviderInfo = target.provider
    policy = breaker_policy(profile_for(provider, snap))
    running = _cooldowns_by_connection(view, now)
    rows = []
    for conn in connections:
        mine = [(m, c) for m, c in running.get(conn.pk, []) if m is None or m == target.model_id]
        longest = max(mine, key=lambda item: item[1].until)[1] if mine else None
        rows.append(
            {
                "connectionId": conn.pk,
                "name": conn.name,
                "isActive": conn.is_active,
                "available": conn.is_active and longest is None,
                "cooldownSeconds": _round(longest.until - now) if longest else 0.0,
                "reason": longest.reason if longest else None,
            }
        )
    provider_key = f"provider:{provider.id}"
    breaker = _breaker_info(provider_key, view.breakers.get(provider_key) or Breaker(), policy, now)
    members = [
        {"combo": info["combo"], "state": info["state"], "retryInSeconds": info["retryInSeconds"]}
        for key, b in list(view.breakers.items())
        if key.startswith("member:") and key.endswith(f":{target.name}")
        for info in [_breaker_info(key, b, policy, now)]
        if info["state"] != "closed"
    ]
    active = [r for r in rows if r["isActive"]]
    ready = [r for r in active if r["available"]]
    reason, retry_after = None, None
    if not active:
        reason = f"No active connection for provider '{provider.id}'"
    elif breaker["state"] == OPEN:
        reason, retry_after = f"Provider {provider.id} circuit breaker is open", breaker["retryInSeconds"]
    elif not ready:
        soonest = min(active, key=lambda r: r["cooldownSeconds"])
        reason, retry_after = f"Every connection is cooling down: {soonest['reason']}", soonest["cooldownSeconds"]
    return {
        "model": target.name,
        "provider": provider.id,
        "available": reason is None,
        "reason": reason,
        "retryAfterSeconds": retry_after,
        "connections": rows,
        "breaker": {k: breaker[k] for k in ("state", "failures", "threshold", "retryInSeconds", "openedAt")},
        "memberBreakers": members,
    }


def model_availability(*, model: str, provider: str | None = None, clear: bool = False) -> dict[str, Any]:
    """One model's availability now; `clear` first ends its provider's connection cooldowns
    and closes its provider breaker and its combo-member breakers."""
    snap = get_snapshot_sync()
    target = _resolve_target(model, provider, snap)
    connections = _connections(target.provider.id)
    state = get_state()

    async def run() -> tuple[LocalState, dict[str, int] | None]:
        cleared = None
        if clear:
            view = await state.view()
            now = time.time()
            cleared = {"cooldowns": 0, "breakers": 0}
            for conn in connections:
                for key in (f"conn:{conn.pk}", f"conn:{conn.pk}:{target.model_id}"):
                    cooldown = view.cooldowns.get(key)
                    if cooldown is not None and cooldown.until > now:
                        cleared["cooldowns"] += 1
                    await state.clear_cooldown(key)
            keys = [f"provider:{target.provider.id}"] + [
                k for k in list(view.breakers) if k.startswith("member:") and k.endswith(f":{target.name}")
            ]
            for key in keys:
                breaker = view.breakers.get(key)
                if breaker is not None and (breaker.state != "closed" or breaker.failures):
                    cleared["breakers"] += 1
                await state.close_breaker(key)
        return await state.view(), cleared

    view, cleared = run_private(run)
    report = _model_report(target, view, snap, connections)
    if cleared is not None:
        report["cleared"] = cleared
    return report


# -- rate limits ---------------------------------------------------------------------------------


def rate_limits() -> dict[str, Any]:
    snap = get_snapshot_sync()
    view = run_private(get_state().view)
    now = time.time()
    running = _cooldowns_by_connection(view, now)
    connections = []
    for conn in _connections():
        account = next((c for m, c in running.get(conn.pk, []) if m is None), None)
        models = sorted(((m, c) for m, c in running.get(conn.pk, []) if m is not None), key=lambda item: item[0])
        connections.append(
            {
                "connectionId": conn.pk,
                "provider": conn.provider,
                "name": conn.name,
                "priority": conn.priority,
                "isActive": conn.is_active,
                "state": "cooling-down" if account else "ready",
                "cooldownSeconds": _round(account.until - now) if account else 0.0,
                "reason": account.reason if account else None,
                "since": _when(account.since) if account else None,
                "models": [
                    {
                        "model": model,
                        "cooldownSeconds": _round(c.until - now),
                        "reason": c.reason,
                        "since": _when(c.since),
                    }
                    for model, c in models
                ],
            }
        )
    breakers: dict[str, dict[str, Any]] = {}
    for provider_id in sorted({c["provider"] for c in connections}):
        key = f"provider:{provider_id}"
        breakers[key] = _breaker_info(key, Breaker(), _policy_for(provider_id, snap), now)
    for key, breaker in list(view.breakers.items()):
        breakers[key] = _breaker_info(key, breaker, _policy_for_key(key, snap), now)
    return {
        "connections": connections,
        "breakers": [breakers[k] for k in sorted(breakers)],
        "selection": selection_overview(),
    }


# -- combo test -----------------------------------------------------------------------------------


def _combo_models(combo: ComboEntry, snap: Snapshot, depth: int = 1, seen: frozenset[str] = frozenset()) -> list[str]:
    """Every model the combo can route to, nested combos expanded in listed order, once each."""
    models: list[str] = []
    for member in combo.members:
        if member.is_combo:
            nested = snap.combos.get(member.model)
            if nested is None or not nested.is_active or nested.name in seen | {combo.name} or depth >= 3:
                continue
            found = _combo_models(nested, snap, depth + 1, seen | {combo.name})
        else:
            found = [member.model]
        models.extend(m for m in found if m not in models)
    return models


async def _probe(model: str) -> dict[str, Any]:
    """One small chat request for `model` through the data plane, in-process."""
    provider, _, _ = model.partition("/")
    path = f"/v1/providers/{quote(provider, safe='')}/chat/completions"
    headers = [(b"x-request-id", f"combo-test-{uuid.uuid4().hex}".encode()), (b"x-omniroute-no-cache", b"true")]
    payload = {"model": model, "messages": [{"role": "user", "content": COMBO_TEST_PROMPT}]}
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        async with asyncio.timeout(COMBO_TEST_TIMEOUT):
            status, body = await inprocess.call(path, payload, caller="combo-test", headers=headers)
    except TimeoutError:
        latency = round((loop.time() - started) * 1000)
        return {
            "model": model,
            "status": "error",
            "error": f"timed out after {COMBO_TEST_TIMEOUT:g} s",
            "latencyMs": latency,
        }
    latency = round((loop.time() - started) * 1000)
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    result: dict[str, Any] = {"model": model, "latencyMs": latency}
    if status != 200:
        error = answer.get("error") if isinstance(answer, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        return {**result, "status": "error", "statusCode": status, "error": message or f"HTTP {status}"}
    text = ""
    if isinstance(answer, dict) and answer.get("choices"):
        message_obj = answer["choices"][0].get("message") or {}
        text = message_obj.get("content") or ""
        if not text and message_obj.get("tool_calls"):
            text = "(tool call)"
    if not text.strip():
        return {**result, "status": "error", "statusCode": status, "error": "The model answered with no text"}
    return {**result, "status": "ok", "statusCode": status, "responseText": text[:500]}


def combo_test(*, combo_name: str) -> dict[str, Any]:
    """A small real chat request for every model of the combo, in parallel (each ≤ 20 s)."""
    snap = get_snapshot_sync()
    combo = snap.combos.get(combo_name)
    if combo is None:
        raise NotFound(f"Combo '{combo_name}' not found")
    models = _combo_models(combo, snap)
    if not models:
        raise InvalidInput("Combo has no models", field="combo_name")

    async def run() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(_probe(m) for m in models)))

    return {"comboName": combo.name, "strategy": combo.strategy, "results": run_private(run)}


def connection_cooldowns() -> dict[int, list[tuple[str | None, Cooldown]]]:
    """Running cooldowns per connection id, for the admin: (None, c) whole account, (model, c) one model."""
    return _cooldowns_by_connection(run_private(get_state().view), time.time())
