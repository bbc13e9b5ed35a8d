"""Idempotency across two real gateway processes sharing one Redis: one upstream call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest
import redis

from tests.e2e.test_openai_chat import make_connection, make_key
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import GatewayProcess
from tests.redis_db import flushable_redis_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
# This helper's scratch Redis database (tests of other features use other numbers).
REDIS_URL = flushable_redis_url()


@dataclass
class Servers:
    first: GatewayProcess
    second: GatewayProcess
    key: str
    limited: str  # a key with maxSessions 1


@pytest.fixture
def two_processes(fake_provider: FakeProvider) -> Iterator[Servers]:
    """Two servers on the test database and one Redis, started after the keys exist (a key
    written by this process later would only reach them through the database poll)."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    limited = make_key(max_sessions=1)
    env = {"REDIS_URL": REDIS_URL, "IDEMPOTENCY_WINDOW_MS": "10000"}
    first = GatewayProcess(extra_env=env).start()
    try:
        second = GatewayProcess(extra_env=env).start()
    except Exception:
        first.stop()
        raise
    yield Servers(first, second, key, limited)
    first.stop()
    second.stop()


def _chat_calls(fake: FakeProvider) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


def test_duplicates_on_two_processes_make_one_upstream_call(
    two_processes: Servers, fake_provider: FakeProvider
) -> None:
    first, second, key = two_processes.first, two_processes.second, two_processes.key
    fake_provider.reset()
    fake_provider.behave(Behaviour(delay=1.0, reply="shared once"))
    idem = f"two-{uuid.uuid4().hex}"

    async def ask(proc: GatewayProcess, pause: float) -> tuple[dict[str, str], bytes]:
        await asyncio.sleep(pause)
        async with openai.AsyncOpenAI(base_url=proc.base_url, api_key=key, max_retries=0) as client:
            response = await client.chat.completions.with_raw_response.create(
                model="openai/gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"Idempotency-Key": idem},
            )
            return dict(response.headers), response.content

    async def main() -> list[tuple[dict[str, str], bytes]]:
        return list(await asyncio.gather(ask(first, 0), ask(second, 0.3)))

    (headers_a, body_a), (headers_b, body_b) = asyncio.run(main())
    assert body_a == body_b and b"shared once" in body_a
    assert "x-omniroute-idempotent" not in headers_a and headers_b["x-omniroute-idempotent"] == "true"
    # After completion, a duplicate on the process that did not serve it (it keeps no copy of
    # an answer it replayed) gets it from Redis.
    headers_c, body_c = asyncio.run(ask(second, 0))
    assert body_c == body_a and headers_c["x-omniroute-idempotent"] == "true"
    assert _chat_calls(fake_provider) == 1


def test_stream_duplicate_on_another_process_is_replayed_as_a_stream(
    two_processes: Servers, fake_provider: FakeProvider
) -> None:
    first, second, key = two_processes.first, two_processes.second, two_processes.key
    fake_provider.reset()
    fake_provider.behave(Behaviour(delay=0.5, chunk_delay=0.05, reply="a stream shared by two processes"))
    idem = f"two-{uuid.uuid4().hex}"
    body: Any = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    def read(proc: GatewayProcess) -> tuple[httpx.Headers, bytes]:
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idem}
        with httpx.stream("POST", f"{proc.base_url}/chat/completions", json=body, headers=headers, timeout=30) as r:
            assert r.status_code == 200
            return r.headers, r.read()

    async def main() -> list[tuple[httpx.Headers, bytes]]:
        async def later() -> tuple[httpx.Headers, bytes]:
            await asyncio.sleep(0.2)
            return await asyncio.to_thread(read, second)

        return list(await asyncio.gather(asyncio.to_thread(read, first), later()))

    (_, raw_a), (headers_b, raw_b) = asyncio.run(main())
    assert raw_a == raw_b and raw_a.endswith(b"data: [DONE]\n\n")
    assert headers_b["x-omniroute-idempotent"] == "true"
    assert headers_b["content-type"].startswith("text/event-stream")
    assert _chat_calls(fake_provider) == 1


def test_max_sessions_holds_across_processes(two_processes: Servers, fake_provider: FakeProvider) -> None:
    first, second, key = two_processes.first, two_processes.second, two_processes.limited
    ask: Any = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": f"topic {uuid.uuid4()}"}]}

    def post(proc: GatewayProcess, body: Any) -> httpx.Response:
        return httpx.post(f"{proc.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})

    opened = post(first, ask)
    assert opened.status_code == 200
    session = opened.headers["x-omniroute-session-id"]
    other = post(second, {**ask, "messages": [{"role": "user", "content": "another conversation"}]})
    assert other.status_code == 429 and "at most 1 active sessions" in other.json()["error"]["message"]
    same = post(second, ask)  # the open session, continued on the other process
    assert same.status_code == 200 and same.headers["x-omniroute-session-id"] == session


def test_a_process_that_dies_mid_request_frees_its_key(two_processes: Servers, fake_provider: FakeProvider) -> None:
    first, second, key = two_processes.first, two_processes.second, two_processes.key
    fake_provider.reset()
    fake_provider.behave(Behaviour(stall=True), times=1)
    idem = f"two-{uuid.uuid4().hex}"
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": idem}

    def doomed() -> None:
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"{first.base_url}/chat/completions", json=body, headers=headers, timeout=30)

    async def main() -> httpx.Response:
        lost = asyncio.create_task(asyncio.to_thread(doomed))
        while not fake_provider.requests:  # the first request is upstream, holding the key
            await asyncio.sleep(0.02)
        first.stop()  # SIGKILL: no chance to release the lock
        await lost
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(f"{second.base_url}/chat/completions", json=body, headers=headers)

    answer = asyncio.run(main())
    assert answer.status_code == 200 and "x-omniroute-idempotent" not in answer.headers
    assert _chat_calls(fake_provider) == 2
