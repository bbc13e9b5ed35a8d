"""The base view of the management API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http.response import HttpResponseBase
from django.urls import URLPattern, path
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.views import APIView


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "Request body is too large."
    default_code = "request_too_large"


class ApiView(APIView):
    """Refuses oversized bodies before anything reads them (DRF streams the body past
    Django's DATA_UPLOAD_MAX_MEMORY_SIZE check)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.MAX_BODY_BYTES:
            raise RequestTooLarge(f"Request body is too large: {length} bytes, the limit is {settings.MAX_BODY_BYTES}.")
        super().initial(request, *args, **kwargs)


class IdConverter:
    """A database id in a URL: digits, at most 18 of them (bigger numbers overflow SQLite)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


def route(pattern: str, view: Callable[..., HttpResponseBase], name: str) -> list[URLPattern]:
    """The route with and without a trailing slash; clients write both."""
    return [path(pattern, view, name=name), path(f"{pattern}/", view)]
