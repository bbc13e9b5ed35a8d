"""Management endpoints of the gateway app: operator login, API keys, health, and routing
configuration (model aliases, combos, resilience profiles)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from gateway import selectors, services

from .base import ApiView
from .errors import InvalidInput
from .exceptions import error_type
from .permissions import is_operator
from .serializers import (
    AliasInput,
    ApiKeyInput,
    ApiKeyOutput,
    ComboInput,
    ComboOutput,
    LoginInput,
    ResilienceInput,
    profiles_body,
)


def query_param(request: Request, name: str) -> str:
    """A required, non-empty query parameter; 400 naming it otherwise."""
    value = request.query_params.get(name, "").strip()
    if not value:
        raise InvalidInput(f"The query parameter {name!r} is required", field=name)
    return value


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


class AliasApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response({"aliases": {a.alias: a.model for a in selectors.alias_list()}})

    def post(self, request: Request) -> Response:
        data = AliasInput(data=request.data)
        data.is_valid(raise_exception=True)
        alias, created = services.alias_set(**data.validated_data)
        body = {"success": True, "alias": alias.alias, "model": alias.model}
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    put = post

    def delete(self, request: Request) -> Response:
        services.alias_delete(alias=selectors.alias_get(alias=query_param(request, "alias")))
        return Response({"success": True})


class ComboListApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response({"combos": ComboOutput(selectors.combo_list(), many=True).data})

    def post(self, request: Request) -> Response:
        data = ComboInput(data=request.data)
        data.is_valid(raise_exception=True)
        combo = services.combo_create(**data.validated_data)
        return Response({"combo": ComboOutput(combo).data}, status=status.HTTP_201_CREATED)


class ComboDetailApi(ApiView):
    def get(self, request: Request, combo_id: int) -> Response:
        return Response({"combo": ComboOutput(selectors.combo_get(combo_id=combo_id)).data})

    def put(self, request: Request, combo_id: int) -> Response:
        combo = selectors.combo_get(combo_id=combo_id)
        data = ComboInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        combo = services.combo_update(combo=combo, data=data.validated_data)
        return Response({"combo": ComboOutput(combo).data})

    patch = put

    def delete(self, request: Request, combo_id: int) -> Response:
        services.combo_delete(combo=selectors.combo_get(combo_id=combo_id))
        return Response({"message": "Combo deleted"})


class ResilienceApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response(profiles_body(selectors.resilience_profile_list()))

    def put(self, request: Request) -> Response:
        data = ResilienceInput(data=request.data)
        data.is_valid(raise_exception=True)
        profiles = services.resilience_profiles_update(changes=data.validated_data["profiles"])
        return Response(profiles_body(profiles))

    patch = put


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown /api paths answer JSON, not Django's HTML 404 page."""
    message = f"No API endpoint at {request.path}"
    return JsonResponse({"error": {"message": message, "type": error_type(404)}}, status=404)
