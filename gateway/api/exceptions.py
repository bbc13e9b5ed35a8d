"""The one exception boundary of `/api`: every failure becomes
`{"error": {"message", "type", "details"?: [{"field", "message"}]}}`.

Unexpected exceptions are logged with their traceback and answered with a generic 500, so
neither stack traces nor secrets reach the client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from providers.crypto import SecretDecryptionError

from .errors import DomainError, TooManyAttempts
from .fields import to_camel

log = logging.getLogger(__name__)

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limit_error",
    502: "upstream_error",
}


def error_type(status: int) -> str:
    return _TYPE_BY_STATUS.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_response(
    status: int, message: str, *, type_: str | None = None, details: list[dict[str, Any]] | None = None
) -> Response:
    error: dict[str, Any] = {"message": message, "type": type_ or error_type(status)}
    if details:
        error["details"] = details
    return Response({"error": error}, status=status)


def _flatten(detail: Any, path: str = "", *, camel: bool = False) -> Iterator[dict[str, Any]]:
    """A nested error structure as a flat list of {field, message}; field None = whole body.

    DRF errors are keyed by wire (camelCase) names already; Django's by model (snake_case)
    names, which `camel` converts.
    """
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # ListField errors are keyed by item index
                yield from _flatten(value, f"{path}[{key}]", camel=camel)
                continue
            name = "" if key in {"non_field_errors", "__all__"} else str(key)
            name = to_camel(name) if camel else name
            yield from _flatten(value, f"{path}.{name}" if path and name else (path or name), camel=camel)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                yield from _flatten(value, f"{path}[{index}]", camel=camel)
            else:
                yield {"field": path or None, "message": str(value)}
    else:
        yield {"field": path or None, "message": str(detail)}


def _validation_response(detail: Any, *, camel: bool = False) -> Response:
    details = list(_flatten(detail, camel=camel))
    first = details[0] if details else {"field": None, "message": "Invalid input."}
    summary = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return error_response(400, f"Invalid request: {summary}", details=details)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    set_rollback()
    if isinstance(exc, DjangoValidationError):
        return _validation_response(exc.message_dict if hasattr(exc, "error_dict") else exc.messages, camel=True)
    if isinstance(exc, DomainError):
        details = [{"field": to_camel(exc.field), "message": exc.message}] if exc.field else None
        response = error_response(exc.status, exc.message, type_=exc.type, details=details)
        if isinstance(exc, TooManyAttempts):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    if isinstance(exc, drf.ValidationError):
        return _validation_response(exc.detail)
    if isinstance(exc, drf.APIException):
        response = error_response(exc.status_code, _message(exc))
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            response["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if isinstance(exc, drf.Throttled) and wait is not None:
            response["Retry-After"] = str(int(wait))
        return response
    if isinstance(exc, SecretDecryptionError):
        log.error("%s", exc)
        return error_response(500, str(exc))
    view = context.get("view")
    log.error("Unhandled error in %s", type(view).__name__ if view else "API view", exc_info=exc)
    return error_response(500, "Internal server error")


def _message(exc: drf.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, list | dict):
        return "; ".join(item["message"] for item in _flatten(detail))
    return str(detail)
