"""Gemini `generateContent` / `streamGenerateContent` as a client format (google-genai SDK).

Served on `/v1beta/models/{model}:generateContent` and the same under `/v1/models/...` (the
SDK's default API version). A Gemini provider gets the client's body unchanged and its answer
passes through byte for byte; any other provider goes through the canonical form.
Errors use Google's shape: `{"error": {"code", "message", "status"}}`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import orjson

from gateway.errors import GatewayError
from gateway.formats.base import Canonical, ClientFormat, StreamEncoder

from .request import convert, refuse, validate
from .response import GeminiArrayEncoder, GeminiStreamEncoder, render_response

if TYPE_CHECKING:
    from gateway.snapshot import Snapshot

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(code: int) -> str:
    if code in _STATUS_NAMES:
        return _STATUS_NAMES[code]
    return "INTERNAL" if code >= 500 else "FAILED_PRECONDITION"


def error_object(err: GatewayError) -> dict[str, Any]:
    error: dict[str, Any] = {"code": err.status, "message": err.message, "status": status_name(err.status)}
    if err.retry_after is not None:
        # Gemini clients read the wait from RetryInfo, as Google sends it on a 429.
        delay = f"{max(1, round(err.retry_after))}s"
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
    return {"error": error}


class GeminiFormat(ClientFormat):
    name = "gemini"
    native_provider_format: ClassVar[str | None] = "gemini"

    def __init__(self) -> None:
        # The router calls check_translatable then to_canonical on the same body with no await
        # in between: the conversion done for the check is handed over instead of redone.
        self._converted: tuple[dict[str, Any], Canonical] | None = None

    def validate(self, payload: dict[str, Any]) -> Canonical | None:
        validate(payload)
        return None

    def check_translatable(self, payload: dict[str, Any]) -> None:
        canonical, features = convert(payload)
        refuse(features)
        self._converted = (payload, canonical)

    def to_canonical(self, payload: dict[str, Any]) -> Canonical:
        converted, self._converted = self._converted, None
        if converted is not None and converted[0] is payload:
            return converted[1]
        return convert(payload)[0]

    def render_response(self, response: Canonical) -> bytes:
        return orjson.dumps(render_response(response))

    def stream_encoder(self, *, model: str, request_id: str, include_usage: bool) -> StreamEncoder:
        return GeminiStreamEncoder(model=model)

    def error_body(self, err: GatewayError) -> bytes:
        return orjson.dumps(error_object(err))

    def stream_error(self, err: GatewayError) -> bytes:
        # The google-genai SDK raises APIError on a `{"error": ...}` event.
        return b"data: " + orjson.dumps(error_object(err)) + b"\r\n\r\n"

    def client_wants_stream_usage(self, payload: dict[str, Any]) -> bool:
        return True  # Gemini answers always carry usageMetadata

    def models_body(self, snap: Snapshot) -> bytes:
        return models_body(snap)


class GeminiArrayFormat(GeminiFormat):
    """`:streamGenerateContent` without `?alt=sse`: one JSON array, element by element.

    Always translated (even for a Gemini provider, which is asked for SSE): the adapter's
    passthrough relay speaks SSE only. Gemini-only features are refused there (400).
    A failure mid-stream ends the array with an error element (`GeminiArrayEncoder.failure`).
    """

    native_provider_format = None
    stream_content_type = b"application/json; charset=utf-8"

    def stream_encoder(self, *, model: str, request_id: str, include_usage: bool) -> StreamEncoder:
        return GeminiArrayEncoder(model=model)


# -- GET /v1beta/models --------------------------------------------------------------------------

_METHODS = {"chat": ["generateContent", "streamGenerateContent"], "embedding": ["embedContent"]}
_models_cache: tuple[object, bytes] | None = None


def models_body(snap: Snapshot) -> bytes:
    """The gateway's routable models (providers with an active connection), Gemini-style:
    `name` is `models/<provider>/<model>`, which the SDK accepts back as a model name."""
    global _models_cache
    if _models_cache is not None and _models_cache[0] is snap:
        return _models_cache[1]
    models: list[dict[str, Any]] = [
        {
            "name": f"models/{combo.name}",
            "baseModelId": combo.name,
            "version": "combo",
            "displayName": combo.name,
            "description": f"OmniRoute combo ({combo.strategy})",
            "supportedGenerationMethods": _METHODS["chat"],
        }
        for combo in snap.combos.values()
        if combo.is_active
    ]
    for provider_id in snap.credentials:
        provider = snap.catalog.providers[provider_id]
        for model in provider.models:
            methods = _METHODS.get(model.type)
            if methods is None:
                continue
            entry: dict[str, Any] = {
                "name": f"models/{provider_id}/{model.id}",
                "baseModelId": f"{provider_id}/{model.id}",
                "version": model.id,
                "displayName": model.name or model.id,
                "description": f"{model.id} from {provider.name}, via OmniRoute",
                "supportedGenerationMethods": methods,
            }
            if model.context_length:
                entry["inputTokenLimit"] = model.context_length
            models.append(entry)
    body = orjson.dumps({"models": models})
    _models_cache = (snap, body)
    return body


FORMAT = GeminiFormat()
ARRAY_FORMAT = GeminiArrayFormat()
