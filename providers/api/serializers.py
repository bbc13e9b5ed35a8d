"""JSON shapes of the provider endpoints: connections (the key is write-only), custom nodes,
custom models and the catalog (camelCase on the wire)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gateway.api.fields import StrictBooleanField, StrictCharField, StrictIntegerField, StrictSerializer
from providers.catalog import Catalog, ModelInfo, ProviderInfo
from providers.models import ProviderModel, ProviderNode
from providers.services import ProbeResult


class ProviderRefField(StrictCharField):
    """A provider id, alias or node prefix (a string), or a node's numeric id."""

    default_error_messages = {"invalid": "Must be a string (provider id, alias or node prefix) or a node id."}

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, int) and not isinstance(data, bool) and data > 0:
            data = str(data)
        return super().to_internal_value(data)


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

    provider = ProviderRefField(max_length=100)
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


class NodeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    type = serializers.CharField()
    apiType = serializers.CharField(source="api_type")
    baseUrl = serializers.CharField(source="base_url")
    chatPath = serializers.CharField(source="chat_path")
    modelsPath = serializers.CharField(source="models_path")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")


class NodeInput(StrictSerializer):
    """Create, or (partial=True) update, a node. Output-only fields a client echoes back are ignored."""

    ignored_fields = frozenset({"id", "createdAt", "updatedAt"})

    name = StrictCharField(max_length=200)
    prefix = StrictCharField(max_length=50)
    type = serializers.ChoiceField(choices=[t for t, _ in ProviderNode.TYPES], required=False)
    apiType = serializers.ChoiceField(source="api_type", choices=[t for t, _ in ProviderNode.API_TYPES], required=False)
    baseUrl = StrictCharField(source="base_url", max_length=500)
    chatPath = StrictCharField(source="chat_path", max_length=200, required=False, allow_blank=True)
    modelsPath = StrictCharField(source="models_path", max_length=200, required=False, allow_blank=True)


class ProviderModelOutput(serializers.Serializer):
    id = serializers.IntegerField()
    provider = serializers.CharField()
    modelId = serializers.CharField(source="model_id")
    modelName = serializers.CharField(source="model_name")
    apiFormat = serializers.CharField(source="api_format")
    supportedEndpoints = serializers.ListField(source="supported_endpoints", child=serializers.CharField())
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")


class ProviderModelInput(StrictSerializer):
    ignored_fields = frozenset({"id", "createdAt", "updatedAt"})

    provider = ProviderRefField(max_length=100)
    modelId = StrictCharField(source="model_id", max_length=200)
    modelName = StrictCharField(source="model_name", max_length=200, required=False, allow_blank=True)
    apiFormat = serializers.ChoiceField(
        source="api_format", choices=[f for f, _ in ProviderModel.API_FORMATS], required=False
    )
    supportedEndpoints = serializers.ListField(
        source="supported_endpoints", child=StrictCharField(max_length=20), max_length=10, required=False
    )


def _model_body(model: ModelInfo) -> dict[str, Any]:
    body: dict[str, Any] = {"id": model.id, "type": model.type}
    if model.name:
        body["name"] = model.name
    if model.context_length:
        body["contextLength"] = model.context_length
    if model.dimensions:
        body["dimensions"] = model.dimensions
    if model.price:
        body["price"] = dict(model.price)
    body["custom"] = model.custom
    if model.custom:
        body["apiFormat"] = model.api_format
        body["supportedEndpoints"] = list(model.endpoints)
    return body


def _provider_body(provider: ProviderInfo, model_type: str | None) -> dict[str, Any]:
    return {
        "name": provider.name,
        "format": provider.format,
        "aliases": list(provider.aliases),
        "node": provider.is_node,
        "models": [_model_body(m) for m in provider.models if model_type is None or m.type == model_type],
    }


def catalog_body(catalog: Catalog, *, model_type: str | None = None) -> dict[str, Any]:
    return {"catalog": {pid: _provider_body(p, model_type) for pid, p in catalog.providers.items()}}
