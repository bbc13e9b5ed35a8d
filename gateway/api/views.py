"""Management endpoints of the gateway app: operator login, API keys, health."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from gateway import selectors, services

from .base import ApiView
from .exceptions import error_type
from .permissions import is_operator
from .serializers import ApiKeyInput, ApiKeyOutput, LoginInput


class LoginApi(ApiView):
    # No authentication, hence no CSRF check: there is no session yet to protect.
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def post(self, request: Request) -> Response:
        data = LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.session_login(request=request._request, **data.validated_data)
        return Response({"success": True})


class LogoutApi(ApiView):
    permission_classes = (AllowAny,)

    def post(self, request: Request) -> Response:
        services.session_logout(request=request._request)
        return Response({"success": True})


class AuthStatusApi(ApiView):
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        return Response({"authenticated": is_operator(request.user)})


class ApiKeyListApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response({"keys": ApiKeyOutput(selectors.api_key_list(), many=True).data})

    def post(self, request: Request) -> Response:
        data = ApiKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        key, plain = services.api_key_create(**data.validated_data)
        out = dict(ApiKeyOutput(key).data)
        # The only time the full key is ever shown.
        body = {"id": out.pop("id"), "name": out.pop("name"), "key": plain, **out}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(ApiView):
    def get(self, request: Request, key_id: int) -> Response:
        return Response(ApiKeyOutput(selectors.api_key_get(key_id=key_id)).data)

    def patch(self, request: Request, key_id: int) -> Response:
        key = selectors.api_key_get(key_id=key_id)
        data = ApiKeyInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        key = services.api_key_update(api_key=key, data=data.validated_data)
        return Response(ApiKeyOutput(key).data)

    put = patch

    def delete(self, request: Request, key_id: int) -> Response:
        services.api_key_delete(api_key=selectors.api_key_get(key_id=key_id))
        return Response({"message": "Key deleted"})


class HealthApi(ApiView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def get(self, request: Request) -> Response:
        report = selectors.health_report()
        body = {
            "status": report.status,
            "version": report.version,
            "db": {"ok": report.db_ok, "latencyMs": report.db_latency_ms},
            "redis": {"configured": report.redis_configured, "ok": report.redis_ok},
            "uptimeSeconds": report.uptime_seconds,
        }
        return Response(body, status=status.HTTP_200_OK if report.db_ok else status.HTTP_503_SERVICE_UNAVAILABLE)


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown /api paths answer JSON, not Django's HTML 404 page."""
    message = f"No API endpoint at {request.path}"
    return JsonResponse({"error": {"message": message, "type": error_type(404)}}, status=404)
