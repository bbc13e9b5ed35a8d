"""/api/settings: general settings, global system prompt, thinking budget, IP filter and bans.

Each PUT is a partial update (PATCH is the same) that must name at least one field;
unknown fields are a 400. Changes apply in every process without a restart.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from gateway.models import GatewaySettings
from gateway.options.netfilter import request_client_ip
from gateway.services import settings as service

from .base import ApiView
from .errors import DomainError
from .settings_serializers import (
    GeneralInput,
    IpBanInput,
    IpFilterInput,
    SystemPromptInput,
    ThinkingBudgetInput,
    ban_body,
    general_body,
    ip_filter_body,
    system_prompt_body,
    thinking_body,
)
from .views import query_param


class _SettingsView(ApiView):
    """GET renders the row with `render`; PUT validates with `input_class` and saves."""

    input_class: type[Any]

    def render(self, request: Request, row: GatewaySettings) -> dict[str, Any]:
        raise NotImplementedError

    def get(self, request: Request) -> Response:
        return Response(self.render(request, service.settings_get()))

    def put(self, request: Request) -> Response:
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        caller = request_client_ip(request._request)
        try:
            row = service.settings_update(changes=data.validated_data, caller_ip=caller)
        except DomainError as exc:  # the service names model fields; the client knows wire names
            wire = {field.source: name for name, field in data.fields.items()}
            exc.field = wire.get(exc.field or "", exc.field)
            raise
        return Response(self.render(request, row))

    def patch(self, request: Request) -> Response:
        return self.put(request)


class GeneralSettingsApi(_SettingsView):
    input_class = GeneralInput

    def render(self, request: Request, row: GatewaySettings) -> dict[str, Any]:
        log_requests = settings.LOG_REQUESTS if row.log_requests is None else row.log_requests
        effective = {
            "trustedProxies": service.trusted_proxies_effective(row),
            "logRequests": log_requests,
            "connectionSelection": row.connection_selection or settings.CONNECTION_SELECTION,
        }
        return general_body(row, effective)


class SystemPromptApi(_SettingsView):
    input_class = SystemPromptInput

    def render(self, request: Request, row: GatewaySettings) -> dict[str, Any]:
        return system_prompt_body(row)


class ThinkingBudgetApi(_SettingsView):
    input_class = ThinkingBudgetInput

    def render(self, request: Request, row: GatewaySettings) -> dict[str, Any]:
        return thinking_body(row)


class IpFilterApi(_SettingsView):
    input_class = IpFilterInput

    def render(self, request: Request, row: GatewaySettings) -> dict[str, Any]:
        return ip_filter_body(row, service.ip_ban_list(), request_client_ip(request._request))


class IpBanApi(ApiView):
    def post(self, request: Request) -> Response:
        data = IpBanInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        ban = service.ip_ban_create(
            address=values["ip"],
            seconds=values["seconds"],
            reason=values["reason"],
            caller_ip=request_client_ip(request._request),
        )
        return Response(ban_body(ban), status=status.HTTP_201_CREATED)

    def delete(self, request: Request) -> Response:
        removed = service.ip_ban_delete(address=query_param(request, "ip"))
        return Response({"removed": removed})
