"""Budgets: the management API (validation, spent/remaining/warning) and enforcement through
the running gateway with the openai SDK (429 naming the budget, Retry-After until the reset,
spend that survives a forgotten counter)."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any

import openai
import pytest
from django.conf import settings
from rest_framework.test import APIClient

from gateway.budget_clock import current_period
from tests.e2e.test_openai_chat import client, make_connection
from tests.factories import ApiKeyFactory, PriceOverrideFactory, UsageRecordFactory
from tests.fakes.provider import Behaviour, FakeProvider
from tests.gateway.test_key_limits import fresh_counters  # noqa: F401 (autouse)
from tests.live_server import LiveGateway
from usage.models import AuditEntry, Budget

HI: list[Any] = [{"role": "user", "content": "hi"}]


def budgets(operator: APIClient, **query: Any) -> list[dict[str, Any]]:
    resp = operator.get("/api/usage/budget", query)
    assert resp.status_code == 200, resp.content
    return list(resp.json()["budgets"])


@pytest.mark.django_db
def test_create_replace_list_and_delete(operator: APIClient) -> None:
    key = ApiKeyFactory.create(name="checkout")
    resp = operator.post("/api/usage/budget", {"keyId": key.pk, "limit": 5, "period": "daily"}, format="json")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["keyId"] == key.pk and body["keyName"] == "checkout"
    assert (body["limit"], body["period"], body["warningThreshold"]) == (5.0, "daily", 0.8)
    assert (body["spent"], body["remaining"], body["warning"]) == (0.0, 5.0, False)
    resets = datetime.fromisoformat(body["resetsAt"])
    assert resets == current_period("daily", settings.BUDGET_TIMEZONE).end

    # One budget per key: a second POST replaces it.
    resp = operator.post(
        "/api/usage/budget",
        {"keyId": key.pk, "limit": 20.5, "period": "monthly", "warningThreshold": 0.5},
        format="json",
    )
    assert resp.status_code == 200
    assert Budget.objects.count() == 1
    [listed] = budgets(operator)
    assert (listed["limit"], listed["period"], listed["warningThreshold"]) == (20.5, "monthly", 0.5)
    assert budgets(operator, keyId=key.pk) == [listed]
    assert budgets(operator, keyId=key.pk + 1000) == []
    assert AuditEntry.objects.filter(target_type="usage.Budget").count() == 2

    assert operator.delete(f"/api/usage/budget?keyId={key.pk}").status_code == 200
    assert budgets(operator) == []
    assert operator.delete(f"/api/usage/budget?keyId={key.pk}").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit": -1, "period": "daily"}, "limit"),
        ({"limit": "5", "period": "daily"}, "limit"),
        ({"limit": 5, "period": "hourly"}, "period"),
        ({"limit": 5, "period": "daily", "warningThreshold": 0}, "warningThreshold"),
        ({"limit": 5, "period": "daily", "warningThreshold": 1.5}, "warningThreshold"),
        ({"limit": 5, "period": "daily", "extra": 1}, "extra"),
        ({"period": "daily"}, "limit"),
    ],
)
def test_bad_values_are_400_naming_the_field(operator: APIClient, body: dict[str, Any], field: str) -> None:
    key = ApiKeyFactory.create()
    resp = operator.post("/api/usage/budget", {"keyId": key.pk, **body}, format="json")
    assert resp.status_code == 400, resp.content
    assert field in str(resp.json())
    assert not Budget.objects.exists()


@pytest.mark.django_db
def test_unknown_key_is_404_and_delete_needs_key_id(operator: APIClient) -> None:
    resp = operator.post("/api/usage/budget", {"keyId": 999999, "limit": 5, "period": "daily"}, format="json")
    assert resp.status_code == 404
    assert operator.delete("/api/usage/budget").status_code == 400
    assert operator.get("/api/usage/budget?keyId=abc").status_code == 400


@pytest.mark.django_db
def test_inference_keys_may_not_manage_budgets(inference_client: APIClient) -> None:
    assert inference_client.get("/api/usage/budget").status_code == 403


@pytest.mark.django_db
def test_periods_follow_the_operator_time_zone(operator: APIClient, settings: Any) -> None:
    settings.BUDGET_TIMEZONE = "Asia/Tokyo"
    key = ApiKeyFactory.create()
    body = operator.post("/api/usage/budget", {"keyId": key.pk, "limit": 1, "period": "monthly"}, format="json").json()
    resets = datetime.fromisoformat(body["resetsAt"])
    assert body["resetsAt"].endswith("+09:00")
    assert (resets.day, resets.hour, resets.minute) == (1, 0, 0)  # midnight of the 1st, Tokyo time


def test_budget_timezone_must_be_a_real_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    from omniroute_site.env import ConfigError, env_zone

    monkeypatch.setenv("BUDGET_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ConfigError, match="BUDGET_TIMEZONE"):
        env_zone("BUDGET_TIMEZONE", "UTC")
    monkeypatch.setenv("BUDGET_TIMEZONE", "")
    assert env_zone("BUDGET_TIMEZONE", "Europe/Berlin") == "Europe/Berlin"


@pytest.mark.django_db
def test_spent_before_the_first_request_comes_from_the_records(operator: APIClient) -> None:
    key = ApiKeyFactory.create()
    period = current_period("weekly", settings.BUDGET_TIMEZONE)
    UsageRecordFactory.create(api_key_id=key.pk, cost_usd=Decimal("3.5"), created_at=period.start)
    UsageRecordFactory.create(api_key_id=key.pk, cost_usd=Decimal("1"), created_at=period.end)  # next period
    UsageRecordFactory.create(api_key_id=key.pk + 1, cost_usd=Decimal("7"), created_at=period.start)  # another key
    operator.post("/api/usage/budget", {"keyId": key.pk, "limit": 4, "period": "weekly"}, format="json")
    [status] = budgets(operator)
    assert (status["spent"], status["remaining"], status["warning"]) == (3.5, 0.5, True)


def wait_for_spent(operator: APIClient, key_id: int, at_least: float) -> dict[str, Any]:
    """The budget status once the gateway has counted what finished (it counts after the response)."""
    deadline = time.monotonic() + 10
    while True:
        [status] = budgets(operator, keyId=key_id)
        if status["spent"] >= at_least or time.monotonic() > deadline:
            return status
        time.sleep(0.02)


def test_budget_exceeded_is_429_with_retry_after(
    gateway: LiveGateway, fake_provider: FakeProvider, operator: APIClient
) -> None:
    # 1000 prompt + 1000 completion tokens at 1 and 4 USD per 1M = 0.005 USD a request.
    PriceOverrideFactory.create(provider="openai", model="gpt-4o", input=Decimal(1), output=Decimal(4))
    make_connection(fake_provider.openai_base_url)
    key, plain = ApiKeyFactory.create_with_key(name="batch-job")
    operator.post("/api/usage/budget", {"keyId": key.pk, "limit": 0.012, "period": "daily"}, format="json")
    fake_provider.behave(Behaviour(prompt_tokens=1000, completion_tokens=1000))
    sdk = client(gateway, plain)

    sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    status = wait_for_spent(operator, key.pk, 0.005)
    assert (status["spent"], status["warning"]) == (0.005, False)
    sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    status = wait_for_spent(operator, key.pk, 0.01)
    assert (status["spent"], status["remaining"], status["warning"]) == (0.01, 0.002, True)
    # Under the limit still: a third request is let through, and overspends by its own cost.
    sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    assert wait_for_spent(operator, key.pk, 0.015)["remaining"] == 0

    with pytest.raises(openai.RateLimitError) as caught:
        sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    err = caught.value
    message = err.body["message"]  # type: ignore[index]
    assert "'batch-job'" in message and "daily budget of 0.012 USD" in message and "spent 0.015 USD" in message
    assert err.body["code"] == "budget_exceeded"  # type: ignore[index]
    period = current_period("daily", settings.BUDGET_TIMEZONE)
    retry_after = int(err.response.headers["retry-after"])
    assert 0 < period.end_ts - time.time() <= retry_after <= period.end_ts - time.time() + 2
    assert err.response.headers["x-omniroute-budget-resets-at"] == period.end.isoformat()
    assert len(fake_provider.requests) == 3  # refused before routing: nothing reached the provider

    # Raising the limit lets the key through again (the snapshot carries budgets).
    operator.post("/api/usage/budget", {"keyId": key.pk, "limit": 1, "period": "daily"}, format="json")
    deadline = time.monotonic() + 5
    while True:
        try:
            sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_spend_survives_a_forgotten_counter(
    gateway: LiveGateway, fake_provider: FakeProvider, operator: APIClient
) -> None:
    """A restart (or an emptied Redis) starts the counter from the period's usage records."""
    make_connection(fake_provider.openai_base_url)
    key, plain = ApiKeyFactory.create_with_key(name="nightly")
    period = current_period("monthly", settings.BUDGET_TIMEZONE)
    UsageRecordFactory.create(api_key_id=key.pk, cost_usd=Decimal("2"), created_at=period.start)
    operator.post("/api/usage/budget", {"keyId": key.pk, "limit": 2, "period": "monthly"}, format="json")
    with pytest.raises(openai.RateLimitError, match="monthly budget of 2 USD"):
        client(gateway, plain).chat.completions.create(model="openai/gpt-4o", messages=HI)
    assert fake_provider.requests == []


def test_keys_without_budget_are_not_limited(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    _, plain = ApiKeyFactory.create_with_key()
    other, _ = ApiKeyFactory.create_with_key()
    Budget.objects.create(api_key=other, limit_usd=Decimal(0), period="daily")
    for _ in range(3):
        client(gateway, plain).chat.completions.create(model="openai/gpt-4o", messages=HI)
    assert len(fake_provider.requests) == 3
