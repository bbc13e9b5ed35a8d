"""Two real gateway processes sharing Redis enforce one set of limits: a limit of 10 requests
per minute admits 10 between them (not 20), a budget spent through one process blocks the
key in the other, and tokens counted in one count in the other.

Runs in both CI configurations: the processes always use the local Redis (this xdist
worker's database, tests/redis_db.py), flushed before and after.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.test_openai_chat import make_connection
from tests.factories import ApiKeyFactory, PriceOverrideFactory
from tests.fakes.provider import Behaviour, FakeProvider
from tests.gateway.test_key_limits import burst, fresh_minute
from tests.live_server import GatewayProcess
from tests.redis_db import flushable_redis_url
from usage.models import Budget

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REDIS_URL = flushable_redis_url()
HI: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def two_processes(fake_provider: FakeProvider) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    shared = redis.Redis.from_url(REDIS_URL)
    shared.flushdb()
    procs = [GatewayProcess(extra_env={"REDIS_URL": REDIS_URL}) for _ in range(2)]
    try:
        yield procs[0], procs[1]
    finally:
        for proc in procs:
            proc.stop()
        shared.flushdb()
        shared.close()


def chat(proc: GatewayProcess, key: str) -> httpx.Response:
    return httpx.post(
        f"{proc.base_url}/chat/completions",
        json={"model": "openai/gpt-4o", "messages": HI},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


async def bursts(procs: tuple[GatewayProcess, ...], key: str, each: int) -> list[Any]:
    results = await asyncio.gather(*(burst(p.base_url, key, each) for p in procs))
    return [r for part in results for r in part]


def test_rpm_is_shared_across_processes(
    two_processes: tuple[GatewayProcess, GatewayProcess], fake_provider: FakeProvider
) -> None:
    make_connection(fake_provider.openai_base_url)
    _, key = ApiKeyFactory.create_with_key(max_requests_per_minute=10)
    fake_provider.behave(Behaviour(delay=0.3))
    for proc in two_processes:
        proc.start()
    fresh_minute()
    results = asyncio.run(bursts(two_processes, key, 15))
    assert results.count(200) == 10
    assert len(fake_provider.requests) == 10


def test_budget_spent_in_one_process_blocks_the_other(
    two_processes: tuple[GatewayProcess, GatewayProcess], fake_provider: FakeProvider
) -> None:
    a, b = two_processes
    PriceOverrideFactory.create(provider="openai", model="gpt-4o", input=Decimal(1), output=Decimal(4))
    make_connection(fake_provider.openai_base_url)
    key_row, key = ApiKeyFactory.create_with_key(name="shared-budget")
    _, admin = ApiKeyFactory.create_with_key(scope="admin", name="operator")
    Budget.objects.create(api_key=key_row, limit_usd=Decimal("0.004"), period="daily")
    fake_provider.behave(Behaviour(prompt_tokens=1000, completion_tokens=1000))  # 0.005 USD
    a.start()
    b.start()

    assert chat(b, key).status_code == 200  # B starts the counter (seeded from the records: 0)
    # A's management API reads the counter from Redis: B's cost is there (B adds it right
    # after its response; poll to not depend on that ordering).
    deadline = time.monotonic() + 10
    while True:
        resp = httpx.get(f"{a.url}/api/usage/budget", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
        status = resp.json()["budgets"][0]
        if status["spent"] > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (status["spent"], status["remaining"], status["warning"]) == (0.005, 0.0, True)
    for proc in (a, b):
        refused = chat(proc, key)
        assert refused.status_code == 429, refused.text
        assert "daily budget of 0.004 USD" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 1
    assert len(fake_provider.requests) == 1


def test_tokens_counted_in_one_process_count_in_the_other(
    two_processes: tuple[GatewayProcess, GatewayProcess], fake_provider: FakeProvider
) -> None:
    a, b = two_processes
    make_connection(fake_provider.openai_base_url)
    _, key = ApiKeyFactory.create_with_key(max_tokens_per_minute=1000)
    fake_provider.behave(Behaviour(prompt_tokens=700, completion_tokens=300))
    a.start()
    b.start()
    fresh_minute()
    assert chat(a, key).status_code == 200
    deadline = time.monotonic() + 10
    while (resp := chat(b, key)).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)  # only until A has counted the tokens (just after its response)
    assert resp.status_code == 429 and "1000 tokens per minute" in resp.json()["error"]["message"]
