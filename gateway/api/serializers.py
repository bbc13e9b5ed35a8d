"""JSON shapes of the gateway's management endpoints (camelCase on the wire)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework import serializers

from gateway.models import ApiKey, Combo, ResilienceProfile

from .fields import StrictBooleanField, StrictCharField, StrictFloatField, StrictIntegerField, StrictSerializer

MAX_ALLOWED_MODELS = 1000


class ApiKeyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    scope = serializers.CharField()
    isActive = serializers.BooleanField(source="is_active")
    allowedModels = serializers.ListField(source="allowed_models", child=serializers.CharField())
    maxRequestsPerMinute = serializers.IntegerField(source="max_requests_per_minute", allow_null=True)
    maxRequestsPerDay = serializers.IntegerField(source="max_requests_per_day", allow_null=True)
    maxTokensPerMinute = serializers.IntegerField(source="max_tokens_per_minute", allow_null=True)
    maxSessions = serializers.IntegerField(source="max_sessions", allow_null=True)
    noLog = serializers.BooleanField(source="no_log")
    createdAt = serializers.DateTimeField(source="created_at")


class ApiKeyInput(StrictSerializer):
    """Create, or (partial=True) update, an API key."""

    ignored_fields = frozenset({"id", "prefix", "createdAt"})

    name = StrictCharField(max_length=200)
    scope = serializers.ChoiceField(choices=[s for s, _ in ApiKey.SCOPES], required=False)
    isActive = StrictBooleanField(source="is_active", required=False)
    allowedModels = serializers.ListField(
        source="allowed_models",
        child=StrictCharField(max_length=200),
        max_length=MAX_ALLOWED_MODELS,
        required=False,
    )
    maxRequestsPerMinute = StrictIntegerField(
        source="max_requests_per_minute", min_value=1, max_value=2**31 - 1, allow_null=True, required=False
    )
    maxRequestsPerDay = StrictIntegerField(
        source="max_requests_per_day", min_value=1, max_value=2**31 - 1, allow_null=True, required=False
    )
    maxTokensPerMinute = StrictIntegerField(
        source="max_tokens_per_minute", min_value=1, max_value=2**31 - 1, allow_null=True, required=False
    )
    maxSessions = StrictIntegerField(
        source="max_sessions", min_value=1, max_value=2**31 - 1, allow_null=True, required=False
    )
    noLog = StrictBooleanField(source="no_log", required=False)


class LoginInput(StrictSerializer):
    username = StrictCharField(max_length=150, required=False, default="admin")
    password = StrictCharField(max_length=1024, trim_whitespace=False)


class AliasInput(StrictSerializer):
    alias = StrictCharField(max_length=200)
    model = StrictCharField(max_length=300)


class ComboOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    models = serializers.JSONField(source="members")
    strategy = serializers.CharField()
    config = serializers.JSONField()
    isActive = serializers.BooleanField(source="is_active")
    sortOrder = serializers.IntegerField(source="sort_order")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")


class ComboInput(StrictSerializer):
    """Create, or (partial=True) update, a combo. Members are checked by the service."""

    ignored_fields = frozenset({"id", "createdAt", "updatedAt"})

    name = StrictCharField(max_length=100)
    models = serializers.ListField(source="members", child=serializers.JSONField())
    strategy = serializers.ChoiceField(choices=[s for s, _ in Combo.STRATEGIES], required=False)
    config = serializers.DictField(required=False)
    isActive = StrictBooleanField(source="is_active", required=False)
    sortOrder = StrictIntegerField(source="sort_order", min_value=-(2**31), max_value=2**31 - 1, required=False)


class ResilienceProfileOutput(serializers.Serializer):
    cooldownBaseSeconds = serializers.FloatField(source="cooldown_base_seconds")
    cooldownMaxSeconds = serializers.FloatField(source="cooldown_max_seconds")
    backoffMultiplier = serializers.FloatField(source="backoff_multiplier")
    breakerFailureThreshold = serializers.IntegerField(source="breaker_failure_threshold")
    breakerResetSeconds = serializers.FloatField(source="breaker_reset_seconds")
    breakerHalfOpenProbes = serializers.IntegerField(source="breaker_half_open_probes")
    creditErrorCooldownSeconds = serializers.FloatField(source="credit_error_cooldown_seconds")
    updatedAt = serializers.DateTimeField(source="updated_at", allow_null=True)


class ResilienceProfileInput(StrictSerializer):
    """A partial profile; ranges are checked by the service."""

    ignored_fields = frozenset({"updatedAt"})

    cooldownBaseSeconds = StrictFloatField(source="cooldown_base_seconds", required=False)
    cooldownMaxSeconds = StrictFloatField(source="cooldown_max_seconds", required=False)
    backoffMultiplier = StrictFloatField(source="backoff_multiplier", required=False)
    breakerFailureThreshold = StrictIntegerField(source="breaker_failure_threshold", required=False)
    breakerResetSeconds = StrictFloatField(source="breaker_reset_seconds", required=False)
    breakerHalfOpenProbes = StrictIntegerField(source="breaker_half_open_probes", required=False)
    creditErrorCooldownSeconds = StrictFloatField(source="credit_error_cooldown_seconds", required=False)


class ResilienceInput(StrictSerializer):
    profiles = serializers.DictField(child=ResilienceProfileInput())


def profiles_body(profiles: Iterable[ResilienceProfile]) -> dict[str, Any]:
    return {"profiles": {p.auth_type: ResilienceProfileOutput(p).data for p in profiles}}
