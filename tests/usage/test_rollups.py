"""Hourly roll-ups: equal to the raw records, idempotent, late records replace (never add),
empty hours skipped; long telemetry windows read them (or the records when they are missing)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from rest_framework.test import APIClient

from gateway.telemetry.histogram import estimate
from tests.factories import UsageRecordFactory
from usage.models import UsageRecord, UsageRollup
from usage.selectors import percentile, telemetry_summary
from usage.services import rollup_covered_until, usage_rollup, usage_rollup_hour, usage_rollup_purge

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
H10, H11 = datetime(2026, 3, 10, 10, tzinfo=UTC), datetime(2026, 3, 10, 11, tzinfo=UTC)
RATIO = 2 ** (1 / 8)


def make_records(rng: random.Random, hour: datetime, n: int) -> None:
    for _ in range(n):
        UsageRecordFactory.create(
            created_at=hour + timedelta(seconds=rng.randint(0, 3599)),
            provider=rng.choice(["openai", "anthropic"]),
            model=rng.choice(["m1", "m2"]),
            api_key_id=rng.choice([None, 1, 2]),
            connection_id=rng.choice([None, 7]),
            status_code=rng.choice([200, 200, 200, 429, 502]),
            stream=rng.random() < 0.5,
            prompt_tokens=rng.randint(0, 500),
            completion_tokens=rng.randint(0, 100),
            cached_tokens=rng.randint(0, 50),
            reasoning_tokens=rng.randint(0, 20),
            cache_creation_tokens=rng.randint(0, 10),
            cost_usd=Decimal(rng.randint(0, 10**6)) / 10**8,
            latency_ms=rng.lognormvariate(6, 1),
            ttfb_ms=rng.lognormvariate(5, 1),
        )


def rollup_rows() -> list[tuple[object, ...]]:
    fields = [f.name for f in UsageRollup._meta.fields if f.name != "id"]
    return sorted(UsageRollup.objects.values_list(*fields), key=repr)


SUMS = ["prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens", "reasoning_tokens", "cost_usd"]


def totals(qs: object, *, count: str) -> dict[str, object]:
    return qs.aggregate(n=Sum(count) if count != "id" else Count("id"), **{f: Sum(f) for f in SUMS})  # type: ignore[attr-defined]


def test_rollups_equal_the_raw_records_and_rerunning_changes_nothing() -> None:
    rng = random.Random(7)
    make_records(rng, H10, 150)
    make_records(rng, H11, 100)
    make_records(rng, NOW.replace(minute=0), 5)  # the current hour: not rolled up yet
    assert usage_rollup(now=NOW) == 2
    first = rollup_rows()
    assert usage_rollup(now=NOW) == 2  # the last two completed hours again
    assert rollup_rows() == first
    for hour in (H10, H11):
        raw = UsageRecord.objects.filter(created_at__gte=hour, created_at__lt=hour + timedelta(hours=1))
        rolled = UsageRollup.objects.filter(hour=hour)
        assert totals(rolled, count="requests") == totals(raw, count="id")
        assert rolled.aggregate(e=Sum("errors"))["e"] == raw.filter(status_code__gte=400).count()
        groups = raw.values("provider", "model", "api_key_id", "connection_id").distinct().count()
        assert rolled.count() == groups
    assert rollup_covered_until() == NOW.replace(minute=0)
    # Histograms: every successful request once; percentiles within a bucket of the exact ones.
    ok = UsageRecord.objects.filter(created_at__lt=NOW.replace(minute=0), status_code__lt=400, provider="openai")
    merged: dict[int, int] = {}
    for row in UsageRollup.objects.filter(provider="openai"):
        for index, count in enumerate(row.latency_histogram):
            merged[index] = merged.get(index, 0) + count
    assert sum(merged.values()) == ok.count()
    exact = percentile(sorted(ok.values_list("latency_ms", flat=True)), 95)
    estimated = estimate(merged, 95)
    assert exact and estimated and exact / RATIO <= estimated <= exact * RATIO
    ttfts = sum(sum(r.ttft_histogram) for r in UsageRollup.objects.filter(provider="openai"))
    assert ttfts == ok.filter(stream=True).count()


def test_late_records_replace_the_hour_instead_of_adding() -> None:
    UsageRecordFactory.create(created_at=H10 + timedelta(minutes=5), prompt_tokens=10)
    usage_rollup_hour(start=H10)
    UsageRecordFactory.create(created_at=H10 + timedelta(minutes=59), prompt_tokens=5)
    usage_rollup_hour(start=H10 + timedelta(minutes=30))  # any moment of the hour names it
    usage_rollup_hour(start=H10)
    [row] = UsageRollup.objects.all()
    assert (row.requests, row.prompt_tokens, row.hour) == (2, 15, H10)


def test_backfill_skips_empty_hours_and_resumes_after_the_newest_rollup() -> None:
    UsageRecordFactory.create(created_at=NOW - timedelta(days=5))
    UsageRecordFactory.create(created_at=NOW - timedelta(days=2))
    # The oldest record's hour, the one 2 days ago, and the 2 recent hours (empty).
    assert usage_rollup(now=NOW) == 4
    assert UsageRollup.objects.count() == 2
    UsageRecordFactory.create(created_at=NOW - timedelta(hours=5))
    assert usage_rollup(now=NOW) == 3  # resumes after the newest roll-up: 5 h ago, then the recent two
    assert UsageRollup.objects.count() == 3


def test_purge_keeps_recent_rollups() -> None:
    now = datetime.now(UTC)
    UsageRecordFactory.create(created_at=now - timedelta(days=10))
    UsageRecordFactory.create(created_at=now - timedelta(hours=3))
    usage_rollup()
    assert UsageRollup.objects.count() == 2
    assert usage_rollup_purge(older_than_days=7) == 1
    assert UsageRollup.objects.get().hour > now - timedelta(days=7)


def test_long_windows_read_rollups_or_records_alike(operator: APIClient) -> None:
    now = datetime.now(UTC)
    for i, ms in enumerate(range(1, 101)):
        UsageRecordFactory.create(
            provider="openai", latency_ms=float(ms), created_at=now - timedelta(hours=3, seconds=i)
        )
    for ttfb in (40.0, 10.0, 30.0):
        UsageRecordFactory.create(
            provider="anthropic", latency_ms=500.0, ttfb_ms=ttfb, stream=True, created_at=now - timedelta(hours=4)
        )
    # Not counted: errors, records outside the window, records without a provider.
    UsageRecordFactory.create(
        provider="openai", latency_ms=9999.0, status_code=502, created_at=now - timedelta(hours=3)
    )
    UsageRecordFactory.create(provider="openai", latency_ms=9999.0, created_at=now - timedelta(hours=8))
    UsageRecordFactory.create(provider="", latency_ms=1.0, created_at=now - timedelta(hours=3))

    before = operator.get("/api/telemetry/summary", {"window": "6h"}).json()  # no roll-up yet: the records
    usage_rollup()
    assert UsageRollup.objects.exists()
    after = operator.get("/api/telemetry/summary", {"window": "6h"}).json()
    assert before == after
    assert after["window"] == "6h" and after["source"] == "rollups"
    openai, anthropic = after["providers"]["openai"], after["providers"]["anthropic"]
    assert openai["count"] == 100 and anthropic["count"] == 3
    for pct, exact in (("p50", 50), ("p95", 95), ("p99", 99)):
        assert exact / RATIO <= openai[pct] <= exact * RATIO
    assert openai["ttft"] == {"p50": None, "p95": None, "p99": None, "count": 0} and openai["ttftP50"] is None
    assert anthropic["ttft"]["count"] == 3 and 30 / RATIO <= anthropic["ttft"]["p50"] <= 30 * RATIO
    assert anthropic["ttftP50"] == anthropic["ttft"]["p50"]
    day = telemetry_summary(window="24h")
    assert day.providers["openai"].latency.count == 101


def test_windows_are_validated(operator: APIClient) -> None:
    for window in ("2h", "1d", "all", "60m"):
        response = operator.get("/api/telemetry/summary", {"window": window})
        assert response.status_code == 400
        assert response.json()["error"]["details"][0]["field"] == "window"


def test_telemetry_is_for_operators_only(inference_client: APIClient) -> None:
    assert inference_client.get("/api/telemetry/summary").status_code == 403
    assert APIClient().get("/api/telemetry/summary").status_code == 401
