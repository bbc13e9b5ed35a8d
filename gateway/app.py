"""The data plane: plain ASGI handlers for /v1, mounted in the Channels router.

No Django request cycle, no ORM, no thread hop on the request path: handlers read the
config snapshot, call upstream through the shared aiohttp session and hand a usage record
to the recorder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from . import pipeline
from .errors import GatewayError, openai_error_body
from .http import JSON_HEADERS, Request, read_body, send_response, watch_disconnect
from .recorder import Record, recorder
from .router import relay_chat
from .snapshot import get_snapshot

log = logging.getLogger(__name__)
Handler = Callable[[Request, Any, Record], Awaitable[None]]


async def chat_completions(request: Request, send: Any, record: Record) -> None:
    body = await read_body(request, settings.MAX_BODY_BYTES)
    payload = pipeline.parse_json_object(body)
    model = pipeline.require_model(payload)
    stream = pipeline.optional_bool(payload, "stream")
    pipeline.validate_chat(payload)
    record.stream = stream
    record.model = model
    snap = await get_snapshot()
    key = pipeline.authenticate(request, snap)
    record.api_key_id = key.id if key else None
    target = pipeline.resolve_model(model, snap)
    record.provider, record.model = target.provider.id, target.model_id
    pipeline.authorize(key, target)
    creds = pipeline.credentials_for(target, snap)
    watcher = asyncio.get_running_loop().create_task(watch_disconnect(request, asyncio.current_task()))  # type: ignore[arg-type]
    try:
        await relay_chat(request, send, payload, target, creds, record, stream=stream)
    finally:
        watcher.cancel()


async def list_models(request: Request, send: Any, record: Record) -> None:
    snap = await get_snapshot()
    key = pipeline.authenticate(request, snap)
    record.api_key_id = key.id if key else None
    record.status_code = 200
    await send_response(send, 200, snap.models_body, JSON_HEADERS + [(b"x-request-id", request.request_id)])


ROUTES: dict[str, dict[str, Handler]] = {
    "/v1/chat/completions": {"POST": chat_completions},
    "/v1/models": {"GET": list_models},
}
# Records are kept for inference calls; listing models is not usage.
UNRECORDED = {"/v1/models"}


async def send_error(request: Request, send: Any, err: GatewayError) -> None:
    headers = JSON_HEADERS + [(b"x-request-id", request.request_id), *err.headers()]
    await send_response(send, err.status, openai_error_body(err), headers)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """ASGI entry for /v1 paths."""
    request = Request(scope, receive)
    path = request.path.rstrip("/") or "/"
    methods = ROUTES.get(path)
    record = Record(request_id=request.request_id.decode(), endpoint=path, status_code=0)
    try:
        if methods is None:
            raise GatewayError(404, f"Unknown endpoint {request.method} {request.path}", code="not_found")
        handler = methods.get(request.method)
        if handler is None:
            raise GatewayError(405, f"Method {request.method} not allowed on {path}", code="method_not_allowed")
        await handler(request, send, record)
    except GatewayError as err:
        record.status_code = err.status
        record.error = err.message
        if not request.response_started:
            await send_error(request, send, err)
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
            await send_error(request, send, GatewayError(500, "Internal gateway error", code="internal_error"))
    finally:
        if methods is not None and path not in UNRECORDED:
            record.latency_ms = request.elapsed_ms()
            recorder.record(record)
