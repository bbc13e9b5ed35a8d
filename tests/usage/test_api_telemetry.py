"""/api/telemetry/summary: latency percentiles and time to first token per provider, from
the usage records of a window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.factories import UsageRecordFactory
from usage.selectors import percentile

pytestmark = pytest.mark.django_db


def test_percentiles_per_provider_over_the_window(operator: APIClient) -> None:
    now = timezone.now()
    recent = now - timedelta(minutes=5)
    for ms in range(1, 101):  # 1..100 ms
        UsageRecordFactory.create(provider="openai", latency_ms=float(ms), created_at=recent)
    for ttfb in (40.0, 10.0, 30.0):
        UsageRecordFactory.create(provider="anthropic", latency_ms=500.0, ttfb_ms=ttfb, stream=True, created_at=recent)
    # Not counted: errors, other windows, records without a provider, non-stream first bytes.
    UsageRecordFactory.create(provider="openai", latency_ms=9999.0, status_code=502, created_at=recent)
    UsageRecordFactory.create(provider="openai", latency_ms=9999.0, created_at=now - timedelta(hours=2))
    UsageRecordFactory.create(provider="", latency_ms=1.0, status_code=200, created_at=recent)
    UsageRecordFactory.create(provider="anthropic", latency_ms=500.0, ttfb_ms=1.0, stream=False, created_at=recent)

    response = operator.get("/api/telemetry/summary")
    assert response.status_code == 200
    assert response.json() == {
        "window": "1h",
        "providers": {
            "anthropic": {"p50": 500.0, "p95": 500.0, "p99": 500.0, "count": 4, "ttftP50": 30.0},
            "openai": {"p50": 50.0, "p95": 95.0, "p99": 99.0, "count": 100, "ttftP50": None},
        },
    }
    day = operator.get("/api/telemetry/summary", {"window": "24h"}).json()
    assert day["window"] == "24h" and day["providers"]["openai"]["count"] == 101
    assert day["providers"]["openai"]["p99"] == 100.0


def test_empty_window(operator: APIClient) -> None:
    assert operator.get("/api/telemetry/summary", {"window": "7d"}).json() == {"window": "7d", "providers": {}}


@pytest.mark.parametrize("window", ["2h", "1d", "all"])
def test_unknown_windows_are_rejected(operator: APIClient, window: str) -> None:
    response = operator.get("/api/telemetry/summary", {"window": window})
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "window"


def test_nearest_rank_percentile() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 51) == 3.0


def test_operators_only(inference_client: APIClient) -> None:
    assert inference_client.get("/api/telemetry/summary").status_code == 403
    assert APIClient().get("/api/telemetry/summary").status_code == 401
