"""Two real gateway processes sharing the response cache through Redis (this worker's database, flushed before
and after): an answer cached by one is a hit in the other, and a DELETE through one clears
both — the other drops its in-memory tier when it sees the bumped configuration version.

Runs in both CI configurations: it always uses the local Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from gateway.models import ApiKey
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import GatewayProcess
from tests.redis_db import flushable_redis_url
from tests.routing.helpers import connect, make_key

from .cache_helpers import QUESTION, upstream_chats

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REDIS_URL = flushable_redis_url()


@pytest.fixture
def shared_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # no skip: CI starts Redis for both runs
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def two_processes(shared_redis: redis.Redis, fake_provider: FakeProvider) -> Iterator[tuple[GatewayProcess, ...]]:
    env = {"REDIS_URL": REDIS_URL, "RESPONSE_CACHE_ENABLED": "true"}
    procs = [GatewayProcess(extra_env=env), GatewayProcess(extra_env=env)]
    try:
        yield tuple(procs)
    finally:
        for proc in procs:
            proc.stop()


def ask(proc: GatewayProcess, key: str) -> httpx.Response:
    body = {"model": "openai/gpt-4o", "messages": QUESTION, "temperature": 0}
    resp = httpx.post(
        f"{proc.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return resp


def test_two_processes_share_the_cache(
    two_processes: tuple[GatewayProcess, GatewayProcess], fake_provider: FakeProvider, shared_redis: redis.Redis
) -> None:
    a, b = two_processes
    connect(fake_provider)
    fake_provider.behave(Behaviour(reply="Paris."))
    key = make_key()
    admin = {"Authorization": f"Bearer {make_key(ApiKey.SCOPE_ADMIN)}"}
    a.start()
    b.start()

    assert ask(a, key).headers["x-omniroute-cache"] == "MISS"
    hit = ask(b, key)
    assert hit.headers["x-omniroute-cache"] == "HIT" and hit.json()["choices"][0]["message"]["content"] == "Paris."
    assert ask(a, key).headers["x-omniroute-cache"] == "HIT"
    assert upstream_chats(fake_provider) == 1
    stats = httpx.get(f"{b.url}/api/cache", headers=admin).json()["semanticCache"]
    assert stats["dbSize"] == 1 and stats["hitRate"] == pytest.approx(66.7)

    cleared = httpx.delete(f"{b.url}/api/cache", headers=admin).json()
    assert cleared == {"ok": True, "cleared": 1, "scope": "all"}
    # A still holds the answer in its memory tier until it sees the new configuration version.
    deadline = time.monotonic() + 10
    while ask(a, key).headers["x-omniroute-cache"] == "HIT":
        assert time.monotonic() < deadline, "process A never dropped its in-memory tier"
        time.sleep(0.2)
    assert upstream_chats(fake_provider) == 2


def test_the_persistent_tier_survives_a_restart(fake_provider: FakeProvider, shared_redis: redis.Redis) -> None:
    """The server process ends and a new one starts: the answer is still cached (in the
    database, or in Redis when the test run is configured with it)."""
    connect(fake_provider)
    fake_provider.behave(Behaviour(reply="Paris."))
    key = make_key()
    first = GatewayProcess(extra_env={"RESPONSE_CACHE_ENABLED": "true"}).start()
    try:
        assert ask(first, key).headers["x-omniroute-cache"] == "MISS"
    finally:
        first.terminate()
    second = GatewayProcess(extra_env={"RESPONSE_CACHE_ENABLED": "true"}).start()
    try:
        assert ask(second, key).headers["x-omniroute-cache"] == "HIT"
    finally:
        second.stop()
    assert upstream_chats(fake_provider) == 1
