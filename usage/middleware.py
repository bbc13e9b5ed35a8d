"""Django-side middleware of the usage app (admin and /api)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from .audit import audit_request_reset, audit_request_set


class AuditContextMiddleware:
    """Makes the request the audit context (actor, IP, request id) of every change made
    while handling it. Sits after AuthenticationMiddleware."""

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
        token = audit_request_set(request)
        try:
            response: HttpResponseBase = self.get_response(request)
        finally:
            audit_request_reset(token)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        token = audit_request_set(request)
        try:
            response: HttpResponseBase = await self.get_response(request)
        finally:
            audit_request_reset(token)
        return response
