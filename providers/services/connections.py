"""Writes of provider connections (credentials) and live checks against providers.

Snapshot invalidation happens in model signals (providers/signals.py), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone

from gateway.api.errors import InvalidInput

from ..catalog import ProviderInfo
from ..crypto import SecretDecryptionError
from ..models import ProviderConnection
from ..selectors import provider_resolve, upstream_error_message, upstream_models_request

CONNECTION_EDITABLE_FIELDS = frozenset(
    {"provider", "name", "api_key", "base_url", "priority", "is_active", "default_model", "provider_specific_data"}
)
TEST_OK = "ok"
TEST_ERROR = "error"


def base_url_normalize(*, value: str) -> str:
    """An http(s) URL prefix without trailing slash; single-label hosts (`http://ollama:11434`) are fine."""
    value = value.strip()
    if not value:
        return ""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        parts = None
    bad_chars = any(ch.isspace() or ord(ch) < 32 for ch in value)
    if bad_chars or parts is None or parts.scheme not in {"http", "https"} or not parts.hostname or parts.fragment:
        raise InvalidInput(
            f"baseUrl must be an http:// or https:// URL such as https://api.openai.com/v1, got {value[:100]!r}",
            field="base_url",
        )
    return value.rstrip("/")


def _connection_validate(connection: ProviderConnection, *, provider: ProviderInfo) -> None:
    connection.name = connection.name.strip()
    connection.base_url = base_url_normalize(value=connection.base_url)
    if not isinstance(connection.provider_specific_data, dict):
        raise InvalidInput("providerSpecificData must be a JSON object", field="provider_specific_data")
    if not connection.api_key_encrypted and provider.auth != "none":
        raise InvalidInput(f"apiKey is required for provider {provider.id}", field="api_key")
    connection.full_clean()


def connection_create(
    *,
    provider: str,
    name: str,
    api_key: str = "",
    base_url: str = "",
    priority: int = 1,
    is_active: bool = True,
    default_model: str = "",
    provider_specific_data: dict[str, Any] | None = None,
) -> ProviderConnection:
    info = provider_resolve(name=provider)
    connection = ProviderConnection(
        provider=info.id,
        name=name,
        base_url=base_url,
        priority=priority,
        is_active=is_active,
        default_model=default_model,
        provider_specific_data={} if provider_specific_data is None else provider_specific_data,
    )
    connection.set_api_key(api_key.strip())
    _connection_validate(connection, provider=info)
    connection.save()
    return connection


def connection_update(*, connection: ProviderConnection, data: Mapping[str, Any]) -> ProviderConnection:
    """Partial update. An empty or absent `api_key` keeps the stored key."""
    unknown = set(data) - CONNECTION_EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} of a connection", field=sorted(unknown)[0])
    values = dict(data)
    info = provider_resolve(name=values.pop("provider", connection.provider))
    connection.provider = info.id
    api_key = (values.pop("api_key", "") or "").strip()
    if api_key:
        connection.set_api_key(api_key)
    for field, value in values.items():
        setattr(connection, field, value)
    _connection_validate(connection, provider=info)
    connection.save()
    return connection


def connection_delete(*, connection: ProviderConnection) -> None:
    connection.delete()


@dataclass(frozen=True)
class ProbeResult:
    valid: bool
    error: str | None
    latency_ms: float | None
    status_code: int | None
    tested_at: datetime


def _probe(*, provider: ProviderInfo, api_key: str, base_url: str) -> ProbeResult:
    answer = upstream_models_request(provider=provider, api_key=api_key, base_url=base_url)
    return ProbeResult(
        valid=answer.ok,
        error=None if answer.ok else upstream_error_message(answer, api_key=api_key),
        latency_ms=answer.latency_ms,
        status_code=answer.status,
        tested_at=timezone.now(),
    )


def connection_test(*, connection: ProviderConnection) -> ProbeResult:
    """A live check of the connection's credential; the outcome is stored on the connection."""
    provider = provider_resolve(name=connection.provider)
    try:
        result = _probe(provider=provider, api_key=connection.api_key, base_url=connection.base_url)
    except SecretDecryptionError as exc:
        result = ProbeResult(False, str(exc), None, None, timezone.now())
    connection.test_status = TEST_OK if result.valid else TEST_ERROR
    connection.last_error = result.error or ""
    connection.last_tested_at = result.tested_at
    # A queryset update: the outcome is not routing configuration, so no snapshot rebuild.
    ProviderConnection.objects.filter(pk=connection.pk).update(
        test_status=connection.test_status, last_error=connection.last_error, last_tested_at=connection.last_tested_at
    )
    return result


def provider_validate(*, provider: str, api_key: str, base_url: str = "") -> ProbeResult:
    """Would this key work? Nothing is stored."""
    info = provider_resolve(name=provider)
    return _probe(provider=info, api_key=api_key.strip(), base_url=base_url_normalize(value=base_url))
