"""The upstream call with fallback across a provider's connections, and the relay back.

This is the one place that decides what moves to the next connection: transport errors,
timeouts before the first byte, and provider errors the adapter marks retryable. A stream
is only committed to the client once its first chunk has arrived, so a fallback before
the first byte is invisible to the client.

When the client and the provider speak the same wire format the bytes pass through
(reading only usage); otherwise the provider's answer is decoded to canonical chunks and
encoded in the client's format.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from providers.adapters import get_adapter
from providers.adapters.base import ChatAdapter, Credential, ProviderError, StreamDecoder, StreamRelay, Usage
from providers.adapters.openai import usage_from_openai
from providers.outbound import get_session

from . import progress
from .errors import GatewayError
from .formats.base import ClientFormat, StreamEncoder
from .http import JSON_HEADERS, Headers, Request
from .options.thinking import ThinkingPolicy, thinking_for_target
from .pipeline import Target
from .recorder import Record
from .routing import (
    Move,
    Plan,
    breaker_policy,
    classify,
    connection_selection,
    cooldown_left,
    model_cooldown_key,
    penalize,
    penalize_outcome,
    profile_for,
)
from .snapshot import Snapshot
from .state import LocalState, get_state

log = logging.getLogger(__name__)
_STREAM_HEADERS: Headers = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


@dataclass(slots=True)
class ChatCall:
    """One client call: its format, its own body, the canonical body and the target."""

    client: ClientFormat
    payload: dict[str, Any]
    canonical: dict[str, Any] | None  # None until needed (see ClientFormat.validate)
    target: Target  # the plan's target being tried now
    stream: bool
    # A combo's timeoutMs as a loop.time() deadline: no attempt starts after it, and an
    # attempt's wait for the first byte ends with it.
    deadline: float | None = None
    # The thinking budget setting (None: passthrough, the body is sent as the client wrote it).
    thinking: ThinkingPolicy | None = None


class TranslatingRelay(StreamRelay):
    """Provider stream -> canonical chunks -> client stream."""

    __slots__ = ("decoder", "encoder", "usage")

    def __init__(self, decoder: StreamDecoder, encoder: StreamEncoder) -> None:
        self.decoder = decoder
        self.encoder = encoder
        self.usage: Usage | None = None

    def _encode(self, chunks: list[dict[str, Any]]) -> bytes:
        out = []
        for chunk in chunks:
            usage = chunk.get("usage")
            if usage:
                self.usage = usage_from_openai(usage)
            out.append(self.encoder.feed(chunk))
        return b"".join(out)

    def feed(self, data: bytes) -> bytes:
        return self._encode(self.decoder.feed(data))

    def finish(self) -> bytes:
        return self._encode(self.decoder.finish()) + self.encoder.finish()

    def failure(self, message: str) -> bytes | None:
        return self.encoder.failure(message)


def _gateway_headers(request: Request, target: Target) -> Headers:
    return [
        (b"x-request-id", request.request_id),
        (b"x-omniroute-provider", target.provider.id.encode()),
        (b"x-omniroute-model", target.model_id.encode("utf-8", "replace")),
    ]


def _apply_usage(record: Record, usage: Usage) -> None:
    record.prompt_tokens = usage.prompt_tokens
    record.completion_tokens = usage.completion_tokens
    record.cached_tokens = usage.cached_tokens
    record.reasoning_tokens = usage.reasoning_tokens
    record.cache_creation_tokens = usage.cache_creation_tokens


def _as_gateway_error(err: ProviderError, target: Target) -> GatewayError:
    return GatewayError(
        err.status,
        f"[{target.provider.id}/{target.model_id}] {err.message}",
        code=err.code or "upstream_error",
        retry_after=err.retry_after,
    )


async def _open(adapter: ChatAdapter, cred: Credential, call: ChatCall, passthrough: bool) -> Any:
    model_id = call.target.model_id
    body = call.payload if passthrough else call.canonical
    assert body is not None
    if call.thinking is not None:
        body = thinking_for_target(call.thinking, body, call.target, adapter.format, passthrough)
    if passthrough:
        upstream = adapter.passthrough_request(cred, model_id, body, stream=call.stream)
    else:
        upstream = adapter.chat_request(cred, model_id, body, stream=call.stream)
    timeout: float = settings.UPSTREAM_FIRST_BYTE_TIMEOUT
    if call.deadline is not None:
        timeout = max(0.001, min(timeout, call.deadline - asyncio.get_running_loop().time()))
    try:
        async with asyncio.timeout(timeout):
            return await get_session().request(
                upstream.method, upstream.url, headers=upstream.headers, data=upstream.body
            )
    except TimeoutError:
        raise ProviderError(504, "Upstream did not answer in time", retryable=True, code="upstream_timeout") from None
    except aiohttp.ClientError as exc:
        raise ProviderError(502, f"Cannot reach upstream: {exc.__class__.__name__}", retryable=True) from None


@dataclass(slots=True)
class Failures:
    """What went wrong so far in one request, for the answer when nothing serves it."""

    first: ProviderError | None = None
    last: ProviderError | None = None
    last_target: str = ""
    waits: list[float] = field(default_factory=list)
    # A combo's maxAttempts: upstream calls this request may still make (None: no limit).
    attempts_left: int | None = None
    # A combo's timeoutMs, as a loop.time() deadline.
    deadline: float | None = None

    def may_attempt(self) -> bool:
        """Whether the combo's limits allow one more upstream call (and count it)."""
        if self.deadline is not None and asyncio.get_running_loop().time() >= self.deadline:
            return False
        if self.attempts_left is not None:
            if self.attempts_left <= 0:
                return False
            self.attempts_left -= 1
        return True

    def limited(self) -> bool:
        return self.attempts_left is not None or self.deadline is not None

    def add(self, target: Target, err: ProviderError) -> None:
        self.first = self.first or err
        self.last, self.last_target = err, target.name
        if err.retry_after is not None:
            self.waits.append(err.retry_after)

    def error(self) -> GatewayError:
        """The first failure's status, the last error's message, the earliest Retry-After."""
        if self.first is None or self.last is None:  # the combo's limits allowed no attempt
            return GatewayError(504, "The combo's attempt or time limit ended the request", code="combo_limit")
        return GatewayError(
            self.first.status,
            f"[{self.last_target}] {self.last.message}",
            code=self.last.code or "upstream_error",
            retry_after=min(self.waits) if self.waits else None,
        )


async def relay_chat(request: Request, send: Any, call: ChatCall, plan: Plan, snap: Snapshot, record: Record) -> None:
    """Serve the call from the first target and connection that can, per the fallback rules
    (gateway/routing.py `classify`)."""
    state = get_state()
    failures = Failures()
    if plan.combo is not None and plan.combo.config:
        _apply_combo_limits(plan.combo.config, call, failures)
    for index, target in enumerate(plan.targets):
        if failures.limited() and not _within_limits(failures):
            break
        call.target = target
        record.provider, record.model = target.provider.id, target.model_id
        try:
            served = await _serve_target(request, send, call, snap, state, record, failures)
        except ProviderError as err:  # a request any provider would reject: no other member either
            raise _as_gateway_error(err, target) from None
        if served:
            if target.member:
                await state.record_success(f"member:{target.member}")
                for key in plan.usage_keys[index] if index < len(plan.usage_keys) else ():
                    await state.note_used(key)
            return
        if index + 1 < len(plan.targets):
            log.info("%s: %s failed, trying the next member", plan.requested, target.name)
    raise failures.error()


def _apply_combo_limits(config: dict[str, Any], call: ChatCall, failures: Failures) -> None:
    """The top combo's `maxAttempts` (upstream calls per request) and `timeoutMs` (until the
    first byte, across all attempts)."""
    max_attempts = config.get("maxAttempts")
    if isinstance(max_attempts, int) and max_attempts > 0:
        failures.attempts_left = max_attempts
    timeout_ms = config.get("timeoutMs")
    if isinstance(timeout_ms, int) and timeout_ms > 0:
        failures.deadline = call.deadline = asyncio.get_running_loop().time() + timeout_ms / 1000


def _within_limits(failures: Failures) -> bool:
    deadline_ok = failures.deadline is None or asyncio.get_running_loop().time() < failures.deadline
    return deadline_ok and (failures.attempts_left is None or failures.attempts_left > 0)


async def _serve_target(
    request: Request,
    send: Any,
    call: ChatCall,
    snap: Snapshot,
    state: LocalState,
    record: Record,
    failures: Failures,
) -> bool:
    """Try the target's connections. True when served (or a committed stream failed mid-way);
    False when the plan should move to its next target (the failures are in `failures`).

    Raises ProviderError for a failure that must end the whole request (a plain bad request).
    """
    target = call.target
    ready = await ready_connections(target, snap, state, failures)
    if ready is None:
        return False
    adapter = get_adapter(target.provider.format)
    passthrough = adapter.format == call.client.native_provider_format
    if not passthrough:
        call.client.check_translatable(call.payload)
        if call.canonical is None:
            call.canonical = call.client.to_canonical(call.payload)

    async def attempt(cred: Credential) -> bool:
        await _attempt(request, send, call, adapter, cred, passthrough, record)
        return record.status_code == 200  # else the stream broke after its first byte

    return await try_connections(request, target, ready, snap, state, record, failures, attempt)


async def ready_connections(
    target: Target, snap: Snapshot, state: LocalState, failures: Failures
) -> list[Credential] | None:
    """The target's connections to try now, in the order to try them; None (the reason noted
    in `failures`) when a breaker is open, the provider has no connection or all cool down."""
    provider = target.provider
    policy = breaker_policy(profile_for(provider, snap))
    if target.member and not state.breaker_allows(f"member:{target.member}", policy):
        wait = state.breaker_retry_after(f"member:{target.member}", policy)
        failures.add(
            target,
            ProviderError(
                503,
                f"{target.name} is paused in this combo (circuit breaker open)",
                retryable=True,
                retry_after=wait,
                code="circuit_open",
            ),
        )
        return None
    provider_key = f"provider:{provider.id}"
    if not state.breaker_allows(provider_key, policy):
        wait = state.breaker_retry_after(provider_key, policy)
        failures.add(
            target,
            ProviderError(
                503,
                f"Provider {provider.id} circuit breaker is open",
                retryable=True,
                retry_after=wait,
                code="circuit_open",
            ),
        )
        return None
    creds = snap.credentials.get(provider.id)
    if not creds:
        failures.add(
            target,
            ProviderError(
                503,
                f"No active connection for provider '{provider.id}'. Add one in the admin or via /api/providers.",
                retryable=True,
                code="no_credentials",
            ),
        )
        return None
    model_id = target.model_id
    ready = (
        [c for c in creds if not cooldown_left(state, c.connection_id, model_id)] if state.cooldowns else list(creds)
    )
    if not ready:
        remaining = {c.connection_id: cooldown_left(state, c.connection_id, model_id) for c in creds}
        soonest = min(remaining, key=remaining.__getitem__)
        entry = state.cooldowns.get(model_cooldown_key(soonest, model_id)) or state.cooldowns.get(f"conn:{soonest}")
        detail = f" ({entry.reason})" if entry is not None else ""
        failures.add(
            target,
            ProviderError(
                429,
                f"Every connection of {provider.id} is cooling down for {model_id}{detail}",
                retryable=True,
                retry_after=remaining[soonest] or None,
                code="cooldown",
            ),
        )
        return None
    if len(ready) > 1 and connection_selection(provider.id) == "round-robin":
        # One rotation per provider, shared by all processes when Redis is configured.
        start = await state.next_counter(f"connections:{provider.id}") % len(ready)
        ready = ready[start:] + ready[:start]
    return ready


async def try_connections(
    request: Request,
    target: Target,
    ready: list[Credential],
    snap: Snapshot,
    state: LocalState,
    record: Record,
    failures: Failures,
    attempt: Callable[[Credential], Awaitable[bool]],
) -> bool:
    """`attempt` on each connection in turn until one serves, per the fallback rules; what
    each failure costs. `attempt` raises ProviderError, or returns whether the answer went out
    whole (False: it broke after being committed, so no fallback, but the provider is unwell).

    True when served; False when the plan should move on. Raises ProviderError for a failure
    that must end the whole request (a plain bad request). Any endpoint's attempts use this."""
    provider = target.provider
    profile = profile_for(provider, snap)
    provider_key = f"provider:{provider.id}"
    errors: list[tuple[int | None, ProviderError]] = []
    for cred in ready:
        if failures.limited() and not failures.may_attempt():
            break
        record.connection_id = cred.connection_id
        started = request.elapsed_ms()
        record.attempt_started_ms = started
        try:
            whole = await attempt(cred)
        except ProviderError as err:
            record.attempt_end(request.elapsed_ms())
            move = classify(err)
            await penalize(err, cred.connection_id, target, profile, state)
            if move is Move.END:
                raise
            failures.add(target, err)
            errors.append((cred.connection_id, err))
            # A failed attempt counts as a slow one for latency-optimized combos.
            state.observe_latency(
                target.name, max(request.elapsed_ms() - started, settings.UPSTREAM_FIRST_BYTE_TIMEOUT * 1000)
            )
            if move is Move.NEXT_MEMBER:
                break
            log.info("%s: connection %s failed (%s), trying the next one", target.name, cred.connection_id, err.status)
            continue
        record.attempt_end(request.elapsed_ms())
        if whole:
            await state.record_success(provider_key)
            served_at = record.ttfb_ms if record.ttfb_ms is not None else request.elapsed_ms()
            state.observe_latency(target.name, served_at - started)
            if errors:
                await penalize_outcome(target, True, errors, profile, state)
        else:
            await state.record_failure(provider_key, breaker_policy(profile))
        return True
    await penalize_outcome(target, False, errors, profile, state)
    return False


async def _attempt(
    request: Request,
    send: Any,
    call: ChatCall,
    adapter: ChatAdapter,
    cred: Credential,
    passthrough: bool,
    record: Record,
) -> None:
    resp = None
    try:
        resp = await _open(adapter, cred, call, passthrough)
        if resp.status >= 400:
            body = await resp.read()
            headers = {k.lower(): v for k, v in resp.headers.items()}
            raise adapter.error_from_response(resp.status, headers, body)
        if call.stream:
            first = await _first_chunk(resp)
            await _relay_stream(request, send, resp, first, call, adapter, passthrough, record)
        else:
            await _relay_json(request, send, resp, call, adapter, passthrough, record)
    finally:
        if resp is not None:
            resp.close()


async def _relay_json(
    request: Request,
    send: Any,
    resp: Any,
    call: ChatCall,
    adapter: ChatAdapter,
    passthrough: bool,
    record: Record,
) -> None:
    try:
        body = await resp.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ProviderError(502, f"Upstream connection failed: {exc.__class__.__name__}", retryable=True) from None
    record.ttfb_ms = request.elapsed_ms()
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ProviderError(
            502, "Upstream returned invalid JSON", retryable=True, code="bad_upstream_response"
        ) from None
    if not isinstance(obj, dict):
        raise ProviderError(502, "Upstream returned an unexpected body", retryable=True, code="bad_upstream_response")
    problem = adapter.response_error(obj)
    if problem is not None:
        raise ProviderError(502, f"Upstream returned an error: {problem}", retryable=True, code="error_in_body")
    if passthrough:
        _apply_usage(record, adapter.usage_from_response(obj))
    else:
        canonical = adapter.to_canonical_response(obj, model=call.target.model_id)
        _apply_usage(record, usage_from_openai(canonical.get("usage")))
        body = call.client.render_response(canonical)
    headers = JSON_HEADERS + _gateway_headers(request, call.target)
    request.finished = request.response_started = True
    record.status_code = 200
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _first_chunk(resp: Any) -> bytes:
    try:
        chunk: bytes = await resp.content.readany()
    except TimeoutError:
        raise ProviderError(504, "Upstream stream stalled before the first byte", retryable=True) from None
    except aiohttp.ClientError as exc:
        raise ProviderError(502, f"Upstream stream failed: {exc.__class__.__name__}", retryable=True) from None
    if not chunk:
        raise ProviderError(502, "Upstream closed the stream without data", retryable=True)
    return chunk


def _before_commit(err: ProviderError) -> ProviderError:
    """An error in the stream's first chunk: nothing reached the client, so fallback may go on."""
    code = "error_in_body" if err.status >= 500 else err.code
    return ProviderError(err.status, err.message, retryable=True, retry_after=err.retry_after, code=code)


def _stream_relay(call: ChatCall, adapter: ChatAdapter, passthrough: bool, request: Request) -> StreamRelay:
    wants_usage = call.client.client_wants_stream_usage(call.payload)
    if passthrough:
        return adapter.passthrough_relay(client_wants_usage=wants_usage)
    encoder = call.client.stream_encoder(
        model=call.target.model_id, request_id=request.request_id.decode(), include_usage=wants_usage
    )
    return TranslatingRelay(adapter.stream_decoder(model=call.target.model_id), encoder)


def _note_end(request: Request, out: bytes, markers: tuple[bytes, ...]) -> None:
    """Once the client format's terminal event goes out, the client has the whole answer: a
    hang-up from then on (SDKs close right after it) ends nothing and is no 499."""
    if markers and not request.finished and any(marker in out for marker in markers):
        request.finished = True


async def _relay_stream(
    request: Request,
    send: Any,
    resp: Any,
    first: bytes,
    call: ChatCall,
    adapter: ChatAdapter,
    passthrough: bool,
    record: Record,
) -> None:
    relay = _stream_relay(call, adapter, passthrough, request)
    send = progress.wrap(request, send, call.client)
    # Read the first chunk before committing: a provider error event there still falls back.
    try:
        if passthrough and b"error" in first:
            adapter.stream_decoder(model=call.target.model_id).feed(first)
        out = relay.feed(first)
    except ProviderError as err:
        raise _before_commit(err) from None
    record.ttfb_ms = request.elapsed_ms()
    headers = [
        (b"content-type", call.client.stream_content_type),
        *_STREAM_HEADERS,
        *_gateway_headers(request, call.target),
    ]
    request.response_started = True
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    record.status_code = 200
    markers = call.client.stream_end_markers
    if out:
        _note_end(request, out, markers)
        await send({"type": "http.response.body", "body": out, "more_body": True})
    try:
        async for chunk in resp.content.iter_any():
            out = relay.feed(chunk)
            if out:
                _note_end(request, out, markers)
                await send({"type": "http.response.body", "body": out, "more_body": True})
        tail = relay.finish()
    except (aiohttp.ClientError, TimeoutError, ProviderError) as exc:
        reason = exc.message if isinstance(exc, ProviderError) else f"upstream stream failed: {exc.__class__.__name__}"
        error = GatewayError(502, f"[{call.target.name}] {reason}")
        record.status_code = 502
        record.error = error.message
        request.finished = True
        ending = relay.failure(error.message)
        if ending is None:
            ending = call.client.stream_error(error)
        await send({"type": "http.response.body", "body": ending, "more_body": False})
        return
    finally:
        if relay.usage is not None:
            _apply_usage(record, relay.usage)
    request.finished = True
    await send({"type": "http.response.body", "body": tail, "more_body": False})
