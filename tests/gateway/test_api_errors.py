"""The one /api exception handler: shapes, statuses, and no leaks from unexpected errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf

from gateway.api.errors import InvalidInput, NotFound, TooManyAttempts, UpstreamFailed
from gateway.api.exceptions import exception_handler


def handle(exc: Exception) -> tuple[int, dict]:
    response = exception_handler(exc, {})
    return response.status_code, response.data


def test_unexpected_exception_is_generic_500_without_details(caplog: pytest.LogCaptureFixture) -> None:
    status, body = handle(RuntimeError("boom with sk-secret-value in it"))
    assert status == 500
    assert body == {"error": {"message": "Internal server error", "type": "server_error"}}
    assert "sk-secret-value" in caplog.text, "the traceback goes to the log, not the client"


def test_django_validation_errors_are_camel_cased() -> None:
    status, body = handle(DjangoValidationError({"max_requests_per_minute": ["Too big."], "name": ["Empty."]}))
    assert status == 400
    assert body["error"]["details"] == [
        {"field": "maxRequestsPerMinute", "message": "Too big."},
        {"field": "name", "message": "Empty."},
    ]
    assert body["error"]["message"] == "Invalid request: maxRequestsPerMinute: Too big."


def test_nested_drf_errors_are_flattened_with_paths() -> None:
    detail: Any = {"allowedModels": {2: ["Must be a string."]}, "non_field_errors": ["x"]}
    status, body = handle(drf.ValidationError(detail))
    assert status == 400
    assert body["error"]["details"] == [
        {"field": "allowedModels[2]", "message": "Must be a string."},
        {"field": None, "message": "x"},
    ]


@pytest.mark.parametrize(
    ("exc", "status", "type_"),
    [
        (InvalidInput("bad", field="base_url"), 400, "invalid_request_error"),
        (NotFound("gone"), 404, "not_found_error"),
        (UpstreamFailed("down"), 502, "upstream_error"),
        (TooManyAttempts("slow down", retry_after=30), 429, "rate_limit_error"),
        (Http404("x"), 404, "not_found_error"),
        (drf.MethodNotAllowed("PUT"), 405, "method_not_allowed"),
        (drf.UnsupportedMediaType("text/plain"), 415, "unsupported_media_type"),
        (drf.NotAuthenticated(), 401, "authentication_error"),
    ],
)
def test_status_and_type_mapping(exc: Exception, status: int, type_: str) -> None:
    got_status, body = handle(exc)
    assert (got_status, body["error"]["type"]) == (status, type_)
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_domain_error_field_detail_and_retry_after() -> None:
    _, body = handle(InvalidInput("baseUrl must be http", field="base_url"))
    assert body["error"]["details"] == [{"field": "baseUrl", "message": "baseUrl must be http"}]
    response = exception_handler(TooManyAttempts("slow down", retry_after=30), {})
    assert response["Retry-After"] == "30"
