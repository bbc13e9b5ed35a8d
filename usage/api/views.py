"""Management endpoints of the usage app: prices, usage history and logs, per-connection
usage, the audit log, latency telemetry and the Prometheus metrics. All are operator-only (the default permission)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from redis.exceptions import RedisError
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from gateway.api.base import ApiView
from gateway.api.views import query_param
from gateway.telemetry.exposition import CONTENT_TYPE, metrics_text
from usage import selectors, services

from .serializers import (
    AuditEntryOutput,
    AuditQuery,
    BudgetInput,
    BudgetQuery,
    ConnectionUsageQuery,
    HistoryQuery,
    LogOutput,
    LogsQuery,
    MomentField,
    PriceInput,
    RequestLogOutput,
    TelemetryQuery,
    budget_body,
    cursor_encode,
    history_body,
    price_body,
    pricing_body,
    telemetry_body,
)


def query_input(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Validated query parameters; empty ones count as absent, unknown ones are ignored."""
    params = request.query_params
    data = {name: params.get(name, "") for name in params if params.get(name, "").strip()}
    query = serializer_class(data=data)
    query.is_valid(raise_exception=True)
    return dict(query.validated_data)


def _filters(data: dict[str, Any]) -> selectors.UsageFilters:
    return selectors.UsageFilters(
        start=data.get("start"),
        end=data.get("to"),
        provider=data.get("provider"),
        model=data.get("model"),
        key_id=data.get("key_id"),
        connection_id=data.get("connection_id"),
        status=data.get("status"),
    )


def _moment(value: Any) -> str:
    return MomentField().to_representation(value)


class PricingApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response(pricing_body(selectors.price_list()))

    def patch(self, request: Request) -> Response:
        data = PriceInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        provider, model = values.pop("provider"), values.pop("model")
        outcome = services.price_override_set(provider=provider, model=model, prices=values)
        price = selectors.price_entry(provider=outcome.provider, model=outcome.model)
        body = {"provider": outcome.provider, "model": outcome.model, "price": price_body(price) if price else None}
        return Response(body)

    put = patch

    def delete(self, request: Request) -> Response:
        provider, model = query_param(request, "provider"), query_param(request, "model")
        services.price_override_delete(row=selectors.price_override_get(provider=provider, model=model))
        return Response({"success": True})


class UsageHistoryApi(ApiView):
    def get(self, request: Request) -> Response:
        data = query_input(HistoryQuery, request)
        history = selectors.usage_history(filters=_filters(data), bucket=data["bucket"], group_by=data["group_by"])
        body = {
            "from": _moment(data["start"]),
            "to": _moment(data["to"]),
            "bucket": data["bucket"],
            "groupBy": data["group_by"],
            **history_body(history),
        }
        return Response(body)


def _log_page(request: Request, page: Any, output: type[serializers.Serializer]) -> Response:
    """A filtered page of `page` (a selector) as `{"logs", "nextCursor"}`."""
    data = query_input(LogsQuery, request)
    rows, before = page(filters=_filters(data), limit=data["limit"], before_id=data.get("cursor"))
    return Response({"logs": output(rows, many=True).data, "nextCursor": cursor_encode(before)})


class UsageLogsApi(ApiView):
    def get(self, request: Request) -> Response:
        return _log_page(request, selectors.usage_log_page, LogOutput)


class RequestLogsApi(ApiView):
    def get(self, request: Request) -> Response:
        return _log_page(request, selectors.request_log_page, RequestLogOutput)


class ConnectionUsageApi(ApiView):
    def get(self, request: Request, connection_id: int) -> Response:
        data = query_input(ConnectionUsageQuery, request)
        history = selectors.usage_connection_history(connection_id=connection_id, start=data["start"], end=data["to"])
        body = history_body(history)
        del body["breakdown"]
        return Response(
            {"connectionId": connection_id, "from": _moment(data["start"]), "to": _moment(data["to"]), **body}
        )


class AuditLogApi(ApiView):
    def get(self, request: Request) -> Response:
        data = query_input(AuditQuery, request)
        entries = selectors.audit_entry_list(limit=data["limit"])
        return Response({"entries": AuditEntryOutput(entries, many=True).data})


class TelemetryUnavailable(APIException):
    status_code = 503
    default_detail = "The telemetry store (Redis or DATA_DIR/metrics) cannot be read; try again."
    default_code = "telemetry_unavailable"


class TelemetrySummaryApi(ApiView):
    def get(self, request: Request) -> Response:
        window = query_input(TelemetryQuery, request)["window"]
        try:
            return Response(telemetry_body(selectors.telemetry_summary(window=window)))
        except (RedisError, OSError) as exc:
            raise TelemetryUnavailable() from exc


class BudgetApi(ApiView):
    """Per-key budgets: GET lists them with what was spent, POST creates or replaces one,
    DELETE ?keyId= removes one."""

    def get(self, request: Request) -> Response:
        key_id = query_input(BudgetQuery, request).get("key_id")
        return Response({"budgets": [budget_body(s) for s in selectors.budget_list(key_id=key_id)]})

    def post(self, request: Request) -> Response:
        data = BudgetInput(data=request.data)
        data.is_valid(raise_exception=True)
        budget = services.budget_set(**data.validated_data)
        return Response(budget_body(selectors.budget_status(budget)))

    def delete(self, request: Request) -> Response:
        query_param(request, "keyId")  # 400 naming the parameter when it is missing
        key_id = int(query_input(BudgetQuery, request)["key_id"])
        services.budget_delete(budget=selectors.budget_get(key_id=key_id))
        return Response({"success": True})


class MetricsApi(ApiView):
    """GET /metrics: Prometheus text format. Operators only, unless METRICS_PUBLIC."""

    def get_authenticators(self) -> list[Any]:
        return [] if settings.METRICS_PUBLIC else super().get_authenticators()

    def get_permissions(self) -> Sequence[Any]:
        return [AllowAny()] if settings.METRICS_PUBLIC else super().get_permissions()

    def get(self, request: Request) -> HttpResponse:
        try:
            return HttpResponse(metrics_text(), content_type=CONTENT_TYPE)
        except (RedisError, OSError) as exc:
            raise TelemetryUnavailable() from exc
