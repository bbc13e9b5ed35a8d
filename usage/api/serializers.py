"""JSON shapes of the usage endpoints (camelCase on the wire): query filters, usage totals,
the request log, prices, the audit log and telemetry."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers

from gateway.api.fields import StrictCharField, StrictFloatField, StrictIntegerField, StrictSerializer
from gateway.budget_clock import PERIODS

from ..pricing import ModelPrice
from ..selectors import (
    BUCKET_LENGTH,
    BUCKETS,
    DEFAULT_WINDOW,
    GROUPS,
    MAX_BUCKETS,
    STATUS_FILTERS,
    WINDOWS,
    BudgetStatus,
    TelemetrySummary,
    UsageHistory,
)
from ..services.budgets import MAX_BUDGET
from ..services.pricing import MAX_PRICE

MAX_ID = 10**18 - 1
MAX_LOG_LIMIT = 500
MAX_AUDIT_LIMIT = 1000
# "+01:00" arrives as " 01:00" when a client forgets to URL-encode the "+".
_UNENCODED_OFFSET = re.compile(r" (\d{2}:?\d{2})$")


class MomentField(serializers.Field):
    """An ISO 8601 date-time (`2026-11-20T10:00:00Z`) or date (`2026-11-20`, midnight); without
    an offset it is in the operator's time zone (TIME_ZONE)."""

    default_error_messages = {"invalid": "Must be an ISO 8601 date-time or date, e.g. 2026-11-20T10:00:00Z."}

    def to_internal_value(self, data: Any) -> datetime:
        if not isinstance(data, str):
            self.fail("invalid")
        text = _UNENCODED_OFFSET.sub(r"+\1", data.strip())
        try:
            moment = parse_datetime(text)
            if moment is None:
                day = parse_date(text)
                moment = datetime.combine(day, time.min) if day is not None else None
        except ValueError:  # well-formed but impossible, e.g. month 13
            moment = None
        if moment is None:
            self.fail("invalid")
        return timezone.make_aware(moment) if timezone.is_naive(moment) else moment

    def to_representation(self, value: datetime) -> str:
        return serializers.DateTimeField().to_representation(value)


class CursorField(serializers.Field):
    """The opaque `nextCursor` of a log page: the id to continue before."""

    default_error_messages = {"invalid": "Invalid cursor; pass the nextCursor of the previous page unchanged."}

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str) or len(data) > 64:
            self.fail("invalid")
        text = data.strip()
        try:
            decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self.fail("invalid")
        kind, _, value = decoded.partition(":")
        if kind != "id" or not value.isdigit() or len(value) > 18 or int(value) < 1:
            self.fail("invalid")
        return int(value)


def cursor_encode(before_id: int | None) -> str | None:
    return None if before_id is None else base64.urlsafe_b64encode(f"id:{before_id}".encode()).decode().rstrip("=")


class RangeQuery(serializers.Serializer):
    """`from` and `to` (`from` is added in get_fields: it is a Python keyword)."""

    to = MomentField(required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = MomentField(source="start", required=False)
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("start"), attrs.get("to")
        if start is not None and end is not None and start >= end:
            raise serializers.ValidationError({"from": ["Must be before 'to'."]})
        return attrs


def _bucketed_range(attrs: dict[str, Any], bucket: str | None) -> dict[str, Any]:
    """Defaults: `to` now, `from` 24 hours before `to`, bucket hour up to 2 days, else day."""
    end = attrs.get("to") or timezone.now()
    start = attrs.get("start") or end - BUCKET_LENGTH["day"]
    if start >= end:
        raise serializers.ValidationError({"from": ["Must be before 'to' (default: now)."]})
    bucket = bucket or ("hour" if end - start <= 2 * BUCKET_LENGTH["day"] else "day")
    if (end - start) / BUCKET_LENGTH[bucket] > MAX_BUCKETS:
        raise serializers.ValidationError(
            {"bucket": [f"The range spans more than {MAX_BUCKETS} {bucket}s; shorten it or use a larger bucket."]}
        )
    return {**attrs, "start": start, "to": end, "bucket": bucket}


class UsageFilterQuery(RangeQuery):
    provider = serializers.CharField(max_length=100, required=False)
    model = serializers.CharField(max_length=200, required=False)
    keyId = serializers.IntegerField(source="key_id", min_value=1, max_value=MAX_ID, required=False)
    connectionId = serializers.IntegerField(source="connection_id", min_value=1, max_value=MAX_ID, required=False)


class HistoryQuery(UsageFilterQuery):
    bucket = serializers.ChoiceField(choices=sorted(BUCKETS), required=False)
    groupBy = serializers.ChoiceField(source="group_by", choices=sorted(GROUPS), default="provider")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _bucketed_range(super().validate(attrs), attrs.get("bucket"))


class ConnectionUsageQuery(RangeQuery):
    """One connection's usage: only from/to apply; the series is hourly."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _bucketed_range(super().validate(attrs), "hour")


class LogsQuery(UsageFilterQuery):
    status = serializers.CharField(max_length=7, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LOG_LIMIT, default=50)
    cursor = CursorField(required=False)

    def validate_status(self, value: str) -> str:
        if value in STATUS_FILTERS or re.fullmatch(r"[1-5][0-9]{2}", value):
            return value
        names = ", ".join(sorted(STATUS_FILTERS))
        raise serializers.ValidationError(f"Must be {names} or a status code such as 429.")


def totals_body(row: dict[str, Any]) -> dict[str, Any]:
    """Aggregates (usage.selectors.records) in camelCase; costs as JSON numbers."""
    latency = row["avg_latency_ms"]
    return {
        "requests": row["requests"],
        "errors": row["errors"],
        "promptTokens": row["prompt_tokens"],
        "completionTokens": row["completion_tokens"],
        "cachedTokens": row["cached_tokens"],
        "reasoningTokens": row["reasoning_tokens"],
        "costUsd": float(row["cost_usd"]),
        "avgLatencyMs": None if latency is None else round(latency, 3),
    }


def history_body(history: UsageHistory) -> dict[str, Any]:
    """`rolledUpBefore`: where the hourly roll-ups end and the records begin, when roll-ups
    contributed (null otherwise)."""
    moment = serializers.DateTimeField()
    rolled_up_before = history.rolled_up_before
    return {
        "totals": totals_body(history.totals),
        "series": [
            {"bucketStart": moment.to_representation(r["bucket_start"]), **totals_body(r)} for r in history.series
        ],
        "breakdown": [{"key": r["key"], "name": r.get("name"), **totals_body(r)} for r in history.breakdown],
        "rolledUpBefore": None if rolled_up_before is None else moment.to_representation(rolled_up_before),
    }


class _RequestOutput(serializers.Serializer):
    """What a usage record and a request log both say about their request."""

    id = serializers.IntegerField()
    createdAt = serializers.DateTimeField(source="created_at")
    requestId = serializers.CharField(source="request_id")
    endpoint = serializers.CharField()
    clientFormat = serializers.CharField(source="client_format")
    keyId = serializers.IntegerField(source="api_key_id")
    provider = serializers.CharField()
    model = serializers.CharField()
    connectionId = serializers.IntegerField(source="connection_id")
    statusCode = serializers.IntegerField(source="status_code")
    stream = serializers.BooleanField()
    latencyMs = serializers.FloatField(source="latency_ms")


class LogOutput(_RequestOutput):
    keyName = serializers.CharField(source="api_key_name")
    promptTokens = serializers.IntegerField(source="prompt_tokens")
    completionTokens = serializers.IntegerField(source="completion_tokens")
    cachedTokens = serializers.IntegerField(source="cached_tokens")
    cacheCreationTokens = serializers.IntegerField(source="cache_creation_tokens")
    reasoningTokens = serializers.IntegerField(source="reasoning_tokens")
    images = serializers.IntegerField()
    audioSeconds = serializers.FloatField(source="audio_seconds")
    costUsd = serializers.FloatField(source="cost_usd")
    ttfbMs = serializers.FloatField(source="ttfb_ms")
    error = serializers.CharField()


class RequestLogOutput(_RequestOutput):
    """Bodies and headers are null when the key was noLog (`bodiesLogged` false)."""

    bodiesLogged = serializers.BooleanField(source="bodies_logged")
    requestHeaders = serializers.JSONField(source="request_headers")
    requestBody = serializers.SerializerMethodField()
    responseBody = serializers.SerializerMethodField()
    requestTruncated = serializers.BooleanField(source="request_truncated")
    responseTruncated = serializers.BooleanField(source="response_truncated")

    def get_requestBody(self, row: Any) -> str | None:
        return row.request_body if row.bodies_logged else None

    def get_responseBody(self, row: Any) -> str | None:
        return row.response_body if row.bodies_logged else None


class PriceValueField(StrictFloatField):
    """A price in USD (a JSON number, 0 to MAX_PRICE), or null to fall back to the catalog."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, max_value=float(MAX_PRICE), allow_null=True, required=False, **kwargs)

    def to_internal_value(self, data: Any) -> Decimal:  # type: ignore[override]
        return Decimal(str(super().to_internal_value(data)))


class PriceInput(StrictSerializer):
    provider = StrictCharField(max_length=100)
    model = StrictCharField(max_length=200)
    input = PriceValueField()
    output = PriceValueField()
    cached = PriceValueField()
    cacheCreation = PriceValueField(source="cache_creation")
    reasoning = PriceValueField()
    perImage = PriceValueField(source="per_image")
    perAudioSecond = PriceValueField(source="per_audio_second")


def price_body(price: ModelPrice) -> dict[str, Any]:
    """Prices as charged (fallbacks applied; null = not priced), where they come from, and
    which fields an override sets."""
    effective = price.effective()
    body: dict[str, Any] = {}
    for name, value in effective.items():
        if value is not None or name not in {"perImage", "perAudioSecond"}:
            body[name] = None if value is None else float(value)
    body["source"] = price.source
    if price.overridden:
        body["overridden"] = list(price.overridden)
    return body


def pricing_body(prices: dict[str, dict[str, ModelPrice]]) -> dict[str, Any]:
    return {provider: {model: price_body(p) for model, p in models.items()} for provider, models in prices.items()}


class AuditQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_AUDIT_LIMIT, default=100)


class AuditEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    createdAt = serializers.DateTimeField(source="created_at")
    actor = serializers.CharField()
    actorIp = serializers.CharField(source="actor_ip")
    action = serializers.CharField()
    targetType = serializers.CharField(source="target_type")
    targetId = serializers.CharField(source="target_id")
    targetRepr = serializers.CharField(source="target_repr")
    changes = serializers.JSONField()
    requestId = serializers.CharField(source="request_id")


class TelemetryQuery(serializers.Serializer):
    window = serializers.ChoiceField(choices=WINDOWS, default=DEFAULT_WINDOW)


def telemetry_body(summary: TelemetrySummary) -> dict[str, Any]:
    providers: dict[str, dict[str, Any]] = {}
    for name, s in summary.providers.items():
        ttft = {"p50": s.ttft.p50, "p95": s.ttft.p95, "p99": s.ttft.p99, "count": s.ttft.count}
        latency = s.latency
        providers[name] = {"p50": latency.p50, "p95": latency.p95, "p99": latency.p99, "count": latency.count}
        providers[name] |= {"ttft": ttft, "ttftP50": s.ttft.p50}
    return {"window": summary.window, "source": summary.source, "providers": providers}


class BudgetInput(StrictSerializer):
    keyId = StrictIntegerField(source="key_id", min_value=1, max_value=MAX_ID)
    limit = StrictFloatField(min_value=0, max_value=float(MAX_BUDGET))
    period = serializers.ChoiceField(choices=list(PERIODS))
    warningThreshold = StrictFloatField(source="warning_threshold", required=False, allow_null=True)


class BudgetQuery(serializers.Serializer):
    keyId = serializers.IntegerField(source="key_id", min_value=1, max_value=MAX_ID, required=False)


def _usd(value: Decimal) -> float:
    return float(value)


def budget_body(status: BudgetStatus) -> dict[str, Any]:
    budget = status.budget
    return {
        "keyId": budget.api_key_id,
        "keyName": budget.api_key.name,
        "limit": _usd(budget.limit_usd),
        "period": budget.period,
        "warningThreshold": _usd(budget.warning_threshold),
        "spent": _usd(status.spent),
        "remaining": _usd(status.remaining),
        "resetsAt": status.resets_at.isoformat(),
        "warning": status.warning,
    }
