"""The production server command in separate processes: config propagation and graceful shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.test_openai_chat import make_connection, make_key
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import GatewayProcess
from usage.models import UsageRecord

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def gateway_process() -> Iterator[GatewayProcess]:
    proc = GatewayProcess().start()
    yield proc
    proc.stop()


def test_key_created_elsewhere_is_accepted_within_a_second(
    gateway_process: GatewayProcess, fake_provider: FakeProvider
) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()  # written by this process; the server process only sees the version move
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}]}
    started = time.monotonic()
    status = 0
    while time.monotonic() - started < 5:
        status = httpx.post(
            f"{gateway_process.base_url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        ).status_code
        if status == 200:
            break
        time.sleep(0.05)
    assert status == 200
    assert time.monotonic() - started < 1.5


def test_sigterm_under_load_loses_no_record(gateway_process: GatewayProcess, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(delay=0.05))
    # Let the server pick up the new key before the load starts.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = httpx.get(f"{gateway_process.base_url}/models", headers={"Authorization": f"Bearer {key}"})
        if r.status_code == 200:
            break
        time.sleep(0.05)

    answered = 0

    async def load() -> None:
        nonlocal answered
        async with openai.AsyncOpenAI(base_url=gateway_process.base_url, api_key=key, max_retries=0) as client:

            async def one() -> None:
                nonlocal answered
                try:
                    await client.chat.completions.create(
                        model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}]
                    )
                    answered += 1
                except openai.APIError:
                    pass

            async def worker() -> None:
                for _ in range(40):
                    await one()

            tasks = [asyncio.create_task(worker()) for _ in range(8)]
            await asyncio.sleep(1.0)
            await asyncio.to_thread(gateway_process.terminate)
            await asyncio.gather(*tasks)

    asyncio.run(load())
    assert answered > 20
    assert UsageRecord.objects.filter(status_code=200).count() == answered
