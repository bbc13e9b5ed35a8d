"""Through the running gateway with the openai SDK and the fake provider: /metrics counters
and histograms match the usage records, /api/telemetry/summary's live windows count them,
and /metrics is for operators unless METRICS_PUBLIC."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from rest_framework.test import APIClient

from gateway.models import ApiKey
from gateway.recorder import recorder
from gateway.telemetry import collector
from tests.e2e.test_openai_chat import client, make_connection, make_key, records
from tests.factories import PriceOverrideFactory
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway
from tests.usage.prometheus import Family, parse, value
from usage.selectors import percentile

pytestmark = pytest.mark.e2e

HI = [{"role": "user", "content": "hi"}]
RATIO = 2 ** (1 / 8)


@pytest.fixture
def fresh_telemetry(gateway: LiveGateway) -> Iterator[None]:
    # Observations of an earlier test's requests can still be queued for the writer thread
    # (with Redis they are queued once their batch is in the stream): counted first, then forgotten.
    gateway.wait_idle()
    assert recorder._flush_local(10)
    collector.reset_for_tests()
    yield
    gateway.wait_idle()
    assert recorder._flush_local(10)
    collector.reset_for_tests()


def scrape(base: str, admin_key: str) -> dict[str, Family]:
    response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


def traffic(gateway: LiveGateway, fake_provider: FakeProvider, key: str, *, plain: int, streams: int) -> None:
    sdk = client(gateway, key)
    ok = Behaviour(reply="ok", prompt_tokens=11, completion_tokens=3, cached_tokens=4)
    fake_provider.behave(ok, times=plain + streams)
    for _ in range(plain):
        sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    for _ in range(streams):
        list(sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=HI, stream=True))  # type: ignore[arg-type]


def test_metrics_match_the_usage_records(
    gateway: LiveGateway, fake_provider: FakeProvider, fresh_telemetry: None
) -> None:
    PriceOverrideFactory.create(provider="openai", model="gpt-4o-mini", input=Decimal("1"), output=Decimal("2"))
    make_connection(fake_provider.openai_base_url)
    key, admin = make_key(), make_key(scope=ApiKey.SCOPE_ADMIN)
    before = scrape(gateway.url, admin)
    traffic(gateway, fake_provider, key, plain=5, streams=3)
    fake_provider.behave(Behaviour(status=400, error_message="bad thing"), times=1)
    with pytest.raises(openai.BadRequestError):
        client(gateway, key).chat.completions.create(model="openai/gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):  # unresolved: the client's model name is no label
        client(gateway, key).chat.completions.create(model="nosuch/model-xyz", messages=HI)  # type: ignore[arg-type]
    rows = records(gateway)
    after = scrape(gateway.url, admin)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    mini = {"provider": "openai", "model": "gpt-4o-mini"}
    # The records are the truth (a stream whose client hung up right after the last chunk
    # is recorded 499, not 200): every status of theirs is counted.
    statuses = Counter(r.status_code for r in rows if r.provider == "openai")
    assert sum(statuses.values()) == 9 and statuses[400] == 1
    for status_code, n in statuses.items():
        assert delta("omniroute_requests_total", **mini, status=str(status_code)) == n
        assert delta("omniroute_errors_total", **mini, status=str(status_code)) == (n if status_code >= 400 else 0)
    unresolved = [r for r in rows if not r.provider]
    assert len(unresolved) == 1
    status = str(unresolved[0].status_code)
    assert delta("omniroute_requests_total", provider="", model="", status=status) == 1
    assert delta("omniroute_errors_total", provider="", model="", status=status) == 1
    assert "model-xyz" not in httpx.get(f"{gateway.url}/metrics", headers={"Authorization": f"Bearer {admin}"}).text

    ok = [r for r in rows if r.provider == "openai"]
    for kind in ("prompt", "completion", "cached"):
        assert delta("omniroute_tokens_total", **mini, type=kind) == sum(getattr(r, f"{kind}_tokens") for r in ok)
    cost = sum(r.cost_usd for r in ok)
    assert cost > 0 and delta("omniroute_cost_usd_total", **mini) == pytest.approx(float(cost))

    latency_sum = sum(r.latency_ms for r in ok) / 1000
    assert delta("omniroute_request_duration_seconds_count", provider="openai") == 9
    # Records store latencies rounded to the microsecond; the counters add the exact values.
    rounding = len(ok) * 0.0005 / 1000
    assert delta("omniroute_request_duration_seconds_sum", provider="openai") == pytest.approx(
        latency_sum, abs=rounding + 1e-9
    )
    slow = sum(1 for r in ok if r.latency_ms > 300_000)
    assert delta("omniroute_request_duration_seconds_bucket", provider="openai", le="300.0") == 9 - slow
    assert delta("omniroute_ttfb_seconds_count", provider="openai") == sum(1 for r in ok if r.ttfb_ms is not None)
    # Every request of this provider reached it: each has an overhead, a part of its duration
    # (but for one cancelled by its client mid-attempt).
    finished = sum(1 for r in ok if r.status_code != 499)
    assert delta("omniroute_gateway_overhead_seconds_count", provider="openai") == finished
    assert 0 < delta("omniroute_gateway_overhead_seconds_sum", provider="openai") < latency_sum
    assert value(after, "omniroute_gateway_processes") >= 1
    assert value(after, "omniroute_info", version="0.1.0", aggregation="files" if not _redis() else "redis") == 1


def _redis() -> bool:
    from django.conf import settings

    return bool(settings.REDIS_URL)


def test_live_summary_windows_count_the_requests(
    gateway: LiveGateway, fake_provider: FakeProvider, fresh_telemetry: None
) -> None:
    make_connection(fake_provider.openai_base_url)
    key, admin = make_key(), make_key(scope=ApiKey.SCOPE_ADMIN)
    traffic(gateway, fake_provider, key, plain=6, streams=4)
    fake_provider.behave(Behaviour(status=500, error_message="down"), times=1)
    with pytest.raises(openai.InternalServerError):
        client(gateway, key).chat.completions.create(model="openai/gpt-4o", messages=HI)  # type: ignore[arg-type]
    everything = records(gateway)
    assert len(everything) == 11
    rows = [r for r in everything if r.status_code < 400]  # what the summary counts
    latencies = sorted(r.latency_ms for r in rows)
    ttfts = sorted(r.ttfb_ms for r in rows if r.stream and r.ttfb_ms is not None)

    headers = {"Authorization": f"Bearer {admin}"}
    for window in ("5m", "15m", "1h", None):
        params = {"window": window} if window else {}
        body = httpx.get(f"{gateway.url}/api/telemetry/summary", params=params, headers=headers).json()
        assert body["window"] == (window or "1h") and body["source"] == "live"
        openai_ = body["providers"]["openai"]
        assert openai_["count"] == len(rows) and openai_["ttft"]["count"] == len(ttfts)  # the 500 is not counted
        for pct in (50, 95, 99):
            exact = percentile(latencies, pct)
            assert exact is not None and exact / RATIO <= openai_[f"p{pct}"] <= exact * RATIO
            if ttfts:
                exact = percentile(ttfts, pct)
                assert exact is not None and exact / RATIO <= openai_["ttft"][f"p{pct}"] <= exact * RATIO


@pytest.mark.django_db
def test_metrics_need_an_operator_unless_public(
    operator: APIClient, inference_client: APIClient, settings: Any
) -> None:
    assert APIClient().get("/metrics").status_code == 401
    assert inference_client.get("/metrics").status_code == 403
    response = operator.get("/metrics")
    assert response.status_code == 200 and b"# TYPE omniroute_requests_total counter" in response.content
    settings.METRICS_PUBLIC = True
    assert APIClient().get("/metrics").status_code == 200


@pytest.fixture
def unreachable_redis(settings: Any) -> Iterator[None]:
    """This process's telemetry sink pointed at a Redis that is not there."""
    from gateway.redis_client import get_sync_redis

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    get_sync_redis.cache_clear()
    collector._sink = None
    yield
    get_sync_redis.cache_clear()
    collector._sink = None


@pytest.mark.django_db
def test_an_unreachable_store_is_a_clear_503(operator: APIClient, unreachable_redis: None) -> None:
    for path in ("/metrics", "/api/telemetry/summary"):
        response = operator.get(path)
        assert response.status_code == 503
        assert "telemetry store" in response.json()["error"]["message"]
