"""Two real gateway processes: /metrics and the live telemetry of either process show the
sum of both, through Redis (this worker's database, flushed) or through the per-process files under DATA_DIR;
a process that exits gracefully stops being counted as alive but its counts remain.

Runs in both CI configurations (the Redis case always uses the local Redis)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from openai.types.chat import ChatCompletionMessageParam

from gateway.models import ApiKey
from gateway.redis_client import get_sync_redis
from gateway.state import state_namespace
from gateway.telemetry import collector
from gateway.telemetry.sinks import FileSink
from tests.e2e.test_openai_chat import make_connection, make_key
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import GatewayProcess
from tests.redis_db import flushable_redis_url
from tests.usage.prometheus import Family, parse, value
from usage.models import UsageRecord
from usage.services import usage_stream_consume

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REDIS_URL = flushable_redis_url()
MINI = {"provider": "openai", "model": "gpt-4o-mini"}
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["redis", "files"])
def aggregation(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    # This test process (its in-thread gateway) publishes no more heartbeats until it serves
    # again: only the two processes under test count.
    collector.stop()
    if request.param == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()  # no skip: CI starts Redis for both runs
        # With Redis the processes' usage records go through the Redis usage stream: this
        # test process is their consumer (the Celery task's job in a deployment).
        settings.REDIS_URL = REDIS_URL
        get_sync_redis.cache_clear()
        yield REDIS_URL
        get_sync_redis.cache_clear()
        client.flushdb()
        client.close()
    else:  # this deployment's metrics directory, emptied (other tests of the session write to it)
        FileSink(Path(settings.DATA_DIR) / "metrics" / state_namespace()).clear()
        collector.reset_for_tests()
        yield ""


def scrape(proc: GatewayProcess, admin: str) -> dict[str, Family]:
    response = httpx.get(f"{proc.url}/metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    """Wait for every process to publish (each does once a second)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the processes' telemetry never added up"
        time.sleep(0.2)


def records_written(redis_url: str) -> int:
    """The usage records in the database, after consuming the usage stream when there is one."""
    if redis_url:
        usage_stream_consume(consumer="telemetry-test")
    return UsageRecord.objects.count()


def test_two_processes_add_up(fake_provider: FakeProvider, aggregation: str) -> None:
    make_connection(fake_provider.openai_base_url)
    key, admin = make_key(), make_key(scope=ApiKey.SCOPE_ADMIN)
    fake_provider.behave(Behaviour(reply="ok", prompt_tokens=10, completion_tokens=2))
    procs = [GatewayProcess(extra_env={"REDIS_URL": aggregation}).start() for _ in range(2)]
    a, b = procs
    try:
        eventually(lambda: value(scrape(a, admin), "omniroute_gateway_processes") >= 2)
        before = scrape(a, admin)
        processes = value(before, "omniroute_gateway_processes")
        for proc, n in ((a, 3), (b, 5)):
            sdk = openai.OpenAI(base_url=proc.base_url, api_key=key, max_retries=0)
            sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=HI)
            list(sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=HI, stream=True))
            for _ in range(n - 2):
                sdk.chat.completions.create(model="openai/gpt-4o-mini", messages=HI)

        def added(proc: GatewayProcess, name: str, **labels: str) -> float:
            return value(scrape(proc, admin), name, **labels) - value(before, name, **labels)

        # The records (written by both processes) are the truth: a stream whose client hung up
        # right after its last chunk is recorded 499.
        eventually(lambda: records_written(aggregation) == 8)
        statuses = Counter(UsageRecord.objects.values_list("status_code", flat=True))

        def counted(proc: GatewayProcess) -> dict[int, float]:
            return {s: added(proc, "omniroute_requests_total", **MINI, status=str(s)) for s in statuses}

        eventually(lambda: counted(a) == statuses)  # the last publish of each process is in
        assert counted(b) == statuses
        tokens = {"provider": "openai", "model": "gpt-4o-mini", "type": "prompt"}
        assert added(b, "omniroute_tokens_total", **tokens) == sum(
            UsageRecord.objects.values_list("prompt_tokens", flat=True)
        )
        assert added(b, "omniroute_request_duration_seconds_count", provider="openai") == 8

        summary = httpx.get(
            f"{b.url}/api/telemetry/summary", params={"window": "5m"}, headers={"Authorization": f"Bearer {admin}"}
        ).json()
        assert summary["source"] == "live"
        ok = UsageRecord.objects.filter(status_code__lt=400)
        assert summary["providers"]["openai"]["count"] == ok.count()
        assert summary["providers"]["openai"]["ttft"]["count"] == ok.filter(stream=True, ttfb_ms__isnull=False).count()

        a.terminate()  # graceful: publishes its last counts, then is no longer alive
        after = scrape(b, admin)
        requests = sum(value(after, "omniroute_requests_total", **MINI, status=str(s)) for s in statuses)
        assert requests - sum(value(before, "omniroute_requests_total", **MINI, status=str(s)) for s in statuses) == 8
        assert value(after, "omniroute_gateway_processes") == processes - 1
    finally:
        for proc in procs:
            proc.stop()
