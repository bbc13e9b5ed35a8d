"""JSON shapes of the provider connection endpoints (camelCase on the wire; the key is write-only)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gateway.api.fields import StrictBooleanField, StrictCharField, StrictIntegerField, StrictSerializer
from providers.services import ProbeResult


class ConnectionOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()
    name = serializers.CharField()
    priority = serializers.IntegerField()
    isActive = serializers.BooleanField(source="is_active")
    baseUrl = serializers.CharField(source="base_url")
    defaultModel = serializers.CharField(source="default_model")
    providerSpecificData = serializers.JSONField(source="provider_specific_data")
    apiKeyHint = serializers.CharField(source="api_key_hint")
    testStatus = serializers.CharField(source="test_status")
    lastError = serializers.CharField(source="last_error")
    lastTestedAt = serializers.DateTimeField(source="last_tested_at", allow_null=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")


class ConnectionInput(StrictSerializer):
    """Create, or (partial=True) update, a connection. Output-only fields a client echoes back are ignored."""

    ignored_fields = frozenset(
        {"id", "apiKeyHint", "testStatus", "lastError", "lastTestedAt", "createdAt", "updatedAt"}
    )

    provider = StrictCharField(max_length=100)
    name = StrictCharField(max_length=200)
    apiKey = StrictCharField(source="api_key", max_length=8192, required=False, allow_blank=True)
    baseUrl = StrictCharField(source="base_url", max_length=500, required=False, allow_blank=True)
    priority = StrictIntegerField(min_value=0, max_value=2**31 - 1, required=False)
    isActive = StrictBooleanField(source="is_active", required=False)
    defaultModel = StrictCharField(source="default_model", max_length=200, required=False, allow_blank=True)
    providerSpecificData = serializers.DictField(source="provider_specific_data", required=False)


class ValidateInput(StrictSerializer):
    provider = StrictCharField(max_length=100)
    apiKey = StrictCharField(source="api_key", max_length=8192, required=False, allow_blank=True, default="")
    baseUrl = StrictCharField(source="base_url", max_length=500, required=False, allow_blank=True, default="")


def probe_body(result: ProbeResult) -> dict[str, Any]:
    return {
        "valid": result.valid,
        "error": result.error,
        "latencyMs": result.latency_ms,
        "statusCode": result.status_code,
        "testedAt": serializers.DateTimeField().to_representation(result.tested_at),
    }
