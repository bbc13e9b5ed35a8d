"""Through the running gateway: each request's record carries its cost and the key's name,
and no stored usage row holds a provider or client key, even when the provider echoes them."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from django.db import connection

from tests.e2e.test_openai_chat import client, make_connection, make_key, records
from tests.factories import ApiKeyFactory, PriceOverrideFactory
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway
from usage.models import UsageRecord

pytestmark = pytest.mark.e2e


def stored_usage_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {UsageRecord._meta.db_table}")
        return "\n".join(repr(row) for row in cursor.fetchall())


def test_records_carry_cost_and_key_name(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    PriceOverrideFactory.create(
        provider="openai", model="gpt-4o-mini", input=Decimal("1"), output=Decimal("2"), cached=Decimal("0.5")
    )
    make_connection(fake_provider.openai_base_url)
    _, key = ApiKeyFactory.create_with_key(name="checkout-service")
    fake_provider.behave(Behaviour(reply="ok", prompt_tokens=11, completion_tokens=3, cached_tokens=4))
    client(gateway, key).chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
    )
    [rec] = records(gateway)
    # 7 fresh x 1 + 4 cached x 0.5 + 3 x 2 = 15 USD per 1M tokens
    assert rec.cost_usd == Decimal("0.000015")
    assert rec.api_key_name == "checkout-service"


def test_no_key_reaches_a_stored_usage_row(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    upstream = "sk-upstream-SECRET-0123456789abcdef"
    make_connection(fake_provider.openai_base_url, api_key=upstream)
    key = make_key()
    echo = f"Incorrect API key provided: {upstream}. You sent Authorization: Bearer {key}"
    fake_provider.behave(Behaviour(status=401, error_message=echo), times=1)
    with pytest.raises(openai.APIStatusError):
        client(gateway, key).chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.AuthenticationError):
        client(gateway, key + "-wrong").chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
        )
    rows = records(gateway)
    assert len(rows) == 2 and all(r.status_code >= 400 for r in rows)
    assert "Incorrect API key provided: [redacted]" in rows[0].error
    text = stored_usage_text()
    assert upstream not in text and key not in text
