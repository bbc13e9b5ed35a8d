"""Django-side middleware (admin and /api). The /v1 data plane sets its own request ids."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_for(request: HttpRequest) -> str:
    """The client's X-Request-Id when it is a sane token, else a new one."""
    incoming = request.META.get("HTTP_X_REQUEST_ID", "")
    return incoming if _SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Echo or mint `X-Request-Id` on every response; `request.request_id` holds it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]
        response: HttpResponseBase = self.get_response(request)
        response["X-Request-Id"] = request.request_id  # type: ignore[attr-defined]
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]
        response: HttpResponseBase = await self.get_response(request)
        response["X-Request-Id"] = request.request_id  # type: ignore[attr-defined]
        return response
