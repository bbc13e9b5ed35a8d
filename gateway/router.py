"""The upstream call with fallback across a provider's connections, and the relay back.

This is the one place that decides what moves to the next connection: transport errors,
timeouts before the first byte, and provider errors the adapter marks retryable. A stream
is only committed to the client once its first chunk has arrived, so a fallback before
the first byte is invisible to the client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from providers.adapters import get_adapter
from providers.adapters.base import ChatAdapter, Credential, ProviderError, Usage
from providers.adapters.openai import usage_from_openai
from providers.outbound import get_session

from .errors import GatewayError, openai_error_body
from .http import JSON_HEADERS, SSE_HEADERS, Headers, Request
from .pipeline import Target
from .recorder import Record

log = logging.getLogger(__name__)


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


async def _open(adapter: ChatAdapter, cred: Credential, target: Target, payload: dict[str, Any], stream: bool) -> Any:
    upstream = adapter.chat_request(cred, target.model_id, payload, stream=stream)
    session = get_session()
    try:
        async with asyncio.timeout(settings.UPSTREAM_FIRST_BYTE_TIMEOUT):
            return await session.request(upstream.method, upstream.url, headers=upstream.headers, data=upstream.body)
    except TimeoutError:
        raise ProviderError(504, "Upstream did not answer in time", retryable=True, code="upstream_timeout") from None
    except aiohttp.ClientError as exc:
        raise ProviderError(502, f"Cannot reach upstream: {exc.__class__.__name__}", retryable=True) from None


async def relay_chat(
    request: Request,
    send: Any,
    payload: dict[str, Any],
    target: Target,
    creds: Sequence[Credential],
    record: Record,
    *,
    stream: bool,
) -> None:
    adapter = get_adapter(target.provider.format)
    last: ProviderError | None = None
    for index, cred in enumerate(creds):
        record.connection_id = cred.connection_id
        resp = None
        try:
            resp = await _open(adapter, cred, target, payload, stream)
            if resp.status >= 400:
                body = await resp.read()
                headers = {k.lower(): v for k, v in resp.headers.items()}
                raise adapter.error_from_response(resp.status, headers, body)
            if stream:
                first = await _first_chunk(resp)
                await _relay_stream(request, send, resp, first, target, record, payload)
            else:
                await _relay_json(request, send, resp, adapter, target, record)
            return
        except ProviderError as err:
            last = err
            if not err.retryable or index == len(creds) - 1:
                break
            log.info("%s: connection %s failed (%s), trying the next", target.name, cred.connection_id, err.status)
        finally:
            if resp is not None:
                resp.close()
    assert last is not None
    raise _as_gateway_error(last, target)


async def _relay_json(
    request: Request, send: Any, resp: Any, adapter: ChatAdapter, target: Target, record: Record
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
    if not isinstance(obj, dict) or ("error" in obj and "choices" not in obj):
        message = obj.get("error") if isinstance(obj, dict) else None
        if isinstance(message, dict):
            message = message.get("message")
        raise ProviderError(502, f"Upstream returned an error: {message or 'unexpected body'}", retryable=True)
    _apply_usage(record, adapter.usage_from_response(obj))
    headers = JSON_HEADERS + _gateway_headers(request, target)
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


class _SSEUsageReader:
    """Splits SSE bytes into events, reads `usage`, drops the usage-only chunk the client did not ask for."""

    __slots__ = ("buffer", "done", "drop_usage_chunk", "usage")

    def __init__(self, drop_usage_chunk: bool) -> None:
        self.buffer = b""
        self.drop_usage_chunk = drop_usage_chunk
        self.usage: Usage | None = None
        self.done = False

    def feed(self, chunk: bytes) -> bytes:
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        data = self.buffer + chunk if self.buffer else chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self.buffer = data
            return b""
        self.buffer = data[end + 2 :]
        complete = data[: end + 2]
        if b"[DONE]" not in complete:
            mentions = complete.count(b'"usage"')
            # OpenAI repeats "usage":null in every chunk once usage is requested: nothing to read there.
            if mentions == 0 or mentions == complete.count(b'"usage":null'):
                return complete
        out = []
        for event in complete.split(b"\n\n"):
            if not event:
                continue
            if b"[DONE]" in event:
                self.done = True
            elif b'"usage"' in event and b'"usage":null' not in event and self._take_usage(event):
                continue
            out.append(event + b"\n\n")
        return b"".join(out)

    def _take_usage(self, event: bytes) -> bool:
        """Record usage from the event; True when the event should not reach the client."""
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                try:
                    obj = orjson.loads(line[5:])
                except orjson.JSONDecodeError:
                    return False
                if isinstance(obj, dict) and obj.get("usage"):
                    self.usage = usage_from_openai(obj["usage"])
                    return self.drop_usage_chunk and not obj.get("choices")
        return False


async def _relay_stream(
    request: Request,
    send: Any,
    resp: Any,
    first: bytes,
    target: Target,
    record: Record,
    payload: dict[str, Any],
) -> None:
    options = payload.get("stream_options")
    client_wants_usage = isinstance(options, dict) and options.get("include_usage") is True
    reader = _SSEUsageReader(drop_usage_chunk=not client_wants_usage)
    record.ttfb_ms = request.elapsed_ms()
    request.response_started = True
    await send(
        {"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + _gateway_headers(request, target)}
    )
    record.status_code = 200
    out = reader.feed(first)
    if out:
        await send({"type": "http.response.body", "body": out, "more_body": True})
    try:
        async for chunk in resp.content.iter_any():
            out = reader.feed(chunk)
            if out:
                await send({"type": "http.response.body", "body": out, "more_body": True})
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = GatewayError(502, f"[{target.name}] upstream stream failed: {exc.__class__.__name__}")
        record.status_code = 502
        record.error = error.message
        tail = b"data: " + openai_error_body(error) + b"\n\n"
        request.finished = True
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        return
    finally:
        if reader.usage is not None:
            _apply_usage(record, reader.usage)
    tail = reader.buffer + b"\n\n" if reader.buffer.strip() else b""
    request.finished = True
    await send({"type": "http.response.body", "body": tail, "more_body": False})
