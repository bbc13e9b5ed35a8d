"""JSON shapes of the gateway's management endpoints (camelCase on the wire)."""

from __future__ import annotations

from rest_framework import serializers

from gateway.models import ApiKey

from .fields import StrictBooleanField, StrictCharField, StrictIntegerField, StrictSerializer

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
    noLog = StrictBooleanField(source="no_log", required=False)


class LoginInput(StrictSerializer):
    username = StrictCharField(max_length=150, required=False, default="admin")
    password = StrictCharField(max_length=1024, trim_whitespace=False)
