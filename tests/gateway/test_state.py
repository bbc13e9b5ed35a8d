"""Runtime routing state, in-process and shared through a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.state import CLOSED, HALF_OPEN, OPEN, BreakerPolicy, LocalState, RedisState
from tests.redis_db import flushable_redis_url

POLICY = BreakerPolicy(failure_threshold=3, reset_seconds=0.2)


def test_cooldown_expires() -> None:
    state = LocalState()
    asyncio.run(state.set_cooldown("conn:1", 0.1, "429"))
    assert 0 < state.cooldown_remaining("conn:1") <= 0.1
    time.sleep(0.12)
    assert state.cooldown_remaining("conn:1") == 0


def test_breaker_opens_then_half_open_allows_one_probe() -> None:
    state = LocalState()

    async def run() -> None:
        for _ in range(2):
            await state.record_failure("provider:p", POLICY)
        assert state.breaker_allows("provider:p", POLICY)
        await state.record_failure("provider:p", POLICY)
        assert state.breakers["provider:p"].state == OPEN
        assert not state.breaker_allows("provider:p", POLICY)
        await asyncio.sleep(0.21)
        assert state.breaker_allows("provider:p", POLICY)  # the probe
        assert state.breakers["provider:p"].state == HALF_OPEN
        assert not state.breaker_allows("provider:p", POLICY)  # only one
        await state.record_failure("provider:p", POLICY)  # probe failed: open again
        assert state.breakers["provider:p"].state == OPEN
        await asyncio.sleep(0.21)
        assert state.breaker_allows("provider:p", POLICY)
        await state.record_success("provider:p")  # probe succeeded: closed
        assert "provider:p" not in state.breakers

    asyncio.run(run())


def test_success_resets_failure_count() -> None:
    state = LocalState()

    async def run() -> None:
        await state.record_failure("k", POLICY)
        await state.record_failure("k", POLICY)
        await state.record_success("k")
        await state.record_failure("k", POLICY)
        await state.record_failure("k", POLICY)
        assert state.breaker_allows("k", POLICY)

    asyncio.run(run())


def test_latency_p50() -> None:
    state = LocalState()
    for ms in (5, 1, 9, 3, 7):
        state.observe_latency("m", ms)
    assert state.latency_p50("m") == 5
    assert state.latency_p50("other") is None


@pytest.fixture
def redis_settings(settings: pytest.FixtureRequest) -> None:
    import redis

    settings.REDIS_URL = flushable_redis_url()  # type: ignore[attr-defined]
    redis.Redis.from_url(flushable_redis_url()).flushdb()


async def _until(predicate: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("state did not propagate")
        await asyncio.sleep(0.01)


def test_two_processes_share_cooldowns_and_breakers(redis_settings: None) -> None:
    async def run() -> None:
        a, b = RedisState(), RedisState()
        await a.start()
        await b.start()
        await asyncio.sleep(0.1)  # subscriptions established
        await a.set_cooldown("conn:7", 5, "429 from provider")
        await _until(lambda: b.cooldown_remaining("conn:7") > 4)
        assert b.cooldowns["conn:7"].reason == "429 from provider"
        await b.clear_cooldown("conn:7")
        await _until(lambda: a.cooldown_remaining("conn:7") == 0)

        # Failures counted across both: 2 in a + 1 in b reach the threshold of 3.
        await a.record_failure("provider:x", POLICY)
        await b.record_failure("provider:x", POLICY)
        await a.record_failure("provider:x", POLICY)
        await _until(lambda: "provider:x" in b.breakers and b.breakers["provider:x"].state == OPEN)
        assert not b.breaker_allows("provider:x", POLICY)
        await b.record_success("provider:x")
        await _until(lambda: "provider:x" not in a.breakers)

        # A process that starts later loads what is stored.
        await a.set_cooldown("conn:8", 5, "quota")
        c = RedisState()
        await c.start()
        await _until(lambda: c.cooldown_remaining("conn:8") > 4)

        # Round-robin counters are one sequence across processes.
        picks = [await a.next_counter("rr"), await b.next_counter("rr"), await a.next_counter("rr")]
        assert picks == [0, 1, 2]

        await a.reset()
        await _until(lambda: not b.cooldowns and not c.cooldowns)
        assert b.breakers.get("provider:x") is None or b.breakers["provider:x"].state == CLOSED

    asyncio.run(run())


def test_latency_samples_are_shared_through_redis(redis_settings: None) -> None:
    async def run() -> None:
        a, b = RedisState(namespace="latency-test"), RedisState(namespace="latency-test")
        for ms in (10.0, 20.0, 30.0):
            a.observe_latency("openai/gpt-4o", ms)
        b.observe_latency("openai/gpt-4o", 40.0)
        await a.sync_latency()
        await b.sync_latency()
        await a.sync_latency()
        # Both windows now hold all four samples, whichever process measured them.
        assert sorted(a.latency["openai/gpt-4o"]) == sorted(b.latency["openai/gpt-4o"]) == [10.0, 20.0, 30.0, 40.0]
        assert b.latency_p50("openai/gpt-4o") == 30.0

    asyncio.run(run())
