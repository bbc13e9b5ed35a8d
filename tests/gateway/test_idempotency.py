"""Idempotency end to end: official SDKs against the running gateway, upstream calls counted
at the fake provider, which is slowed down so that duplicates overlap."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from django.conf import settings as django_settings

from gateway import idempotency
from gateway.cache_stats import idempotency_clear, idempotency_stats
from tests.e2e.test_openai_chat import make_connection, make_key
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e
MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _fresh_stores() -> Iterator[None]:
    """No answer of an earlier test (in this process or in Redis) counts here."""
    idempotency._slots.clear()
    if django_settings.REDIS_URL:
        from gateway.redis_client import get_sync_redis

        redis = get_sync_redis()
        keys = list(redis.scan_iter(match="omniroute:idem:*", count=500))
        if keys:
            redis.delete(*keys)
    yield
    idempotency._slots.clear()


def new_key() -> str:
    return f"idem-{uuid.uuid4().hex}"


def chat(gateway: LiveGateway, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


async def _raw_chat(client: openai.AsyncOpenAI, idem: str, **kw: Any) -> tuple[dict[str, str], bytes]:
    response = await client.chat.completions.with_raw_response.create(
        model="openai/gpt-4o", messages=MESSAGES, extra_headers={"Idempotency-Key": idem}, **kw
    )
    return dict(response.headers), response.content


def chat_requests(fake: FakeProvider) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


def test_concurrent_duplicates_make_one_upstream_call(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(delay=0.6, reply="only once"))
    idem = new_key()

    async def main() -> list[tuple[dict[str, str], bytes]]:
        async with chat(gateway, key) as client:
            return await asyncio.gather(*(_raw_chat(client, idem) for _ in range(3)))

    answers = asyncio.run(main())
    assert chat_requests(fake_provider) == 1
    assert len({body for _, body in answers}) == 1
    assert b"only once" in answers[0][1]
    replayed = [h.get("x-omniroute-idempotent") for h, _ in answers]
    assert sorted(replayed, key=str) == [None, "true", "true"]
    # A later duplicate, within the window, is replayed too.
    headers, body = asyncio.run(_one(gateway, key, idem))
    assert headers.get("x-omniroute-idempotent") == "true" and body == answers[0][1]
    assert chat_requests(fake_provider) == 1
    assert idempotency_stats()["activeKeys"] >= 1


async def _one(gateway: LiveGateway, key: str, idem: str) -> tuple[dict[str, str], bytes]:
    async with chat(gateway, key) as client:
        return await _raw_chat(client, idem)


def _raw_stream(gateway: LiveGateway, key: str, headers: dict[str, str]) -> tuple[httpx.Headers, bytes]:
    body = {"model": "openai/gpt-4o", "messages": MESSAGES, "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        return response.headers, response.read()


def test_concurrent_duplicate_streams_make_one_upstream_call(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(delay=0.3, chunk_delay=0.05, reply="a streamed answer in several words"))
    idem = new_key()

    async def sdk_stream(client: openai.AsyncOpenAI) -> str:
        stream: Any = await client.chat.completions.create(
            model="openai/gpt-4o", messages=MESSAGES, stream=True, extra_headers={"Idempotency-Key": idem}
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    async def main() -> list[Any]:
        async with chat(gateway, key) as client:
            raw = asyncio.to_thread(_raw_stream, gateway, key, {"Idempotency-Key": idem})
            return list(await asyncio.gather(sdk_stream(client), sdk_stream(client), raw))

    first, second, (_, raw_body) = asyncio.run(main())
    assert first == second == "a streamed answer in several words"
    assert chat_requests(fake_provider) == 1
    # The replay is a stream: the same bytes as the first answer.
    headers, body = _raw_stream(gateway, key, {"Idempotency-Key": idem})
    assert headers["x-omniroute-idempotent"] == "true"
    assert headers["content-type"].startswith("text/event-stream")
    assert body == raw_body and body.endswith(b"data: [DONE]\n\n")
    assert chat_requests(fake_provider) == 1


def test_anthropic_stream_duplicate_replays_as_a_stream(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(delay=0.3, reply="translated once"))
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    idem = new_key()

    def one() -> str:
        with client.messages.stream(
            model="openai/gpt-4o",
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"Idempotency-Key": idem},
        ) as stream:
            return "".join(stream.text_stream)

    async def main() -> list[str]:
        return list(await asyncio.gather(asyncio.to_thread(one), asyncio.to_thread(one)))

    assert asyncio.run(main()) == ["translated once", "translated once"]
    assert one() == "translated once"
    assert chat_requests(fake_provider) == 1


def test_after_the_window_a_new_call_is_made(gateway: LiveGateway, fake_provider: FakeProvider, settings: Any) -> None:
    settings.IDEMPOTENCY_WINDOW_MS = 300
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    idem = new_key()
    asyncio.run(_one(gateway, key, idem))
    headers, _ = asyncio.run(_one(gateway, key, idem))
    assert headers.get("x-omniroute-idempotent") == "true"
    time.sleep(0.5)
    headers, _ = asyncio.run(_one(gateway, key, idem))
    assert "x-omniroute-idempotent" not in headers
    assert chat_requests(fake_provider) == 2


def test_keys_do_not_share_and_request_id_is_the_fallback(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    first, second = make_key(), make_key()
    rid = new_key()

    def post(key: str) -> httpx.Response:
        return httpx.post(
            f"{gateway.base_url}/chat/completions",
            json={"model": "openai/gpt-4o", "messages": MESSAGES},
            headers={"Authorization": f"Bearer {key}", "X-Request-Id": rid},
        )

    assert "x-omniroute-idempotent" not in post(first).headers
    assert "x-omniroute-idempotent" not in post(second).headers  # another key: its own call
    again = post(first)
    assert again.headers["x-omniroute-idempotent"] == "true" and again.headers["x-request-id"] == rid
    assert chat_requests(fake_provider) == 2


def test_failed_first_request_is_not_replayed(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(delay=0.3, status=400, error_message="bad thing"), times=1)
    idem = new_key()

    async def attempt(client: openai.AsyncOpenAI) -> str:
        try:
            headers, _ = await _raw_chat(client, idem)
        except openai.BadRequestError:
            return "failed"
        return "replayed" if headers.get("x-omniroute-idempotent") else "served"

    async def main() -> list[str]:
        async with chat(gateway, key) as client:
            return list(await asyncio.gather(attempt(client), attempt(client)))

    # The duplicate waited for the failure, then ran itself (and succeeded).
    assert sorted(asyncio.run(main())) == ["failed", "served"]
    assert chat_requests(fake_provider) == 2


def test_same_key_with_another_body_is_422(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    idem = new_key()
    client.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES, extra_headers={"Idempotency-Key": idem})
    with pytest.raises(openai.UnprocessableEntityError, match="different request body"):
        client.chat.completions.create(
            model="openai/gpt-4o",
            messages=[{"role": "user", "content": "something else"}],
            extra_headers={"Idempotency-Key": idem},
        )


def test_progress_frames_are_not_replayed_to_a_client_that_did_not_ask(
    gateway: LiveGateway, fake_provider: FakeProvider, settings: Any
) -> None:
    settings.PROGRESS_INTERVAL_MS = 50
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(chunk_delay=0.05, reply="several words to stream slowly"))
    idem = new_key()
    headers, first = _raw_stream(gateway, key, {"Idempotency-Key": idem, "X-OmniRoute-Progress": "true"})
    assert headers["x-omniroute-progress"] == "enabled" and b": progress " in first
    headers, plain = _raw_stream(gateway, key, {"Idempotency-Key": idem})
    assert headers["x-omniroute-idempotent"] == "true" and "x-omniroute-progress" not in headers
    assert b"progress" not in plain
    assert plain == b"".join(f + b"\n\n" for f in first.split(b"\n\n") if f and not f.startswith(b": progress"))
    headers, again = _raw_stream(gateway, key, {"Idempotency-Key": idem, "X-OmniRoute-Progress": "true"})
    assert headers["x-omniroute-progress"] == "enabled"
    assert again.startswith(plain) and b'"done":true' in again[len(plain) :]
    assert chat_requests(fake_provider) == 1


def test_embeddings_duplicates_make_one_upstream_call(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(delay=0.4))
    idem = new_key()

    async def embed(client: openai.AsyncOpenAI) -> tuple[dict[str, str], bytes]:
        response = await client.embeddings.with_raw_response.create(
            model="openai/text-embedding-3-small", input="hello", extra_headers={"Idempotency-Key": idem}
        )
        return dict(response.headers), response.content

    async def main() -> list[tuple[dict[str, str], bytes]]:
        async with chat(gateway, key) as client:
            return list(await asyncio.gather(embed(client), embed(client)))

    (headers_a, body_a), (headers_b, body_b) = asyncio.run(main())
    assert body_a == body_b
    assert {headers_a.get("x-omniroute-idempotent"), headers_b.get("x-omniroute-idempotent")} == {None, "true"}
    assert sum(1 for r in fake_provider.requests if r.path.endswith("/embeddings")) == 1


def test_duplicate_of_a_request_whose_client_left_runs_itself(
    gateway: LiveGateway, fake_provider: FakeProvider
) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(delay=1.0, reply="second try"))
    idem = new_key()

    async def leaver() -> None:
        async with chat(gateway, key) as client:
            with pytest.raises(openai.APITimeoutError):
                await client.with_options(timeout=0.3).chat.completions.create(
                    model="openai/gpt-4o", messages=MESSAGES, extra_headers={"Idempotency-Key": idem}
                )

    async def main() -> tuple[dict[str, str], bytes]:
        first = asyncio.create_task(leaver())
        await asyncio.sleep(0.1)
        answer = await _one(gateway, key, idem)  # waits for the first, which is cancelled
        await first
        return answer

    headers, body = asyncio.run(main())
    assert b"second try" in body and "x-omniroute-idempotent" not in headers
    fake_provider.wait_for_cancelled(1)
    assert chat_requests(fake_provider) == 2


def test_stats_and_clear(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    assert idempotency_stats() == {"activeKeys": 0, "windowMs": 5000}
    idem = new_key()
    asyncio.run(_one(gateway, key, idem))
    assert idempotency_stats() == {"activeKeys": 1, "windowMs": 5000}
    idempotency_clear()
    assert idempotency_stats()["activeKeys"] == 0
    headers, _ = asyncio.run(_one(gateway, key, idem))
    assert "x-omniroute-idempotent" not in headers  # forgotten: it ran again
    assert chat_requests(fake_provider) == 2
