"""The single outbound HTTP module: every call to a provider goes through here.

One aiohttp ClientSession per event loop (large per-host pool, keep-alive), created lazily
and closed at shutdown. Timeouts: connect, first byte (response headers), idle stream read.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from django.conf import settings

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = weakref.WeakKeyDictionary()


def get_session() -> aiohttp.ClientSession:
    """The pooled session of the running event loop."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None or session.closed:
        connector = aiohttp.TCPConnector(
            limit=0,  # no global cap; the per-host cap below bounds upstream concurrency
            limit_per_host=1024,
            keepalive_timeout=60,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,
                sock_connect=settings.UPSTREAM_CONNECT_TIMEOUT,
                sock_read=settings.UPSTREAM_IDLE_TIMEOUT,
            ),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            json_serialize=lambda obj: orjson.dumps(obj).decode(),
        )
        _sessions[loop] = session
    return session


async def close_session() -> None:
    loop = asyncio.get_running_loop()
    session = _sessions.pop(loop, None)
    if session is not None and not session.closed:
        await session.close()


@dataclass
class SimpleResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    latency_ms: float

    def json(self) -> Any:
        return orjson.loads(self.body)


async def fetch(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 30.0,
) -> SimpleResponse:
    """A whole request/response exchange, for control-plane calls (tests, model lists).

    Raises aiohttp.ClientError or asyncio.TimeoutError on transport failure.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(timeout):
        async with get_session().request(method, url, headers=headers, data=body) as resp:
            data = await resp.read()
            return SimpleResponse(
                status=resp.status,
                headers={k.lower(): v for k, v in resp.headers.items()},
                body=data,
                latency_ms=(loop.time() - started) * 1000,
            )
