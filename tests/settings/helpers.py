"""Shared setup of the settings end-to-end tests: connections of every provider wire format
to the fake provider, and the settings row."""

from __future__ import annotations

from typing import Any

from gateway.models import GatewaySettings
from providers.models import ProviderConnection
from tests.fakes.provider import FakeProvider

# provider id -> a reasoning model of it (the catalog flags them), by wire format
MODELS = {
    "openai": "openai/gpt-5",
    "anthropic": "anthropic/claude-sonnet-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "responses": "openai-responses/gpt-5",
}


def connect_all(fake: FakeProvider) -> None:
    """One connection per provider wire format, all to the fake provider."""
    for provider, base_url in (
        ("openai", fake.openai_base_url),
        ("anthropic", fake.openai_base_url),
        ("gemini", fake.url + "/v1beta"),
        ("openai-responses", fake.openai_base_url),
    ):
        conn = ProviderConnection(provider=provider, name=provider, priority=1, base_url=base_url)
        conn.set_api_key("sk-upstream")
        conn.save()


def configure(**fields: Any) -> GatewaySettings:
    """Save settings the way the admin does (signals move the config version)."""
    row, _ = GatewaySettings.objects.get_or_create(pk=1)
    for name, value in fields.items():
        setattr(row, name, value)
    row.save()
    return row


def last_body(fake: FakeProvider) -> dict[str, Any]:
    sent = [r for r in fake.requests if r.method == "POST"]
    assert sent, "the fake provider received no request"
    body = sent[-1].json
    assert isinstance(body, dict)
    return body
