"""The data plane: plain ASGI handlers for /v1, /v1beta and /api/tags, mounted in the
Channels router.

No Django request cycle, no ORM, no thread hop on the request path: handlers read the
config snapshot, call upstream through the shared aiohttp session and hand a usage record
to the recorder. Each route names its client format, which also shapes its errors.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from urllib.parse import parse_qs, unquote

from django.conf import settings

from . import cache as response_cache
from . import idempotency, limits, modalities, pipeline, sessions
from .errors import GatewayError, bad_request
from .formats import get_client_format
from .http import INTERNAL_CALL, JSON_HEADERS, Request, read_body, send_response, watch_disconnect
from .options.system_prompt import inject_system_prompt
from .recorder import Record, recorder
from .router import ChatCall
from .routing import authorize_plan, pinned_plan, resolve_plan
from .snapshot import get_snapshot
from .state import get_state
from .usage_capture import usage_send

log = logging.getLogger(__name__)
Handler = Callable[[Request, Any, Record], Awaitable[None]]


async def serve_chat(
    request: Request,
    send: Any,
    record: Record,
    *,
    client: str,
    payload: dict[str, Any],
    model: str,
    stream: bool,
    key: str | None = None,
    pinned: str | None = None,
) -> None:
    """Everything after parsing, for every chat-like endpoint. `pinned`: the provider of a
    `/v1/providers/{provider}/...` route (no combos or aliases)."""
    fmt = get_client_format(client)
    snap = await get_snapshot()
    if snap.options.system_prompt is not None:
        payload = inject_system_prompt(client, payload, snap.options.system_prompt)
    canonical = fmt.validate(payload)
    record.stream = stream
    record.model = model
    # Calls the gateway makes to itself (combo tests) are marked in the ASGI scope, which no
    # HTTP client can set.
    internal = INTERNAL_CALL in request.scope
    entry = None if internal else pipeline.authenticate(request, snap, key)
    record.api_key_id = entry.id if entry else None
    await limits.admit(entry, snap, record)
    send = send if internal else await sessions.track(request, send, entry, payload, model)
    state = get_state()
    if not state.ready and not internal:  # shared state: load it before the first request routes on it
        await state.start()
    plan = pinned_plan(pinned, model, snap) if pinned is not None else await resolve_plan(model, snap, state)
    modalities.check_chat(plan)
    target = plan.targets[0]
    record.provider, record.model = target.provider.id, target.model_id
    authorize_plan(entry, plan)
    call = ChatCall(
        client=fmt, payload=payload, canonical=canonical, target=target, stream=stream, thinking=snap.options.thinking
    )
    task = asyncio.current_task()
    assert task is not None
    watcher = asyncio.get_running_loop().create_task(watch_disconnect(request, task))
    try:
        # Idempotency first (a duplicate waits, then replays), then the response cache (a hit,
        # or relay_chat with the answer kept).
        serve = partial(response_cache.serve, request, call=call, plan=plan, snap=snap, record=record)
        await idempotency.run(request, send, record, key_id=record.api_key_id, client=fmt, payload=payload, serve=serve)
    finally:
        watcher.cancel()


async def _json_body(request: Request) -> dict[str, Any]:
    return pipeline.parse_json_object(await read_body(request, settings.MAX_BODY_BYTES))


async def chat_completions(request: Request, send: Any, record: Record) -> None:
    payload = await _json_body(request)
    model = pipeline.require_model(payload)
    stream = pipeline.optional_bool(payload, "stream")
    await serve_chat(request, send, record, client="openai", payload=payload, model=model, stream=stream)


_PINNED = re.compile(r"^/v1/providers/(?P<provider>[^/]+)/chat/completions$")


async def provider_chat_completions(request: Request, send: Any, record: Record) -> None:
    """OpenAI chat pinned to one provider: /v1/providers/{provider}/chat/completions."""
    match = _PINNED.match(request.path.rstrip("/"))
    assert match is not None
    payload = await _json_body(request)
    model = pipeline.require_model(payload)
    stream = pipeline.optional_bool(payload, "stream")
    await serve_chat(
        request,
        send,
        record,
        client="openai",
        payload=payload,
        model=model,
        stream=stream,
        pinned=unquote(match["provider"]),
    )


async def anthropic_messages(request: Request, send: Any, record: Record) -> None:
    payload = await _json_body(request)
    model = pipeline.require_model(payload)
    stream = pipeline.optional_bool(payload, "stream")
    await serve_chat(request, send, record, client="anthropic", payload=payload, model=model, stream=stream)


async def responses(request: Request, send: Any, record: Record) -> None:
    payload = await _json_body(request)
    model = pipeline.require_model(payload)
    stream = pipeline.optional_bool(payload, "stream")
    await serve_chat(request, send, record, client="responses", payload=payload, model=model, stream=stream)


async def ollama_chat(request: Request, send: Any, record: Record) -> None:
    payload = await _json_body(request)
    model = pipeline.require_model(payload)
    # Ollama streams unless told otherwise.
    stream = payload.get("stream", True)
    if not isinstance(stream, bool):
        raise bad_request("Field 'stream' must be a boolean", param="stream")
    await serve_chat(request, send, record, client="ollama", payload=payload, model=model, stream=stream)


_GEMINI_ACTION = re.compile(r"^/(?:v1beta|v1)/models/(?P<model>.+):(?P<action>generateContent|streamGenerateContent)$")


def gemini_key(request: Request) -> str | None:
    """Gemini SDKs send x-goog-api-key or ?key=; Bearer works too."""
    header = request.headers.get(b"x-goog-api-key")
    if header:
        return header.decode("latin-1").strip() or None
    if request.query_string:
        values = parse_qs(request.query_string.decode("latin-1")).get("key")
        if values and values[0]:
            return values[0]
    return pipeline.presented_key(request)


async def gemini_generate(request: Request, send: Any, record: Record) -> None:
    match = _GEMINI_ACTION.match(request.path)
    assert match is not None
    model = unquote(match["model"]).removeprefix("models/")
    payload = await _json_body(request)
    stream = match["action"] == "streamGenerateContent"
    # Without ?alt=sse Gemini streams one JSON array instead of SSE events.
    client = "gemini_array" if stream and b"alt=sse" not in request.query_string else "gemini"
    await serve_chat(
        request, send, record, client=client, payload=payload, model=model, stream=stream, key=gemini_key(request)
    )


async def list_models(request: Request, send: Any, record: Record) -> None:
    if request.headers.get(b"x-goog-api-client") or request.headers.get(b"x-goog-api-key"):
        # The google-genai SDK lists models here under its default API version (v1).
        return await gemini_models(request, send, record)
    snap = await get_snapshot()
    pipeline.authenticate(request, snap)
    await send_response(send, 200, snap.models_body, JSON_HEADERS + [(b"x-request-id", request.request_id)])


async def gemini_models(request: Request, send: Any, record: Record) -> None:
    snap = await get_snapshot()
    pipeline.authenticate(request, snap, gemini_key(request))
    body = get_client_format("gemini").models_body(snap)  # type: ignore[attr-defined]
    await send_response(send, 200, body, JSON_HEADERS + [(b"x-request-id", request.request_id)])


async def ollama_tags(request: Request, send: Any, record: Record) -> None:
    snap = await get_snapshot()
    pipeline.authenticate(request, snap)
    body = get_client_format("ollama").tags_body(snap)  # type: ignore[attr-defined]
    await send_response(send, 200, body, JSON_HEADERS + [(b"x-request-id", request.request_id)])


async def anthropic_count_tokens(request: Request, send: Any, record: Record) -> None:
    from .formats.anthropic import count_tokens

    payload = await _json_body(request)
    await count_tokens(request, send, payload)


# path -> (client format for errors, {method: handler}, recorded as usage)
ROUTES: dict[str, tuple[str, dict[str, Handler], bool]] = {
    "/v1/chat/completions": ("openai", {"POST": chat_completions}, True),
    "/v1/models": ("openai", {"GET": list_models}, False),
    "/v1/messages": ("anthropic", {"POST": anthropic_messages}, True),
    "/v1/messages/count_tokens": ("anthropic", {"POST": anthropic_count_tokens}, False),
    "/v1/responses": ("responses", {"POST": responses}, True),
    "/v1/api/chat": ("ollama", {"POST": ollama_chat}, True),
    "/api/tags": ("ollama", {"GET": ollama_tags}, False),
    "/v1beta/models": ("gemini", {"GET": gemini_models}, False),
    **modalities.ROUTES,
}
_GEMINI_ROUTE: tuple[str, dict[str, Handler], bool] = ("gemini", {"POST": gemini_generate}, True)
_PINNED_ROUTE: tuple[str, dict[str, Handler], bool] = ("openai", {"POST": provider_chat_completions}, True)
_NOT_FOUND: tuple[str, dict[str, Handler], bool] = ("openai", {}, False)


def _route(path: str) -> tuple[str, dict[str, Handler], bool]:
    route = ROUTES.get(path)
    if route is not None:
        return route
    if _GEMINI_ACTION.match(path):
        return _GEMINI_ROUTE
    if path.startswith("/v1/providers/") and _PINNED.match(path):
        return _PINNED_ROUTE
    if path.startswith("/v1/providers/") and (pinned := modalities.pinned_route(path)):
        return pinned
    return _NOT_FOUND


async def send_error(request: Request, send: Any, err: GatewayError, client: str) -> None:
    headers = JSON_HEADERS + [(b"x-request-id", request.request_id), *err.headers()]
    await send_response(send, err.status, get_client_format(client).error_body(err), headers)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI entry for the client API."""
    request = Request(scope, receive)
    path = request.path.rstrip("/") or "/"
    client, methods, recorded = _route(path)
    record = Record(request_id=request.request_id.decode(), endpoint=path, status_code=0, client_format=client)
    if recorded and request.method != "GET":
        send = usage_send(request, record, send)  # request log capture; durable usage before the last byte
    try:
        handler = methods.get(request.method)
        if handler is None:
            if not methods:
                raise GatewayError(404, f"Unknown endpoint {request.method} {request.path}", code="not_found")
            raise GatewayError(405, f"Method {request.method} not allowed on {path}", code="method_not_allowed")
        await handler(request, send, record)
    except GatewayError as err:
        record.status_code = err.status
        record.error = err.message
        if not request.response_started:
            await send_error(request, send, err, client)
    except asyncio.CancelledError:
        if not request.disconnected:
            raise
        # The client went away: the upstream request was cancelled with this task.
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()
        record.status_code = 499
        record.error = "client disconnected"
    except Exception as exc:
        log.exception("Unhandled error on %s %s", request.method, request.path)
        record.status_code = 500
        record.error = f"internal error: {exc.__class__.__name__}"
        if not request.response_started:
            await send_error(request, send, GatewayError(500, "Internal gateway error", code="internal_error"), client)
    finally:
        if recorded and request.method != "GET":  # listings are not usage
            if not record.published:  # else it went to the usage stream as it was then (usage_capture)
                record.latency_ms = request.elapsed_ms()
            recorder.record(record)
            await limits.settle(record)
