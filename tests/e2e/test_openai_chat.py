"""The official openai SDK against the running gateway and the fake provider."""

from __future__ import annotations

import asyncio
import time

import httpx
import openai
import pytest

from gateway.keys import generate_api_key, hash_api_key, visible_prefix
from gateway.models import ApiKey
from gateway.recorder import recorder
from providers.models import ProviderConnection
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway
from usage.models import UsageRecord

pytestmark = pytest.mark.e2e


def make_key(**fields: object) -> str:
    plain = generate_api_key()
    ApiKey.objects.create(name="test", key_hash=hash_api_key(plain), prefix=visible_prefix(plain), **fields)
    return plain


def make_connection(base_url: str, *, api_key: str = "sk-upstream-1", priority: int = 1, **fields: object) -> int:
    conn = ProviderConnection(
        provider="openai", name=f"acct {priority}", priority=priority, base_url=base_url, **fields
    )
    conn.set_api_key(api_key)
    conn.save()
    return conn.pk


def client(gateway: LiveGateway, key: str, **kw: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0, **kw)  # type: ignore[arg-type]


def records(gateway: LiveGateway) -> list[UsageRecord]:
    """Usage rows, once every request the server is still finishing has been recorded."""
    gateway.wait_idle()
    assert recorder.flush(10)
    return list(UsageRecord.objects.order_by("id"))


def test_non_stream_chat(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url, api_key="sk-upstream-secret")
    key = make_key()
    fake_provider.behave(Behaviour(reply="Hi there", prompt_tokens=11, completion_tokens=3, cached_tokens=4))

    raw = client(gateway, key).chat.completions.with_raw_response.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}]
    )
    completion = raw.parse()

    assert completion.choices[0].message.content == "Hi there"
    assert completion.usage is not None and completion.usage.prompt_tokens == 11
    assert raw.headers["x-omniroute-provider"] == "openai"
    assert raw.headers["x-omniroute-model"] == "gpt-4o-mini"
    assert raw.headers["x-request-id"]
    sent = fake_provider.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json is not None and sent.json["model"] == "gpt-4o-mini"
    assert sent.headers["authorization"] == "Bearer sk-upstream-secret"
    [rec] = records(gateway)
    assert (rec.provider, rec.model, rec.status_code, rec.stream) == ("openai", "gpt-4o-mini", 200, False)
    assert (rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens) == (11, 3, 4)


def test_stream_chat_without_usage_option(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(reply="one two three four", prompt_tokens=5, completion_tokens=4))

    chunks = list(
        client(gateway, key).chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "count"}], stream=True
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    # The gateway asked upstream for usage but the client did not: no usage-only chunk reaches it.
    assert all(c.choices for c in chunks)
    assert fake_provider.requests[-1].json["stream_options"] == {"include_usage": True}
    [rec] = records(gateway)
    assert rec.stream and rec.status_code == 200
    assert (rec.prompt_tokens, rec.completion_tokens) == (5, 4)
    assert rec.ttfb_ms is not None and rec.ttfb_ms <= rec.latency_ms


def test_stream_chat_with_usage_option(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(reply="a b", prompt_tokens=7, completion_tokens=2))

    chunks = list(
        client(gateway, key).chat.completions.create(
            model="openai/gpt-4o",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 7


def test_async_client_concurrent_requests(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()

    async def run() -> list[str]:
        async with openai.AsyncOpenAI(base_url=gateway.base_url, api_key=key, max_retries=0) as aclient:
            results = await asyncio.gather(
                *(
                    aclient.chat.completions.create(
                        model="openai/gpt-4o", messages=[{"role": "user", "content": str(i)}]
                    )
                    for i in range(20)
                )
            )
        return [r.choices[0].message.content or "" for r in results]

    texts = asyncio.run(run())
    assert len(texts) == 20 and all(t == "Hello from gpt-4o!" for t in texts)
    assert len(records(gateway)) == 20


def test_list_models(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    ids = {m.id for m in client(gateway, key).models.list()}
    assert "openai/gpt-4o" in ids
    # Providers without an active connection are not listed.
    assert not any(i.startswith("anthropic/") for i in ids)


def test_fallback_to_next_connection(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url, api_key="sk-first", priority=1)
    make_connection(fake_provider.openai_base_url, api_key="sk-second", priority=2)
    key = make_key()
    fake_provider.behave(Behaviour(status=429, error_message="slow down", headers={"Retry-After": "9"}), times=1)

    completion = client(gateway, key).chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.choices[0].message.content == "Hello from gpt-4o!"
    keys_used = [r.headers["authorization"] for r in fake_provider.requests]
    assert keys_used == ["Bearer sk-first", "Bearer sk-second"]


def test_all_connections_fail_returns_upstream_status_and_retry_after(
    gateway: LiveGateway, fake_provider: FakeProvider
) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(status=429, error_message="rate limited", headers={"Retry-After": "7"}))

    with pytest.raises(openai.RateLimitError) as info:
        client(gateway, key).chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])

    assert info.value.response.headers["retry-after"] == "7"
    assert "rate limited" in info.value.message
    assert len(fake_provider.requests) == 1
    [rec] = records(gateway)
    assert rec.status_code == 429 and "rate limited" in rec.error


def test_plain_400_is_not_retried(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url, priority=1)
    make_connection(fake_provider.openai_base_url, priority=2)
    key = make_key()
    fake_provider.behave(Behaviour(status=400, error_message="bad temperature"))

    with pytest.raises(openai.BadRequestError):
        client(gateway, key).chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert len(fake_provider.requests) == 1


def test_stall_before_first_byte_times_out_then_falls_back(
    gateway: LiveGateway, fake_provider: FakeProvider, settings: pytest.FixtureRequest
) -> None:
    settings.UPSTREAM_FIRST_BYTE_TIMEOUT = 1  # type: ignore[attr-defined]
    make_connection(fake_provider.openai_base_url, api_key="sk-a", priority=1)
    make_connection(fake_provider.openai_base_url, api_key="sk-b", priority=2)
    key = make_key()
    fake_provider.behave(Behaviour(stall=True), times=1)

    completion = client(gateway, key).chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}]
    )
    assert completion.choices[0].message.content == "Hello from gpt-4o!"
    assert [r.headers["authorization"] for r in fake_provider.requests] == ["Bearer sk-a", "Bearer sk-b"]


def test_client_disconnect_cancels_upstream(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(stall=True))

    with pytest.raises(openai.APITimeoutError):
        client(gateway, key, timeout=0.5).chat.completions.create(
            model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}]
        )

    deadline = time.monotonic() + 5
    while not fake_provider.cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_provider.cancelled, "the upstream request was not cancelled when the client went away"
    [rec] = records(gateway)
    assert rec.status_code == 499


def test_client_disconnect_mid_stream_cancels_upstream(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(reply="w " * 50, chunk_delay=0.1))

    stream = client(gateway, key).chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True
    )
    for i, _chunk in enumerate(stream):
        if i == 3:
            break
    stream.close()

    deadline = time.monotonic() + 5
    while not fake_provider.cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_provider.cancelled


def test_upstream_disconnect_mid_stream_ends_with_error_event(
    gateway: LiveGateway, fake_provider: FakeProvider
) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(reply="a b c d e f", disconnect_after_chunks=2))

    with httpx.stream(
        "POST",
        f"{gateway.base_url}/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": True},
        timeout=10,
    ) as resp:
        body = resp.read().decode()
    assert resp.status_code == 200
    events = [e for e in body.split("\n\n") if e]
    assert events[-1].startswith('data: {"error"')
    [rec] = records(gateway)
    assert rec.status_code == 502


def test_malformed_upstream_json_is_a_502(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(body=b"{not json"))
    with pytest.raises(openai.APIStatusError) as info:
        client(gateway, key).chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "invalid JSON" in info.value.message
