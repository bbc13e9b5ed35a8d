"""Per-key limits through the running gateway with the official SDKs: requests per minute
hold exactly under concurrency, requests per day, tokens per minute, the 429s (Retry-After,
a message naming the limit, X-RateLimit headers), every usage endpoint, and the keys API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from django.test import Client

from gateway.limits import limits_reset
from tests.e2e.test_openai_chat import client, make_connection
from tests.factories import ApiKeyFactory
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway

HI: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def fresh_counters() -> Iterator[None]:
    """Every limit counter forgotten before and after the test (this process and Redis)."""
    limits_reset()
    yield
    limits_reset()


def fresh_minute(needed: float = 20) -> None:
    """Counters are fixed per-minute windows: start a burst with `needed` seconds of the
    minute left, so that it cannot straddle two windows."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.05)


async def burst(base_url: str, key: str, count: int) -> list[int | openai.RateLimitError]:
    """`count` chat requests at once; each result is 200 or the RateLimitError."""
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0)

    async def one() -> int | openai.RateLimitError:
        try:
            await sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
            return 200
        except openai.RateLimitError as err:
            return err

    try:
        return list(await asyncio.gather(*(one() for _ in range(count))))
    finally:
        await sdk.close()


def test_rpm_admits_exactly_the_limit_under_concurrency(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    _, key = ApiKeyFactory.create_with_key(name="crawler", max_requests_per_minute=10)
    fake_provider.behave(Behaviour(delay=0.3))  # all 30 are in flight together
    fresh_minute()
    results = asyncio.run(burst(gateway.base_url, key, 30))

    assert results.count(200) == 10
    refused = [r for r in results if isinstance(r, openai.RateLimitError)]
    assert len(refused) == 20
    err = refused[0]
    assert "'crawler'" in err.message and "limit of 10 requests per minute" in err.message
    assert err.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    retry_after = int(err.response.headers["retry-after"])
    assert 1 <= retry_after <= 60 and f"retry in {retry_after} s" in err.message
    assert err.response.headers["x-ratelimit-reset-requests"] == f"{retry_after}s"
    assert err.response.headers["x-ratelimit-limit-requests"] == "10"
    assert err.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(fake_provider.requests) == 10  # refused ones never reach the provider


def test_rpd_counts_the_day(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    _, key = ApiKeyFactory.create_with_key(name="trial", max_requests_per_day=3, max_requests_per_minute=100)
    sdk = client(gateway, key)
    for _ in range(3):
        sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    with pytest.raises(openai.RateLimitError, match="limit of 3 requests per day") as caught:
        sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    assert int(caught.value.response.headers["retry-after"]) <= 24 * 3600 + 3600


def test_tpm_refuses_once_the_minute_reached_the_limit(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    _, key = ApiKeyFactory.create_with_key(name="summarizer", max_tokens_per_minute=1500)
    fake_provider.behave(Behaviour(prompt_tokens=600, completion_tokens=400))
    fresh_minute()
    sdk = client(gateway, key)
    sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    gateway.wait_idle()  # tokens are counted once the request has finished
    sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)  # 1000 < 1500: admitted
    gateway.wait_idle()
    with pytest.raises(openai.RateLimitError, match="limit of 1500 tokens per minute") as caught:
        sdk.chat.completions.create(model="openai/gpt-4o", messages=HI)
    assert caught.value.response.headers["x-ratelimit-limit-tokens"] == "1500"
    assert len(fake_provider.requests) == 2


@pytest.mark.parametrize(
    ("path", "client_format"),
    [
        ("/v1/messages", "anthropic"),
        ("/v1/responses", "responses"),
        ("/v1beta/models/openai/gpt-4o:generateContent", "gemini"),
        ("/v1/embeddings", "openai"),
        ("/v1/api/chat", "ollama"),
    ],
)
def test_other_endpoints_are_limited_in_their_own_format(
    gateway: LiveGateway, fake_provider: FakeProvider, path: str, client_format: str
) -> None:
    make_connection(fake_provider.openai_base_url)
    _, key = ApiKeyFactory.create_with_key(max_requests_per_minute=1)
    fresh_minute(5)
    bodies = {
        "/v1/messages": {"model": "openai/gpt-4o", "max_tokens": 10, "messages": HI},
        "/v1/embeddings": {"model": "openai/text-embedding-3-small", "input": "hi"},
        "/v1/api/chat": {"model": "openai/gpt-4o", "messages": HI, "stream": False},
        "/v1/responses": {"model": "openai/gpt-4o", "input": "hi"},
        "/v1beta/models/openai/gpt-4o:generateContent": {"contents": [{"parts": [{"text": "hi"}]}]},
    }
    headers = {"Authorization": f"Bearer {key}"}
    first = httpx.post(f"{gateway.url}{path}", json=bodies[path], headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    second = httpx.post(f"{gateway.url}{path}", json=bodies[path], headers=headers, timeout=30)
    assert second.status_code == 429 and "retry-after" in second.headers
    body = second.json()
    if client_format == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    if client_format == "gemini":
        assert body["error"]["status"] == "RESOURCE_EXHAUSTED"
    message = body["error"]["message"] if isinstance(body["error"], dict) else body["error"]
    assert "1 requests per minute" in message


def test_keys_without_limits_are_not_counted(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    from gateway.counters import counters

    make_connection(fake_provider.openai_base_url)
    _, key = ApiKeyFactory.create_with_key()
    assert asyncio.run(burst(gateway.base_url, key, 12)).count(200) == 12
    assert counters().values == {}


@pytest.mark.django_db
def test_keys_api_exposes_max_tokens_per_minute(staff: Client) -> None:
    resp = staff.post("/api/keys", {"name": "tpm", "maxTokensPerMinute": 5000}, content_type="application/json")
    assert resp.status_code == 201, resp.content
    key_id = resp.json()["id"]
    listed = {k["id"]: k for k in staff.get("/api/keys").json()["keys"]}
    assert listed[key_id]["maxTokensPerMinute"] == 5000
    resp = staff.patch(f"/api/keys/{key_id}", {"maxTokensPerMinute": 0}, content_type="application/json")
    assert resp.status_code == 400 and "maxTokensPerMinute" in str(resp.json())
    resp = staff.patch(f"/api/keys/{key_id}", {"maxTokensPerMinute": None}, content_type="application/json")
    assert resp.status_code == 200 and resp.json()["maxTokensPerMinute"] is None
