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
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from providers.adapters import get_adapter
from providers.adapters.base import ChatAdapter, Credential, ProviderError, StreamDecoder, StreamRelay, Usage
from providers.adapters.openai import usage_from_openai
from providers.outbound import get_session

from .errors import GatewayError
from .formats.base import ClientFormat, StreamEncoder
from .http import JSON_HEADERS, Headers, Request
from .pipeline import Target
from .recorder import Record
from .routing import Plan, breaker_policy, moves_to_next_connection, moves_to_next_member, penalize, profile_for
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


def _as_gateway_error(err: ProviderError, target: Target) -> GatewayError:
    return GatewayError(
        err.status,
        f"[{target.provider.id}/{target.model_id}] {err.message}",
        code=err.code or "upstream_error",
        retry_after=err.retry_after,
    )


async def _open(adapter: ChatAdapter, cred: Credential, call: ChatCall, passthrough: bool) -> Any:
    model_id = call.target.model_id
    if passthrough:
        upstream = adapter.passthrough_request(cred, model_id, call.payload, stream=call.stream)
    else:
        assert call.canonical is not None
        upstream = adapter.chat_request(cred, model_id, call.canonical, stream=call.stream)
    try:
        async with asyncio.timeout(settings.UPSTREAM_FIRST_BYTE_TIMEOUT):
            return await get_session().request(
                upstream.method, upstream.url, headers=upstream.headers, data=upstream.body
            )
    except TimeoutError:
        raise ProviderError(504, "Upstream did not answer in time", retryable=True, code="upstream_timeout") from None
    except aiohttp.ClientError as exc:
        raise ProviderError(502, f"Cannot reach upstream: {exc.__class__.__name__}", retryable=True) from None


async def relay_chat(request: Request, send: Any, call: ChatCall, plan: Plan, snap: Snapshot, record: Record) -> None:
    """Serve the call from the first target and connection that can, per the fallback rules."""
    state = get_state()
    first: ProviderError | None = None
    last: ProviderError | None = None
    waits: list[float] = []
    for target in plan.targets:
        call.target = target
        record.provider, record.model = target.provider.id, target.model_id
        try:
            outcome = await _serve_target(request, send, call, snap, state, record)
        except ProviderError as err:  # a request any provider would reject: no other member either
            raise _as_gateway_error(err, target) from None
        if outcome is None:
            if target.member:
                await state.note_used(target.member)
            return
        first = first or outcome
        last = outcome
        if outcome.retry_after is not None:
            waits.append(outcome.retry_after)
        if not moves_to_next_member(outcome):
            break
        log.info("%s: %s (%s), trying the next member", plan.requested, target.name, outcome.status)
    assert first is not None and last is not None
    raise GatewayError(
        first.status,
        f"[{call.target.name}] {last.message}",
        code=last.code or "upstream_error",
        retry_after=min(waits) if waits else None,
    )


async def _serve_target(
    request: Request, send: Any, call: ChatCall, snap: Snapshot, state: LocalState, record: Record
) -> ProviderError | None:
    """Try the target's connections. None when served; else the failure that ended the target.

    Raises ProviderError for a failure that must end the whole request (a plain bad request).
    """
    target = call.target
    provider = target.provider
    profile = profile_for(provider, snap)
    if not state.breaker_allows(f"provider:{provider.id}", breaker_policy(profile)):
        wait = state.breaker_retry_after(f"provider:{provider.id}", breaker_policy(profile))
        return ProviderError(503, f"Provider {provider.id} circuit breaker is open", retryable=True, retry_after=wait)
    creds = snap.credentials.get(provider.id)
    if not creds:
        return ProviderError(
            503,
            f"No active connection for provider '{provider.id}'. Add one in the admin or via /api/providers.",
            retryable=True,
            code="no_credentials",
        )
    ready = [c for c in creds if not state.cooldown_remaining(f"conn:{c.connection_id}")]
    if not ready:
        wait = min(state.cooldown_remaining(f"conn:{c.connection_id}") for c in creds)
        return ProviderError(
            429, f"Every connection of {provider.id} is cooling down", retryable=True, retry_after=wait, code="cooldown"
        )
    adapter = get_adapter(provider.format)
    passthrough = adapter.format == call.client.native_provider_format
    if not passthrough:
        call.client.check_translatable(call.payload)
        if call.canonical is None:
            call.canonical = call.client.to_canonical(call.payload)
    last: ProviderError | None = None
    for cred in ready:
        record.connection_id = cred.connection_id
        try:
            await _attempt(request, send, call, adapter, cred, passthrough, record)
        except ProviderError as err:
            last = err
            await penalize(err, cred.connection_id, provider.id, profile, state)
            if not moves_to_next_member(err):
                raise
            if not moves_to_next_connection(err):
                return err
            log.info("%s: connection %s failed (%s)", target.name, cred.connection_id, err.status)
            continue
        await state.record_success(f"provider:{provider.id}")
        if record.ttfb_ms is not None:
            state.observe_latency(target.name, record.ttfb_ms)
        return None
    return last


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
        raise ProviderError(502, f"Upstream returned an error: {problem}", retryable=True)
    if passthrough:
        _apply_usage(record, adapter.usage_from_response(obj))
    else:
        canonical = adapter.to_canonical_response(obj, model=call.target.model_id)
        _apply_usage(record, usage_from_openai(canonical.get("usage")))
        body = call.client.render_response(canonical)
    headers = JSON_HEADERS + _gateway_headers(request, call.target)
    request.finished = request.response_started = True
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    record.status_code = 200


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


def _stream_relay(call: ChatCall, adapter: ChatAdapter, passthrough: bool, request: Request) -> StreamRelay:
    wants_usage = call.client.client_wants_stream_usage(call.payload)
    if passthrough:
        return adapter.passthrough_relay(client_wants_usage=wants_usage)
    encoder = call.client.stream_encoder(
        model=call.target.model_id, request_id=request.request_id.decode(), include_usage=wants_usage
    )
    return TranslatingRelay(adapter.stream_decoder(model=call.target.model_id), encoder)


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
    # Decode the first chunk before committing: a provider error event there still falls back.
    out = relay.feed(first)
    record.ttfb_ms = request.elapsed_ms()
    headers = [
        (b"content-type", call.client.stream_content_type),
        *_STREAM_HEADERS,
        *_gateway_headers(request, call.target),
    ]
    request.response_started = True
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    record.status_code = 200
    if out:
        await send({"type": "http.response.body", "body": out, "more_body": True})
    try:
        async for chunk in resp.content.iter_any():
            out = relay.feed(chunk)
            if out:
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
