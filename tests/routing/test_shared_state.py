"""Two real gateway processes (the production server command) sharing routing state through
Redis: a cooldown caused through one is honoured by the other, breaker failures add up
across them, round-robin combos rotate across both, and a reset through one clears both.

Runs in both CI configurations: it always uses the local Redis (db 13), which CI starts
before either run. The processes derive the same state namespace from the (test) database
they share; the test clears exactly that namespace before and after.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import pytest
import redis
from django.db import connection

from gateway.models import ApiKey, Combo, ResilienceProfile
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import GatewayProcess
from tests.routing.helpers import HI, connect, keys_used, make_key, models_sent

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

REDIS_URL = "redis://127.0.0.1:6379/13"


def namespace_keys(client: redis.Redis) -> list[bytes]:
    """The Redis keys of this test database's state namespace (see gateway.state.state_namespace)."""
    namespace = hashlib.sha256(str(connection.settings_dict["NAME"]).encode()).hexdigest()[:12]
    return list(client.scan_iter(match=f"omniroute:state:{namespace}:*"))


@pytest.fixture
def shared_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # no skip: CI starts Redis for both runs
    if keys := namespace_keys(client):
        client.delete(*keys)
    yield client
    if keys := namespace_keys(client):
        client.delete(*keys)
    client.close()


@pytest.fixture
def two_processes(shared_redis: redis.Redis, fake_provider: FakeProvider) -> Iterator[tuple[GatewayProcess, ...]]:
    procs: list[GatewayProcess] = []
    try:
        for _ in range(2):
            procs.append(GatewayProcess(extra_env={"REDIS_URL": REDIS_URL}))
        # Configuration is written before the processes start (they read it at start-up).
        yield tuple(procs)
    finally:
        for proc in procs:
            proc.stop()


def post(proc: GatewayProcess, key: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{proc.base_url}/chat/completions",
        json={"model": model, "messages": HI},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_two_processes_share_cooldowns_breakers_and_round_robin(
    two_processes: tuple[GatewayProcess, GatewayProcess], fake_provider: FakeProvider, shared_redis: redis.Redis
) -> None:
    a, b = two_processes
    connect(fake_provider, key="sk-a", priority=1)
    connect(fake_provider, key="sk-b", priority=2)
    connect(fake_provider, provider="groq", key="sk-groq")
    Combo.objects.create(
        name="rr", members=["openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1"], strategy="round-robin"
    )
    ResilienceProfile.objects.update_or_create(
        auth_type="apikey", defaults={"breaker_failure_threshold": 2, "breaker_reset_seconds": 600}
    )
    key = make_key()
    admin = {"Authorization": f"Bearer {make_key(ApiKey.SCOPE_ADMIN)}"}
    a.start()
    b.start()

    # Both serve from the first account while nothing is wrong.
    assert post(a, key, "openai/gpt-4o").status_code == 200
    assert post(b, key, "openai/gpt-4o").status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-a"]

    # A 429 seen by process A cools the account down for process B too.
    fake_provider.reset()
    fake_provider.behave(
        Behaviour(status=429, error_message="per-minute limit", headers={"Retry-After": "60"}), times=1
    )
    assert post(a, key, "openai/gpt-4o").status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"]
    time.sleep(0.3)  # the event travels through Redis pub/sub
    for _ in range(3):
        assert post(b, key, "openai/gpt-4o").status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b", "sk-b", "sk-b", "sk-b"]
    # Stored under the namespace of the database both processes use.
    assert any(b":event:conn:" in k for k in namespace_keys(shared_redis))
    # B's management API reports it (read from Redis).
    models = httpx.get(f"{b.url}/api/models/availability", headers=admin, timeout=10).json()["models"]
    assert [(m["model"], m["connectionName"]) for m in models] == [("gpt-4o", "sk-a")]
    assert 55 <= models[0]["cooldownSeconds"] <= 60 and "per-minute limit" in models[0]["reason"]

    # Breaker failures add up across processes: one 500 through each reaches the threshold of 2.
    fake_provider.reset()
    fake_provider.behave(Behaviour(status=500), model="llama-3.3-70b-versatile", times=2)
    assert post(a, key, "groq/llama-3.3-70b-versatile").status_code == 500
    assert post(b, key, "groq/llama-3.3-70b-versatile").status_code == 500
    time.sleep(0.3)
    for proc in (a, b):
        resp = post(proc, key, "groq/llama-3.3-70b-versatile")
        assert resp.status_code == 503 and "circuit breaker is open" in resp.json()["error"]["message"]
    assert len(fake_provider.requests) == 2

    # A round-robin combo rotates across both processes: one sequence, shared through Redis.
    fake_provider.reset()
    served = [post(proc, key, "rr").headers["x-omniroute-model"] for proc in (a, b, a, b, a, b)]
    assert served == ["gpt-4o", "gpt-4o-mini", "gpt-4.1"] * 2
    assert models_sent(fake_provider.requests) == ["gpt-4o", "gpt-4o-mini", "gpt-4.1"] * 2

    # A reset through B clears the cooldown and the breaker in A too.
    reset = httpx.post(f"{b.url}/api/resilience/reset", headers=admin, timeout=10)
    assert reset.status_code == 200 and reset.json()["cooldowns"] == 1 and reset.json()["breakers"] == 1
    time.sleep(0.3)
    fake_provider.reset()
    assert post(a, key, "openai/gpt-4o").status_code == 200
    assert post(a, key, "groq/llama-3.3-70b-versatile").status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-groq"]
