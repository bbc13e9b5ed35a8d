"""The limiter's counter stores, in process and in a real Redis (this xdist worker's
database, tests/redis_db.py): atomic check-and-count, counters that exist only once seeded,
expiry with their window, and the fallback to this process's counters when Redis is
unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis
from django.test import override_settings

from gateway.counters import Check, LocalCounters, RedisCounters
from gateway.redis_client import get_sync_redis
from tests.redis_db import flushable_redis_url

pytestmark = pytest.mark.django_db
REDIS_URL = flushable_redis_url()

RPM = Check("rpm", "r:7:100", limit=2, seconds_left=30, count=True)
BUDGET = Check("budget", "b:7:d2026-11-27", limit=500, seconds_left=3600, seed=True)


@pytest.fixture(params=["local", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[LocalCounters]:
    if request.param == "local":
        yield LocalCounters()
        return
    with override_settings(REDIS_URL=REDIS_URL):
        get_sync_redis.cache_clear()
        redis.Redis.from_url(REDIS_URL).flushdb()
        yield RedisCounters()
        redis.Redis.from_url(REDIS_URL).flushdb()
    get_sync_redis.cache_clear()


def run(store: LocalCounters, *checks: Check) -> tuple[str, int | None] | None:
    refused = asyncio.run(store.admit(list(checks)))
    return None if refused is None else (refused[0].kind, refused[1])


def test_counts_up_to_the_limit_and_not_beyond(store: LocalCounters) -> None:
    assert run(store, RPM) is None
    assert run(store, RPM) is None
    assert run(store, RPM) == ("rpm", 2)
    assert store.peek(RPM.name) == 2  # refused requests do not count


def test_nothing_counts_when_one_check_refuses(store: LocalCounters) -> None:
    daily = Check("rpd", "q:7:d2026-11-27", limit=1, seconds_left=3600, count=True)
    assert run(store, RPM, daily) is None
    assert run(store, RPM, daily) == ("rpd", 1)
    assert store.peek(RPM.name) == 1


def test_budget_counters_are_seeded_once_and_added_to_only_when_they_exist(store: LocalCounters) -> None:
    asyncio.run(store.add([(BUDGET.name, 100, 3600, True)]))
    assert store.peek(BUDGET.name) is None  # no counter yet: the records will seed it
    assert run(store, BUDGET) == ("budget", None)
    asyncio.run(store.seed(BUDGET.name, 450, 3600))
    asyncio.run(store.seed(BUDGET.name, 0, 3600))  # a later seeder does not overwrite
    assert run(store, BUDGET) is None
    asyncio.run(store.add([(BUDGET.name, 60, 3600, True)]))
    assert store.peek(BUDGET.name) == 510
    assert run(store, BUDGET) == ("budget", 510)


def test_redis_counters_expire_after_their_window() -> None:
    with override_settings(REDIS_URL=REDIS_URL):
        client = redis.Redis.from_url(REDIS_URL)
        client.flushdb()
        store = RedisCounters()
        assert run(store, RPM) is None
        asyncio.run(store.add([("t:7:100", 250, 30, False)]))
        keys = sorted(k.decode() for k in client.scan_iter("*"))
        assert keys == [f"{store.prefix}r:{{7}}:100", f"{store.prefix}t:{{7}}:100"]
        assert all(30_000 < client.pttl(k) <= 90_000 for k in keys)  # the window plus a minute
        client.flushdb()


def test_unreachable_redis_falls_back_to_this_process() -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        store = RedisCounters()
        assert run(store, RPM) is None
        assert run(store, RPM) is None
        assert run(store, RPM) == ("rpm", 2)
