"""/api/usage/history, /api/usage/logs and /api/usage/{connectionId}: aggregation by the
database, buckets in the operator's time zone, filters, keyset pagination, bad filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from providers.models import ProviderConnection
from tests.factories import ProviderConnectionFactory, UsageRecordFactory
from usage.models import UsageRecord

pytestmark = pytest.mark.django_db

DAY = {"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T00:00:00Z"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def day_of_usage() -> dict[str, int]:
    """Four requests on 2026-11-20 (UTC), one the day before."""
    c1, c2 = ProviderConnectionFactory.create(name="main"), ProviderConnectionFactory.create(provider="anthropic")
    common: dict[str, Any] = {"connection_id": c1.pk, "api_key_id": 1, "api_key_name": "web"}
    UsageRecordFactory.create(
        created_at=at("2026-11-20T10:05"), prompt_tokens=100, completion_tokens=20, cached_tokens=10,
        cost_usd=Decimal("0.001"), latency_ms=100, **common,
    )  # fmt: skip
    UsageRecordFactory.create(
        created_at=at("2026-11-20T10:40"), prompt_tokens=200, completion_tokens=40, cost_usd=Decimal("0.002"),
        latency_ms=300, **common,
    )  # fmt: skip
    claude: dict[str, Any] = {
        "provider": "anthropic", "model": "claude-sonnet-4-5", "connection_id": c2.pk, "api_key_id": 2,
        "api_key_name": "batch",
    }  # fmt: skip
    UsageRecordFactory.create(
        created_at=at("2026-11-20T11:10"), prompt_tokens=1000, completion_tokens=100, cached_tokens=500,
        reasoning_tokens=50, cost_usd=Decimal("0.01"), latency_ms=200, **claude,
    )  # fmt: skip
    UsageRecordFactory.create(
        created_at=at("2026-11-20T11:20"), status_code=502, prompt_tokens=0, completion_tokens=0,
        latency_ms=50, error="upstream failed", **claude,
    )  # fmt: skip
    UsageRecordFactory.create(created_at=at("2026-11-19T10:00"), cost_usd=Decimal("1"), **common)
    return {"c1": c1.pk, "c2": c2.pk}


def test_history_totals_series_and_breakdown(operator: APIClient, day_of_usage: dict[str, int]) -> None:
    response = operator.get("/api/usage/history", {**DAY, "bucket": "hour", "groupBy": "provider"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from"], body["to"], body["bucket"], body["groupBy"]) == (
        "2026-11-20T00:00:00Z",
        "2026-11-21T00:00:00Z",
        "hour",
        "provider",
    )
    assert body["totals"] == {
        "requests": 4,
        "errors": 1,
        "promptTokens": 1300,
        "completionTokens": 160,
        "cachedTokens": 510,
        "reasoningTokens": 50,
        "costUsd": 0.013,
        "avgLatencyMs": 200.0,  # successful requests only: (100 + 300 + 200) / 3
    }
    assert [(s["bucketStart"], s["requests"], s["errors"], s["costUsd"]) for s in body["series"]] == [
        ("2026-11-20T10:00:00Z", 2, 0, 0.003),
        ("2026-11-20T11:00:00Z", 2, 1, 0.01),
    ]
    assert [(b["key"], b["requests"], b["costUsd"]) for b in body["breakdown"]] == [
        ("anthropic", 2, 0.01),
        ("openai", 2, 0.003),
    ]


def test_breakdowns_by_model_key_and_connection(operator: APIClient, day_of_usage: dict[str, int]) -> None:
    def breakdown(group: str) -> list[tuple[Any, Any, int]]:
        body = operator.get("/api/usage/history", {**DAY, "groupBy": group}).json()
        return [(b["key"], b["name"], b["requests"]) for b in body["breakdown"]]

    assert breakdown("model") == [
        ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5", 2),
        ("openai/gpt-4o", "gpt-4o", 2),
    ]
    assert breakdown("key") == [(2, "batch", 2), (1, "web", 2)]
    c1, c2 = day_of_usage["c1"], day_of_usage["c2"]
    names = dict(ProviderConnection.objects.values_list("pk", "name"))
    assert breakdown("connection") == [(c2, names[c2], 2), (c1, "main", 2)]


def test_history_filters(operator: APIClient, day_of_usage: dict[str, int]) -> None:
    def totals(**filters: Any) -> dict[str, Any]:
        response = operator.get("/api/usage/history", {**DAY, **filters})
        assert response.status_code == 200, response.content
        return response.json()["totals"]

    assert totals(provider="openai")["requests"] == 2
    assert totals(model="claude-sonnet-4-5")["errors"] == 1
    assert totals(keyId=2)["costUsd"] == 0.01
    assert totals(connectionId=day_of_usage["c1"])["promptTokens"] == 300
    assert totals(provider="openai", keyId=2)["requests"] == 0
    # The default range is the last 24 hours: the fixture's rows are older.
    default = operator.get("/api/usage/history").json()
    assert default["totals"]["requests"] == 0 and default["totals"]["avgLatencyMs"] is None
    assert default["series"] == [] and default["bucket"] == "hour" and default["groupBy"] == "provider"
    # Empty parameters count as absent; a long range picks day buckets.
    week = operator.get("/api/usage/history", {"from": "2026-11-14", "to": "2026-11-21", "provider": ""}).json()
    assert week["bucket"] == "day" and week["totals"]["requests"] == 5


def test_day_buckets_in_the_operators_time_zone(operator: APIClient, settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Berlin"
    UsageRecordFactory.create(created_at=at("2026-11-20T22:30"))  # 23:30 in Berlin
    UsageRecordFactory.create(created_at=at("2026-11-20T23:30"))  # 00:30 on the 21st in Berlin
    body = operator.get("/api/usage/history", {"from": "2026-11-19", "to": "2026-11-23", "bucket": "day"}).json()
    assert body["from"] == "2026-11-19T00:00:00+01:00"
    assert [(s["bucketStart"], s["requests"]) for s in body["series"]] == [
        ("2026-11-20T00:00:00+01:00", 1),
        ("2026-11-21T00:00:00+01:00", 1),
    ]


def test_costs_add_up_exactly(operator: APIClient) -> None:
    now = timezone.now()
    for _ in range(3):
        UsageRecordFactory.create(created_at=now - timedelta(minutes=1), cost_usd=Decimal("0.00000001"))
    UsageRecordFactory.create(created_at=now - timedelta(minutes=1), cost_usd=Decimal("123456.12345678"))
    assert operator.get("/api/usage/history").json()["totals"]["costUsd"] == 123456.12345681


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-11-21", "to": "2026-11-20"}, "from"),
        ({"groupBy": "weekly"}, "groupBy"),
        ({"bucket": "minute"}, "bucket"),
        ({"keyId": "abc"}, "keyId"),
        ({"connectionId": "0"}, "connectionId"),
        ({"from": "2025-01-01", "to": "2026-01-01", "bucket": "hour"}, "bucket"),
    ],
)
def test_history_rejects_bad_filters(operator: APIClient, params: dict[str, str], field: str) -> None:
    response = operator.get("/api/usage/history", params)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert [d["field"] for d in error["details"]] == [field]


def test_unencoded_plus_in_an_offset_is_understood(operator: APIClient, day_of_usage: dict[str, int]) -> None:
    # "+01:00" sent without URL-encoding arrives as " 01:00".
    response = operator.get("/api/usage/history?from=2026-11-20T01:00:00 01:00&to=2026-11-21T01:00:00 01:00")
    assert response.status_code == 200, response.content
    assert response.json()["totals"]["requests"] == 4


def test_logs_newest_first_with_keyset_pagination(operator: APIClient) -> None:
    rows = [UsageRecordFactory.create(request_id=f"r{n}") for n in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = operator.get("/api/usage/logs", params).json()
        seen += [log["requestId"] for log in body["logs"]]
        cursor = body["nextCursor"]
        pages += 1
        if cursor is None:
            break
        # Rows written between two pages do not shift the next page.
        UsageRecordFactory.create(request_id=f"late{pages}")
    assert seen == [f"r{n}" for n in reversed(range(7))] and pages == 3
    first = operator.get("/api/usage/logs", {"limit": 1}).json()["logs"][0]
    assert first["requestId"] == "late2" and rows[0].pk < first["id"]


def test_log_shape(operator: APIClient) -> None:
    row = UsageRecordFactory.create(
        api_key_id=5, api_key_name="web", connection_id=9, cost_usd=Decimal("0.0123"), ttfb_ms=12.5, stream=True,
        cached_tokens=3, reasoning_tokens=4, client_format="openai",
    )  # fmt: skip
    body = operator.get("/api/usage/logs").json()
    assert body["nextCursor"] is None
    log = body["logs"][0]
    assert log == {
        "id": row.pk,
        "createdAt": log["createdAt"],
        "requestId": row.request_id,
        "endpoint": "/v1/chat/completions",
        "clientFormat": "openai",
        "keyId": 5,
        "keyName": "web",
        "provider": "openai",
        "model": "gpt-4o",
        "connectionId": 9,
        "statusCode": 200,
        "stream": True,
        "promptTokens": 100,
        "completionTokens": 20,
        "cachedTokens": 3,
        "cacheCreationTokens": 0,
        "reasoningTokens": 4,
        "images": 0,
        "audioSeconds": 0.0,
        "costUsd": 0.0123,
        "latencyMs": 120.0,
        "ttfbMs": 12.5,
        "error": "",
    }
    assert datetime.fromisoformat(log["createdAt"].replace("Z", "+00:00")) == row.created_at


def test_log_filters(operator: APIClient, day_of_usage: dict[str, int]) -> None:
    UsageRecordFactory.create(created_at=at("2026-11-20T12:00"), status_code=429)

    def ids(**params: Any) -> list[str]:
        response = operator.get("/api/usage/logs", params)
        assert response.status_code == 200, response.content
        return [log["createdAt"][11:16] for log in response.json()["logs"]]

    assert ids(**DAY) == ["12:00", "11:20", "11:10", "10:40", "10:05"]
    assert ids(status="error") == ["12:00", "11:20"]
    assert ids(status="5xx") == ["11:20"]
    assert ids(status="429") == ["12:00"]
    assert ids(status="success", provider="anthropic") == ["11:10"]
    assert ids(keyId=1, to="2026-11-20T10:30:00Z") == ["10:00", "10:05"]  # by id: the 19th's was written last


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "aWQ6LTE"}, "cursor"),  # "id:-1"
        ({"status": "teapot"}, "status"),
        ({"status": "999"}, "status"),
        ({"from": "2026-11-20T25:00:00Z"}, "from"),
    ],
)
def test_logs_reject_bad_filters(operator: APIClient, params: dict[str, str], field: str) -> None:
    response = operator.get("/api/usage/logs", params)
    assert response.status_code == 400, response.content
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


def test_connection_usage(operator: APIClient) -> None:
    connection = ProviderConnectionFactory.create()
    now = timezone.now()
    UsageRecordFactory.create(connection_id=connection.pk, created_at=now - timedelta(hours=2), cost_usd=Decimal("1"))
    UsageRecordFactory.create(connection_id=connection.pk, created_at=now - timedelta(hours=30))
    UsageRecordFactory.create(connection_id=connection.pk + 1, created_at=now - timedelta(hours=1))
    response = operator.get(f"/api/usage/{connection.pk}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["connectionId"] == connection.pk
    assert body["totals"]["requests"] == 1 and body["totals"]["costUsd"] == 1.0
    assert len(body["series"]) == 1 and "breakdown" not in body
    longer = operator.get(f"/api/usage/{connection.pk}", {"from": (now - timedelta(days=2)).isoformat()})
    assert longer.json()["totals"]["requests"] == 2
    too_long = operator.get(f"/api/usage/{connection.pk}", {"from": (now - timedelta(days=60)).isoformat()})
    assert too_long.status_code == 400 and too_long.json()["error"]["details"][0]["field"] == "bucket"


def test_connection_usage_outlives_the_connection(operator: APIClient) -> None:
    connection = ProviderConnectionFactory.create()
    UsageRecordFactory.create(connection_id=connection.pk)
    pk = connection.pk
    connection.delete()
    assert operator.get(f"/api/usage/{pk}").json()["totals"]["requests"] == 1
    missing = operator.get(f"/api/usage/{pk + 100}")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"


def test_operators_only(inference_client: APIClient) -> None:
    for path in ("/api/usage/history", "/api/usage/logs", "/api/usage/1"):
        assert APIClient().get(path).status_code == 401
        assert inference_client.get(path).status_code == 403


def test_history_is_aggregated_by_the_database(operator: APIClient, django_assert_max_num_queries: Any) -> None:
    UsageRecord.objects.bulk_create(
        [
            UsageRecord(created_at=timezone.now() - timedelta(minutes=n), request_id=f"b{n}", endpoint="e",
                        provider=f"p{n % 5}", model=f"m{n % 7}", status_code=200)
            for n in range(300)
        ]
    )  # fmt: skip
    with django_assert_max_num_queries(9):  # 8 + where the records begin (the roll-ups' boundary)
        body = operator.get("/api/usage/history", {"groupBy": "model"}).json()
    assert body["totals"]["requests"] == 300
    assert sum(b["requests"] for b in body["breakdown"]) == 300 and len(body["breakdown"]) == 35
