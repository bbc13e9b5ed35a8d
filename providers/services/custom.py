"""Writes of custom provider nodes and custom models.

A node is a provider whose id is its `prefix`: its connections are ProviderConnection rows
with `provider = prefix`, its models route as `prefix/model`. So a prefix rename moves the
node's connections and custom models along, and is refused while an alias or a combo routes
to the old prefix (they would silently stop resolving).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from gateway.api.errors import InvalidInput
from gateway.api.fields import to_camel
from gateway.selectors import provider_references

from ..catalog import get_catalog
from ..models import ProviderConnection, ProviderModel, ProviderNode
from ..selectors import node_wire, provider_resolve
from .connections import base_url_normalize

NODE_EDITABLE_FIELDS = frozenset({"name", "prefix", "type", "api_type", "base_url", "chat_path", "models_path"})
PROVIDER_MODEL_EDITABLE_FIELDS = frozenset({"provider", "model_id", "model_name", "api_format", "supported_endpoints"})
PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
# Paths: a leading slash, then no whitespace, control characters or fragment.
PATH_RE = re.compile(r"^/[^\s#\x00-\x1f\x7f]{0,199}$")
MODEL_ID_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,200}$")


def _clean_prefix(value: str) -> str:
    prefix = value.strip()
    if not PREFIX_RE.match(prefix):
        raise InvalidInput(
            "prefix must be 1-50 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit",
            field="prefix",
        )
    if prefix.isdigit():
        raise InvalidInput("prefix cannot be only digits (numbers are node ids)", field="prefix")
    taken = get_catalog().resolve_provider(prefix)
    if taken is not None:
        raise InvalidInput(f"prefix {prefix!r} is taken by the catalog provider {taken.id}", field="prefix")
    return prefix


def _clean_path(value: str, *, field: str) -> str:
    value = value.strip()
    if value and not PATH_RE.match(value):
        raise InvalidInput(
            f"{to_camel(field)} must start with '/' and contain no spaces, e.g. /v1/chat/completions", field=field
        )
    return value


def node_validate(node: ProviderNode) -> None:
    """Normalise and check a node before it is saved; InvalidInput names the field."""
    node.name = node.name.strip()
    if not node.name:
        raise InvalidInput("name must not be empty", field="name")
    node.prefix = _clean_prefix(node.prefix)
    if ProviderNode.objects.filter(prefix=node.prefix).exclude(pk=node.pk).exists():
        raise InvalidInput(f"A provider node with prefix {node.prefix!r} already exists", field="prefix")
    if node.type not in dict(ProviderNode.TYPES):
        raise InvalidInput(f"type must be one of {', '.join(dict(ProviderNode.TYPES))}", field="type")
    if node.api_type not in dict(ProviderNode.API_TYPES):
        raise InvalidInput(f"apiType must be one of {', '.join(dict(ProviderNode.API_TYPES))}", field="api_type")
    if node.type == ProviderNode.TYPE_ANTHROPIC and node.api_type != ProviderNode.API_CHAT:
        raise InvalidInput("apiType must be 'chat' for an anthropic-compatible node", field="api_type")
    base_url = base_url_normalize(value=node.base_url)
    if not base_url:
        raise InvalidInput("baseUrl is required, e.g. https://llm.example.com/v1", field="base_url")
    # People paste the full endpoint; keep the prefix the format's path is appended to.
    default_path = node_wire(type_=node.type, api_type=node.api_type)[3]
    node.base_url = base_url.removesuffix(default_path) if base_url.endswith(default_path) else base_url
    node.chat_path = _clean_path(node.chat_path, field="chat_path")
    node.models_path = _clean_path(node.models_path, field="models_path")
    node.full_clean()


def node_create(
    *,
    name: str,
    prefix: str,
    base_url: str,
    type: str = ProviderNode.TYPE_OPENAI,
    api_type: str = ProviderNode.API_CHAT,
    chat_path: str = "",
    models_path: str = "",
) -> ProviderNode:
    node = ProviderNode(
        name=name,
        prefix=prefix,
        type=type,
        api_type=api_type,
        base_url=base_url,
        chat_path=chat_path,
        models_path=models_path,
    )
    node_validate(node)
    node.save()
    return node


def _refuse_if_referenced(prefix: str, action: str) -> None:
    references = provider_references(provider_id=prefix)
    if references:
        raise InvalidInput(
            f"Cannot {action} node {prefix!r}: {', '.join(references)} route to it; change those first",
            field="prefix",
        )


def node_update(*, node: ProviderNode, data: Mapping[str, Any]) -> ProviderNode:
    """Partial update; a new prefix carries the node's connections and custom models with it."""
    unknown = set(data) - NODE_EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} of a node", field=sorted(unknown)[0])
    old_prefix = ProviderNode.objects.filter(pk=node.pk).values_list("prefix", flat=True).first() or node.prefix
    for field, value in data.items():
        setattr(node, field, value)
    node_validate(node)
    with transaction.atomic():
        if node.prefix != old_prefix:
            _refuse_if_referenced(old_prefix, "rename")
            ProviderConnection.objects.filter(provider=old_prefix).update(provider=node.prefix)
            ProviderModel.objects.filter(provider=old_prefix).update(provider=node.prefix)
        node.save()
    return node


def node_delete(*, node: ProviderNode) -> None:
    """Deletes the node with its connections and custom models."""
    with transaction.atomic():
        _refuse_if_referenced(node.prefix, "delete")
        ProviderConnection.objects.filter(provider=node.prefix).delete()
        ProviderModel.objects.filter(provider=node.prefix).delete()
        node.delete()


def _clean_endpoints(value: Iterable[Any] | None) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise InvalidInput(
            f"supportedEndpoints must be a non-empty list of {', '.join(ProviderModel.ENDPOINTS)}",
            field="supported_endpoints",
        )
    endpoints: list[str] = []
    for item in value:
        if item not in ProviderModel.ENDPOINTS:
            raise InvalidInput(
                f"supportedEndpoints: unknown endpoint {item!r}; use {', '.join(ProviderModel.ENDPOINTS)}",
                field="supported_endpoints",
            )
        if item not in endpoints:
            endpoints.append(item)
    return endpoints


def provider_model_validate(row: ProviderModel) -> None:
    """Normalise and check a custom model: canonical provider id, id without spaces, known endpoints."""
    info = provider_resolve(name=row.provider)
    row.provider = info.id
    row.model_id = row.model_id.strip()
    if not MODEL_ID_RE.match(row.model_id):
        raise InvalidInput("modelId must be 1-200 characters without spaces", field="model_id")
    row.model_name = row.model_name.strip()
    if row.api_format not in dict(ProviderModel.API_FORMATS):
        raise InvalidInput(f"apiFormat must be one of {', '.join(dict(ProviderModel.API_FORMATS))}", field="api_format")
    if row.api_format == ProviderModel.FORMAT_RESPONSES and info.format not in {"openai", "responses"}:
        raise InvalidInput(
            f"apiFormat 'responses' needs an OpenAI-format provider; {info.id} speaks {info.format}",
            field="api_format",
        )
    row.supported_endpoints = _clean_endpoints(row.supported_endpoints)
    row.full_clean(validate_constraints=False)


def provider_model_set(
    *,
    provider: str,
    model_id: str,
    model_name: str | None = None,
    api_format: str | None = None,
    supported_endpoints: list[str] | None = None,
) -> tuple[ProviderModel, bool]:
    """Add a custom model, or update the one with this provider and id; (row, created).

    Fields left as None keep their stored value (or the default on creation).
    """
    info = provider_resolve(name=provider)
    row = ProviderModel.objects.filter(provider=info.id, model_id=model_id.strip()).first()
    created = row is None
    if row is None:
        row = ProviderModel(provider=info.id, model_id=model_id)
    for field, value in (
        ("model_name", model_name),
        ("api_format", api_format),
        ("supported_endpoints", supported_endpoints),
    ):
        if value is not None:
            setattr(row, field, value)
    provider_model_validate(row)
    row.save()
    return row, created


def provider_model_update(*, row: ProviderModel, data: Mapping[str, Any]) -> ProviderModel:
    """Edit one custom model, its provider and id included (the admin edits rows)."""
    unknown = set(data) - PROVIDER_MODEL_EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} of a custom model", field=sorted(unknown)[0])
    for field, value in data.items():
        setattr(row, field, value)
    provider_model_validate(row)
    if ProviderModel.objects.filter(provider=row.provider, model_id=row.model_id).exclude(pk=row.pk).exists():
        raise InvalidInput(f"The custom model {row.provider}/{row.model_id} already exists", field="model_id")
    row.save()
    return row


def provider_model_delete(*, row: ProviderModel) -> None:
    row.delete()
