"""Redis clients for shared state, one per event loop (async) and one per process (sync)."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from functools import lru_cache

import redis
import redis.asyncio as aioredis
from django.conf import settings

log = logging.getLogger(__name__)
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()


def redis_configured() -> bool:
    return bool(settings.REDIS_URL)


def get_async_redis() -> aioredis.Redis:
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _async_clients[loop] = client
    return client


@lru_cache(maxsize=1)
def get_sync_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


async def close_async_redis() -> None:
    """Close the running loop's client: for private event loops that end with their call."""
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


async def share_periodically(interval: float, step: Callable[[], Awaitable[None]], what: str) -> None:
    """Run `step` every `interval` seconds for ever: the one-second batches in which processes
    share what they saw (latency samples, sessions). A failed round is skipped, not fatal:
    the next one carries the data."""
    while True:
        await asyncio.sleep(interval)
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("%s not shared this round: %s", what, exc)
