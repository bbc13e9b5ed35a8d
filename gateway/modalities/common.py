"""What every non-chat endpoint shares: the plan for a model of one kind, the fallback loop
over the plan's targets and their connections, listings, and the JSON answer.

The fallback rules are the router's (gateway/routing.py `classify`, `penalize`, cooldowns,
breakers, connection order); the loop here differs from the chat relay only in what one
attempt is: a function of (target, connection) that returns a value or raises ProviderError.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson
from django.conf import settings

from providers.adapters import UnsupportedFormat, get_adapter
from providers.adapters.base import Credential, ProviderError
from providers.adapters.media import MediaAdapter, UnsupportedMediaFormat, get_media_adapter

from .. import pipeline
from ..errors import GatewayError, bad_request
from ..http import JSON_HEADERS, Headers, Request, watch_disconnect
from ..pipeline import Target
from ..recorder import Record
from ..router import Failures
from ..routing import (
    Move,
    Plan,
    authorize_plan,
    breaker_policy,
    classify,
    connection_selection,
    cooldown_left,
    penalize,
    penalize_outcome,
    pinned_plan,
    profile_for,
    resolve_plan,
)
from ..snapshot import Snapshot, get_snapshot
from ..state import BreakerPolicy, LocalState, get_state

T = TypeVar("T")
Attempt = Callable[[Target, Credential, MediaAdapter], Awaitable[T]]
# Model type in the catalog, and the name a custom model lists in its `endpoints`.
KINDS = {"embedding": "embeddings", "image": "images", "audio": "audio"}
_ARTICLE = {"embedding": "an embedding", "image": "an image", "audio": "an audio (transcription)"}


def check_kind(target: Target, kind: str) -> None:
    """400 unless the target can serve `kind`: a catalog model of that type, or an unlisted
    model of a provider that serves the kind."""
    provider = target.provider
    info = provider.model(target.model_id)
    if info is not None:
        if info.type != kind and KINDS[kind] not in info.endpoints:
            raise bad_request(
                f"Model '{target.name}' is a {info.type} model; this endpoint needs {_ARTICLE[kind]} model",
                param="model",
                code="wrong_model_type",
            )
    elif not provider.is_node and not any(m.type == kind for m in provider.models):
        raise bad_request(
            f"Provider '{provider.id}' serves no {kind} models (model '{target.name}')",
            param="model",
            code="wrong_model_type",
        )
    try:
        get_media_adapter(provider.format)
    except UnsupportedMediaFormat:
        raise bad_request(f"Provider '{provider.id}' ({provider.format} format) cannot serve {KINDS[kind]}") from None


_ENDPOINTS = {"embedding": "/v1/embeddings", "image": "/v1/images/generations", "audio": "/v1/audio/transcriptions"}


def check_chat(plan: Plan) -> None:
    """400 for a chat call to a provider without a chat wire format (Deepgram, AssemblyAI)."""
    for target in plan.targets:
        try:
            get_adapter(target.provider.format)
        except UnsupportedFormat:
            kinds = sorted({_ENDPOINTS[m.type] for m in target.provider.models if m.type in _ENDPOINTS})
            instead = " or ".join(kinds) or "another provider"
            raise bad_request(
                f"Provider '{target.provider.id}' serves no chat models; use {instead}",
                param="model",
                code="wrong_model_type",
            ) from None


async def plan_for(request: Request, record: Record, *, kind: str, model: str, pinned: str | None) -> Plan:
    """Authenticate, resolve `model` (combos and aliases unless pinned), check every target's kind."""
    snap = await get_snapshot()
    entry = pipeline.authenticate(request, snap)
    record.api_key_id = entry.id if entry else None
    record.model = model
    state = get_state()
    if not state.ready:
        await state.start()
    try:
        plan = pinned_plan(pinned, model, snap) if pinned is not None else await resolve_plan(model, snap, state)
    except GatewayError as err:
        if err.code == "model_not_found":  # the param the client should fix
            err.param = "model"
        raise
    for target in plan.targets:
        check_kind(target, kind)
    record.provider, record.model = plan.targets[0].provider.id, plan.targets[0].model_id
    authorize_plan(entry, plan)
    return plan


async def run_plan(request: Request, plan: Plan, record: Record, attempt: Attempt[T]) -> tuple[Target, T]:
    """The first target and connection that serves the attempt, per the router's fallback rules."""
    snap = await get_snapshot()
    state = get_state()
    failures = Failures()
    for index, target in enumerate(plan.targets):
        record.provider, record.model = target.provider.id, target.model_id
        try:
            served = await _try_target(request, target, snap, state, record, failures, attempt)
        except ProviderError as err:  # a request any provider would reject
            raise GatewayError(
                err.status,
                f"[{target.name}] {err.message}",
                code=err.code or "upstream_error",
                retry_after=err.retry_after,
            ) from None
        if served is not None:
            if target.member:
                await state.record_success(f"member:{target.member}")
                for key in plan.usage_keys[index] if index < len(plan.usage_keys) else ():
                    await state.note_used(key)
            return target, served[0]
    raise failures.error()


def _unavailable(target: Target, snap: Snapshot, state: LocalState, policy: BreakerPolicy) -> ProviderError | None:
    """Why the target cannot be tried now (breaker open, no connection), else None."""
    for key, what in (
        (f"member:{target.member}", f"{target.name} is paused in this combo"),
        (f"provider:{target.provider.id}", f"Provider {target.provider.id}"),
    ):
        if key.startswith("member:") and not target.member:
            continue
        if not state.breaker_allows(key, policy):
            wait = state.breaker_retry_after(key, policy)
            return ProviderError(
                503, f"{what} circuit breaker is open", retryable=True, retry_after=wait, code="circuit_open"
            )
    if not snap.credentials.get(target.provider.id):
        return ProviderError(
            503,
            f"No active connection for provider '{target.provider.id}'. Add one in the admin or via /api/providers.",
            retryable=True,
            code="no_credentials",
        )
    return None


async def _try_target(
    request: Request,
    target: Target,
    snap: Snapshot,
    state: LocalState,
    record: Record,
    failures: Failures,
    attempt: Attempt[T],
) -> tuple[T] | None:
    provider = target.provider
    profile = profile_for(provider, snap)
    policy = breaker_policy(profile)
    problem = _unavailable(target, snap, state, policy)
    if problem is not None:
        failures.add(target, problem)
        return None
    creds = snap.credentials[provider.id]
    ready = [c for c in creds if not cooldown_left(state, c.connection_id, target.model_id)]
    if not ready:
        wait = min(cooldown_left(state, c.connection_id, target.model_id) for c in creds)
        failures.add(
            target,
            ProviderError(
                429,
                f"Every connection of {provider.id} is cooling down for {target.model_id}",
                retryable=True,
                retry_after=wait or None,
                code="cooldown",
            ),
        )
        return None
    if len(ready) > 1 and connection_selection(provider.id) == "round-robin":
        start = await state.next_counter(f"connections:{provider.id}") % len(ready)
        ready = ready[start:] + ready[:start]
    adapter = get_media_adapter(provider.format)
    errors: list[tuple[int | None, ProviderError]] = []
    for cred in ready:
        record.connection_id = cred.connection_id
        started = request.elapsed_ms()
        try:
            value = await attempt(target, cred, adapter)
        except ProviderError as err:
            move = classify(err)
            await penalize(err, cred.connection_id, target, profile, state)
            if move is Move.END:
                raise
            failures.add(target, err)
            errors.append((cred.connection_id, err))
            # A failed attempt counts as a slow one for latency-optimized combos.
            elapsed = max(request.elapsed_ms() - started, settings.UPSTREAM_FIRST_BYTE_TIMEOUT * 1000)
            state.observe_latency(target.name, elapsed)
            if move is Move.NEXT_MEMBER:
                break
            continue
        await state.record_success(f"provider:{provider.id}")
        state.observe_latency(target.name, request.elapsed_ms() - started)
        if errors:
            await penalize_outcome(target, True, errors, profile, state)
        return (value,)
    await penalize_outcome(target, False, errors, profile, state)
    return None


async def until_disconnect(request: Request, work: Coroutine[Any, Any, T]) -> T:
    """Run `work`, cancelled if the client goes away (after the body has been read)."""
    task = asyncio.current_task()
    assert task is not None
    watcher = asyncio.get_running_loop().create_task(watch_disconnect(request, task))
    try:
        return await work
    finally:
        watcher.cancel()


async def send_body(
    request: Request, send: Any, record: Record, target: Target, body: bytes, content_type: bytes = b"application/json"
) -> None:
    headers: Headers = [
        (b"content-type", content_type),
        (b"x-request-id", request.request_id),
        (b"x-omniroute-provider", target.provider.id.encode()),
        (b"x-omniroute-model", target.model_id.encode("utf-8", "replace")),
    ]
    record.ttfb_ms = request.elapsed_ms()
    request.finished = request.response_started = True
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    record.status_code = 200


def listing(snap: Snapshot, kind: str) -> bytes:
    """Models of one kind of the providers with an active connection, OpenAI list shape."""
    created = int(snap.built_at or time.time())
    data: list[dict[str, Any]] = []
    for provider_id in snap.credentials:
        provider = snap.catalog.providers[provider_id]
        for model in provider.models:
            if model.type != kind and KINDS[kind] not in model.endpoints:
                continue
            entry: dict[str, Any] = {
                "id": f"{provider_id}/{model.id}",
                "object": "model",
                "created": created,
                "owned_by": provider_id,
                "type": kind,
            }
            if kind == "embedding":
                entry["dimensions"] = model.dimensions
            data.append(entry)
    return orjson.dumps({"object": "list", "data": data})


async def send_listing(request: Request, send: Any, kind: str) -> None:
    snap = await get_snapshot()
    pipeline.authenticate(request, snap)
    headers = JSON_HEADERS + [(b"x-request-id", request.request_id)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": listing(snap, kind)})


def optional_int(payload: dict[str, Any], name: str, *, low: int, high: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"Field '{name}' must be an integer from {low} to {high}", param=name)
    return value


def optional_choice(payload: dict[str, Any], name: str, choices: tuple[str, ...]) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if value not in choices:
        raise bad_request(f"Field '{name}' must be one of {', '.join(choices)}", param=name)
    return str(value)


def optional_str(payload: dict[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"Field '{name}' must be a string", param=name)
    return value
