"""What every non-chat endpoint shares: the plan for a model of one kind, the fallback loop
over the plan's targets and their connections, listings, and the JSON answer.

The fallback rules and the per-connection loop are the router's (`ready_connections`,
`try_connections`); an attempt here is a function of (target, connection, adapter) that
returns a value or raises ProviderError.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import orjson

from providers.adapters import UnsupportedFormat, get_adapter
from providers.adapters.base import Credential, ProviderError
from providers.adapters.media import MediaAdapter, UnsupportedMediaFormat, get_media_adapter

from .. import limits, pipeline
from ..errors import GatewayError, bad_request
from ..http import INTERNAL_CALL, JSON_HEADERS, Headers, Request, watch_disconnect
from ..pipeline import Target
from ..recorder import Record
from ..router import Failures, ready_connections, try_connections
from ..routing import Plan, authorize_plan, pinned_plan, resolve_plan
from ..snapshot import Snapshot, get_snapshot
from ..state import get_state

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
    # In-process calls (the semantic cache's embeddings) carry no key: see gateway/inprocess.py.
    entry = None if INTERNAL_CALL in request.scope else pipeline.authenticate(request, snap)
    record.api_key_id = entry.id if entry else None
    record.model = model
    await limits.admit(entry, snap, record)
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
    """The first target and connection that serves the attempt, by the router's rules
    (`ready_connections`, `try_connections`: breakers, cooldowns, order, what failures cost)."""
    snap = await get_snapshot()
    state = get_state()
    failures = Failures()
    if plan.combo is not None and plan.combo.config:
        _limit(plan.combo.config, failures)
    for index, target in enumerate(plan.targets):
        record.provider, record.model = target.provider.id, target.model_id
        ready = await ready_connections(target, snap, state, failures)
        if ready is None:
            continue
        adapter = get_media_adapter(target.provider.format)
        served: list[T] = []
        try:
            await try_connections(
                request, target, ready, snap, state, record, failures, _collecting(attempt, target, adapter, served)
            )
        except ProviderError as err:  # a request any provider would reject: no other member either
            raise GatewayError(
                err.status,
                f"[{target.name}] {err.message}",
                code=err.code or "upstream_error",
                retry_after=err.retry_after,
            ) from None
        if served:
            if target.member:
                await state.record_success(f"member:{target.member}")
                for key in plan.usage_keys[index] if index < len(plan.usage_keys) else ():
                    await state.note_used(key)
            return target, served[0]
    raise failures.error()


def _limit(config: dict[str, Any], failures: Failures) -> None:
    """The combo's `maxAttempts` and `timeoutMs` (no new attempt after it), as on chat."""
    max_attempts = config.get("maxAttempts")
    if isinstance(max_attempts, int) and not isinstance(max_attempts, bool) and max_attempts > 0:
        failures.attempts_left = max_attempts
    timeout_ms = config.get("timeoutMs")
    if isinstance(timeout_ms, int) and not isinstance(timeout_ms, bool) and timeout_ms > 0:
        failures.deadline = asyncio.get_running_loop().time() + timeout_ms / 1000


def _collecting(
    attempt: Attempt[T], target: Target, adapter: MediaAdapter, served: list[T]
) -> Callable[[Credential], Awaitable[bool]]:
    """The router's per-connection attempt: run `attempt`, keep its value in `served`."""

    async def once(cred: Credential) -> bool:
        served.append(await attempt(target, cred, adapter))
        return True

    return once


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
