"""/api/usage/history past the records' retention: the whole hours before the oldest record
come from the hourly roll-ups, the rest from the records; no hour counts twice, filters
apply to both parts, rolledUpBefore says where the roll-ups end, and the roll-ups' mean
latency is an estimate from their histograms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIClient

from gateway.models import ApiKey
from gateway.telemetry.histogram import BOUNDS, MIDPOINTS, bucket_of
from providers.models import ProviderConnection
from tests.factories import ApiKeyFactory, ProviderConnectionFactory, UsageRecordFactory
from usage.models import UsageRecord, UsageRollup
from usage.selectors import UsageFilters, usage_history
from usage.services import usage_purge, usage_rollup

pytestmark = pytest.mark.django_db

GROUPS = ("provider", "model", "key", "connection")
DAY = datetime(2026, 1, 10, tzinfo=UTC)


def at(hour: int, minute: int = 0) -> datetime:
    """A moment of DAY (UTC)."""
    return DAY + timedelta(hours=hour, minutes=minute)


def iso(moment: datetime) -> str:
    return serializers.DateTimeField().to_representation(moment)


def purge_before(moment: datetime) -> None:
    """What retention does when `moment` is USAGE_RETENTION_DAYS ago."""
    UsageRecord.objects.filter(created_at__lt=moment).delete()


def history(client: APIClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/usage/history", params)
    assert response.status_code == 200, response.content
    return response.json()


def without_latency(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in {"avgLatencyMs", "name"}}


def counted(body: dict[str, Any]) -> dict[str, Any]:
    """The parts of a history that must not change when records become roll-ups."""
    return {
        "totals": without_latency(body["totals"]),
        "series": [without_latency(row) for row in body["series"]],
        "breakdown": [without_latency(row) for row in body["breakdown"]],
    }


def test_history_outlives_the_records_retention(operator: APIClient) -> None:
    now = timezone.now()
    main, other = ProviderConnectionFactory.create(name="main"), ProviderConnectionFactory.create(name="other")
    web, batch, renamed = (ApiKeyFactory.create(name=name) for name in ("web", "batch", "old-name"))

    def record(days: float, key: ApiKey, connection: ProviderConnection, **values: Any) -> None:
        UsageRecordFactory.create(
            created_at=now - timedelta(days=days), api_key_id=key.pk, api_key_name=key.name,
            connection_id=connection.pk, **values,
        )  # fmt: skip

    record(120, web, main, cost_usd=Decimal("0.001"), latency_ms=100, cached_tokens=10)
    record(119.9, web, main, status_code=502, latency_ms=40, prompt_tokens=0, completion_tokens=0)
    claude = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    record(110, batch, other, cost_usd=Decimal("0.01"), latency_ms=300, reasoning_tokens=50, **claude)
    record(100, renamed, main, model="gpt-4o-mini", cost_usd=Decimal("0.0005"), latency_ms=200)
    record(80, web, main, cost_usd=Decimal("0.002"), latency_ms=150)
    record(1, web, other, cost_usd=Decimal("0.003"), latency_ms=250, **claude)
    usage_rollup(now=now)
    params = {"from": (now - timedelta(days=130)).isoformat(), "to": now.isoformat(), "bucket": "day"}

    before = {group: history(operator, **params, groupBy=group) for group in GROUPS}
    assert before["provider"]["rolledUpBefore"] is None  # every hour still has its records
    assert before["provider"]["totals"]["requests"] == 6
    assert before["provider"]["totals"]["avgLatencyMs"] == 200.0

    assert usage_purge(older_than_days=90) == 4
    batch_id = batch.pk
    batch.delete()
    ApiKey.objects.filter(pk=renamed.pk).update(name="new-name")
    after = {group: history(operator, **params, groupBy=group) for group in GROUPS}

    oldest_kept = (now - timedelta(days=80)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    for group in GROUPS:
        assert counted(after[group]) == counted(before[group]), group
        assert after[group]["rolledUpBefore"] == iso(oldest_kept)
    assert after["provider"]["totals"]["avgLatencyMs"] == 200.0  # roll-ups keep the latency sum
    names = [(row["key"], row["name"]) for row in after["key"]["breakdown"]]
    # Recorded name when records are left, else the key's current name; null once deleted.
    assert names == [(batch_id, None), (web.pk, "web"), (renamed.pk, "new-name")]


def test_an_hour_that_has_records_counts_once(operator: APIClient) -> None:
    UsageRecordFactory.create(created_at=at(9, 30), cost_usd=Decimal("0.00000001"))
    UsageRecordFactory.create(created_at=at(10, 10), cost_usd=Decimal("0.00000001"))
    UsageRecordFactory.create(created_at=at(10, 40), cost_usd=Decimal("0.00000001"))
    UsageRecordFactory.create(created_at=at(11, 20), cost_usd=Decimal("123456.12345678"))
    usage_rollup(now=at(13))
    assert set(UsageRollup.objects.values_list("hour", flat=True)) == {at(9), at(10), at(11)}
    purge_before(at(10, 30))  # retention cuts through the 10 o'clock hour

    body = history(operator, **{"from": iso(at(0)), "to": iso(at(23)), "bucket": "hour"})
    # 09:00 from its roll-up; 10:00 and 11:00 from the records only: their roll-ups are not
    # added (the purged 10:10 request is not in the answer: its hour is read from records).
    assert [(row["bucketStart"], row["requests"]) for row in body["series"]] == [
        (iso(at(9)), 1),
        (iso(at(10)), 1),
        (iso(at(11)), 1),
    ]
    assert body["totals"]["requests"] == 3 and body["rolledUpBefore"] == iso(at(10))
    assert body["totals"]["costUsd"] == 123456.1234568  # Decimal-exact across the two parts


def test_only_whole_hours_of_the_range_come_from_rollups(operator: APIClient) -> None:
    for moment in (at(8, 10), at(8, 50), at(9, 30), at(11, 20)):
        UsageRecordFactory.create(created_at=moment)
    usage_rollup(now=at(13))
    purge_before(at(11))

    def requests(start: datetime, end: datetime) -> tuple[int, str | None]:
        body = history(operator, **{"from": iso(start), "to": iso(end)})
        return body["totals"]["requests"], body["rolledUpBefore"]

    assert requests(at(8), at(12)) == (4, iso(at(11)))
    # `from` inside a purged hour: that hour is left out (only part of it is in the range).
    assert requests(at(8, 30), at(12)) == (2, iso(at(11)))
    # `to` inside a purged hour: likewise; the roll-ups end at `to`.
    assert requests(at(8), at(9, 45)) == (2, iso(at(9, 45)))
    # No whole purged hour in the range: nothing from roll-ups.
    assert requests(at(8, 30), at(9, 45)) == (0, None)
    assert requests(at(11), at(12)) == (1, None)


def test_filters_apply_to_the_rolled_up_part(operator: APIClient) -> None:
    c1, c2 = ProviderConnectionFactory.create(), ProviderConnectionFactory.create()
    rows: list[dict[str, Any]] = [
        {"provider": "openai", "model": "gpt-4o", "api_key_id": 1, "connection_id": c1.pk},
        {"provider": "openai", "model": "gpt-4o-mini", "api_key_id": 2, "connection_id": c1.pk},
        {"provider": "anthropic", "model": "claude-sonnet-4-5", "api_key_id": 2, "connection_id": c2.pk},
        {"provider": "anthropic", "model": "claude-sonnet-4-5", "api_key_id": 3, "connection_id": c2.pk},
    ]
    for n, values in enumerate(rows):
        UsageRecordFactory.create(created_at=at(n + 1, 15), cost_usd=Decimal(n + 1), **values)
    UsageRecordFactory.create(created_at=at(20), provider="openai", model="gpt-4o", api_key_id=1)
    usage_rollup(now=at(22))
    span = {"from": iso(at(0)), "to": iso(at(23))}
    filters: list[dict[str, Any]] = [
        {"provider": "anthropic"},
        {"model": "gpt-4o"},
        {"keyId": 2},
        {"connectionId": c1.pk},
        {"provider": "openai", "keyId": 2},
        {"provider": "openai", "keyId": 3},
    ]
    before = [history(operator, **span, **f)["totals"] for f in filters]
    purge_before(at(19))
    after = [history(operator, **span, **f) for f in filters]
    assert [without_latency(body["totals"]) for body in after] == [without_latency(t) for t in before]
    assert [body["totals"]["requests"] for body in after] == [2, 2, 2, 2, 1, 0]
    assert [body["totals"]["costUsd"] for body in after] == [7.0, 1.0, 5.0, 3.0, 2.0, 0.0]
    assert after[-1]["rolledUpBefore"] is None  # nothing matched in the roll-ups


def test_a_status_filter_reads_the_records_only() -> None:
    UsageRecordFactory.create(created_at=at(1, 15), status_code=502)
    UsageRecordFactory.create(created_at=at(20), status_code=502)
    usage_rollup(now=at(22))
    purge_before(at(19))
    span = UsageFilters(start=at(0), end=at(23))
    assert usage_history(filters=span, bucket="hour", group_by=None).totals["errors"] == 2
    errors = usage_history(filters=UsageFilters(start=at(0), end=at(23), status="error"), bucket="hour", group_by=None)
    assert errors.totals["errors"] == 1 and errors.rolled_up_before is None


def test_rolled_up_latency_is_exact_and_weighted_by_successes(operator: APIClient) -> None:
    for latency in (285.0, 295.0, 300.0):
        UsageRecordFactory.create(created_at=at(1, 10), latency_ms=latency)
    UsageRecordFactory.create(created_at=at(1, 20), latency_ms=9000.0, status_code=429)  # not a success
    UsageRecordFactory.create(created_at=at(1, 30), latency_ms=7000.0, status_code=0)  # no status: not one either
    UsageRecordFactory.create(created_at=at(20), latency_ms=1000.0)
    usage_rollup(now=at(22))
    purge_before(at(19))

    rolled = history(operator, **{"from": iso(at(0)), "to": iso(at(19))})
    assert (rolled["totals"]["requests"], rolled["totals"]["errors"]) == (5, 2)
    assert rolled["totals"]["avgLatencyMs"] == 293.333
    both = history(operator, **{"from": iso(at(0)), "to": iso(at(23))})
    # 3 successes from the roll-up, 1 from the records; the errors weigh nothing.
    assert both["totals"]["avgLatencyMs"] == 470.0  # (285 + 295 + 300 + 1000) / 4
    assert [row["avgLatencyMs"] for row in both["series"]] == [293.333, 1000.0]


def test_rollups_without_a_latency_sum_are_estimated_from_their_histograms(operator: APIClient) -> None:
    """Roll-ups made before the latency sum was kept: their mean is estimated from bucket midpoints."""
    for latency in (285.0, 295.0, 300.0):
        UsageRecordFactory.create(created_at=at(1, 10), latency_ms=latency)
    UsageRecordFactory.create(created_at=at(2, 10), latency_ms=100.0)
    UsageRecordFactory.create(created_at=at(20), latency_ms=1000.0)
    usage_rollup(now=at(22))
    purge_before(at(19))
    UsageRollup.objects.filter(hour=at(1)).update(latency_ms_sum=None)
    index = bucket_of(300.0)
    assert bucket_of(285.0) == index  # one bucket: the estimate is its midpoint

    rolled = history(operator, **{"from": iso(at(0)), "to": iso(at(19))})
    assert [row["avgLatencyMs"] for row in rolled["series"]] == [round(MIDPOINTS[index], 3), 100.0]
    assert BOUNDS[index - 1] < rolled["series"][0]["avgLatencyMs"] <= BOUNDS[index]
    both = history(operator, **{"from": iso(at(0)), "to": iso(at(23))})
    # 3 estimated and 1 exact from the roll-ups, 1 from the records.
    assert both["totals"]["avgLatencyMs"] == round((3 * MIDPOINTS[index] + 100.0 + 1000.0) / 5, 3)


def test_rolled_up_days_in_the_operators_time_zone(operator: APIClient, settings: Any) -> None:
    settings.TIME_ZONE = "Europe/Berlin"
    UsageRecordFactory.create(created_at=at(22, 30))  # 23:30 on the 10th in Berlin
    UsageRecordFactory.create(created_at=at(23, 30))  # 00:30 on the 11th in Berlin
    UsageRecordFactory.create(created_at=at(34))  # 11:00 on the 11th in Berlin
    usage_rollup(now=at(36))
    purge_before(at(30))
    body = history(operator, **{"from": "2026-01-09", "to": "2026-01-13", "bucket": "day"})
    assert body["rolledUpBefore"] == "2026-01-11T11:00:00+01:00"
    assert [(row["bucketStart"], row["requests"]) for row in body["series"]] == [
        ("2026-01-10T00:00:00+01:00", 1),
        ("2026-01-11T00:00:00+01:00", 2),  # one rolled-up hour and one record
    ]


def test_connection_usage_outlives_its_records(operator: APIClient) -> None:
    connection = ProviderConnectionFactory.create()
    pk = connection.pk
    UsageRecordFactory.create(created_at=at(1, 15), connection_id=pk, cost_usd=Decimal("0.5"))
    UsageRecordFactory.create(created_at=at(20))
    usage_rollup(now=at(22))
    purge_before(at(19))
    connection.delete()
    response = operator.get(f"/api/usage/{pk}", {"from": iso(at(0)), "to": iso(at(23))})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["totals"]["requests"] == 1 and body["totals"]["costUsd"] == 0.5
    assert [row["bucketStart"] for row in body["series"]] == [iso(at(1))]
    assert body["rolledUpBefore"] == iso(at(20))
    assert operator.get(f"/api/usage/{pk + 100}").status_code == 404


def test_rolled_up_history_takes_a_fixed_number_of_queries(
    operator: APIClient, django_assert_max_num_queries: Any
) -> None:
    UsageRollup.objects.bulk_create(
        [
            UsageRollup(hour=at(-24 * 30 + n), provider=f"p{n % 5}", model=f"m{n % 7}", api_key_id=10**9 + n % 3,
                        requests=2, errors=1, latency_histogram=[0, 1])
            for n in range(600)
        ]
    )  # fmt: skip
    UsageRecordFactory.create(created_at=at(20))
    # Auth, where the records begin, 3 aggregations of each part, the histograms, key names.
    with django_assert_max_num_queries(10):
        body = history(operator, **{"from": iso(at(-24 * 31)), "to": iso(at(23)), "groupBy": "key"})
    assert body["totals"]["requests"] == 1201 and body["totals"]["errors"] == 600
    assert [(row["key"], row["name"], row["requests"]) for row in body["breakdown"]] == [
        (10**9, None, 400),
        (10**9 + 1, None, 400),
        (10**9 + 2, None, 400),
        (None, "", 1),
    ]
