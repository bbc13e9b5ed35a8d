"""The response cache end to end: the official SDKs against the running gateway, the fake
provider counting the upstream calls (docs/API.md §11)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from google import genai
from google.genai import types

from gateway.cache_store import memory
from tests.e2e.test_openai_chat import client, make_connection, make_key, records
from tests.fakes.provider import Behaviour, FakeProvider
from tests.formats.test_anthropic_sdk import connect
from tests.live_server import LiveGateway

from .cache_helpers import QUESTION, upstream_chats

pytestmark = pytest.mark.e2e
MODEL = "openai/gpt-4o"


def ask(sdk: Any, **extra: Any) -> Any:
    return sdk.chat.completions.with_raw_response.create(model=MODEL, messages=QUESTION, **{"temperature": 0, **extra})


@pytest.fixture
def sdk(gateway: LiveGateway, fake_provider: FakeProvider, cache_on: Any) -> Any:
    make_connection(fake_provider.openai_base_url)
    fake_provider.behave(Behaviour(reply="Paris.", prompt_tokens=12, completion_tokens=2))
    return client(gateway, make_key())


def test_miss_then_hit_and_bypass(gateway: LiveGateway, fake_provider: FakeProvider, sdk: Any) -> None:
    first = ask(sdk)
    second = ask(sdk)
    bypassed = ask(sdk, extra_headers={"X-OmniRoute-No-Cache": "true"})

    assert first.headers["x-omniroute-cache"] == "MISS"
    assert second.headers["x-omniroute-cache"] == "HIT"
    assert "x-omniroute-cache" not in bypassed.headers
    assert [r.parse().choices[0].message.content for r in (first, second, bypassed)] == ["Paris."] * 3
    assert second.headers["x-omniroute-provider"] == "openai" and second.headers["x-omniroute-model"] == "gpt-4o"
    assert second.parse().usage.prompt_tokens == 12
    assert upstream_chats(fake_provider) == 2  # the first call and the bypass
    # A hit is recorded as a 200 of the model that answered, with no tokens (no cost) and no connection.
    # In request order: a miss is recorded only once its answer is stored, after the client has it.
    recs = sorted(records(gateway), key=lambda r: r.request_id)
    assert [(r.status_code, r.provider, r.model) for r in recs] == [(200, "openai", "gpt-4o")] * 3
    assert (recs[1].prompt_tokens, recs[1].completion_tokens, recs[1].connection_id) == (0, 0, None)
    assert recs[0].prompt_tokens == 12 and recs[0].connection_id is not None


def test_what_the_key_ignores_and_what_it_does_not(fake_provider: FakeProvider, sdk: Any) -> None:
    ask(sdk, user="alice", metadata={"a": "b"}, store=False)
    same = ask(sdk, user="bob")
    other_params = ask(sdk, max_tokens=50)
    other_messages = sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "And of Spain?"}], temperature=0
    )

    assert same.headers["x-omniroute-cache"] == "HIT"
    assert other_params.headers["x-omniroute-cache"] == "MISS"
    assert other_messages.headers["x-omniroute-cache"] == "MISS"
    assert upstream_chats(fake_provider) == 3


def test_non_deterministic_requests_are_not_cached_unless_allowed(
    fake_provider: FakeProvider,
    sdk: Any,
    cache_on: Any,
) -> None:
    plain = [sdk.chat.completions.with_raw_response.create(model=MODEL, messages=QUESTION) for _ in range(2)]
    warm = [ask(sdk, temperature=0.7) for _ in range(2)]
    seeded = [ask(sdk, temperature=0.7, seed=42) for _ in range(2)]

    assert all("x-omniroute-cache" not in r.headers for r in plain + warm)
    assert [r.headers["x-omniroute-cache"] for r in seeded] == ["MISS", "HIT"]
    assert upstream_chats(fake_provider) == 5

    cache_on.RESPONSE_CACHE_NON_DETERMINISTIC = True
    allowed = [sdk.chat.completions.with_raw_response.create(model=MODEL, messages=QUESTION) for _ in range(2)]
    assert [r.headers["x-omniroute-cache"] for r in allowed] == ["MISS", "HIT"]


def test_entries_expire_after_the_ttl(fake_provider: FakeProvider, sdk: Any, cache_on: Any) -> None:
    cache_on.RESPONSE_CACHE_TTL_SECONDS = 1
    ask(sdk)
    assert ask(sdk).headers["x-omniroute-cache"] == "HIT"
    time.sleep(1.2)  # past the TTL: a correctness wait, not a timing assertion
    assert ask(sdk).headers["x-omniroute-cache"] == "MISS"
    assert upstream_chats(fake_provider) == 2


def test_memory_tier_is_bounded_by_entries_and_bytes(
    gateway: LiveGateway,
    fake_provider: FakeProvider,
    sdk: Any,
    cache_on: Any,
    staff: Any,
) -> None:
    cache_on.RESPONSE_CACHE_MAX_ENTRIES = 2
    for n in range(3):
        ask(sdk, max_tokens=10 + n)
    gateway.wait_idle()
    assert len(memory) == 2
    body = staff.get("/api/cache").json()["semanticCache"]
    assert (body["memorySize"], body["memoryMaxSize"], body["dbSize"]) == (2, 2, 3)
    # The oldest entry left memory but the persistent tier still answers it.
    assert ask(sdk, max_tokens=10).headers["x-omniroute-cache"] == "HIT"

    cache_on.RESPONSE_CACHE_MAX_ENTRIES = 100
    one = memory.total_bytes // 2
    cache_on.RESPONSE_CACHE_MAX_BYTES = one + one // 2  # room for one answer, not two
    memory.clear()
    ask(sdk, max_tokens=10)
    ask(sdk, max_tokens=11)
    gateway.wait_idle()
    assert len(memory) == 1
    assert upstream_chats(fake_provider) == 3


def test_persistent_tier_survives_losing_the_memory_tier(fake_provider: FakeProvider, sdk: Any) -> None:
    ask(sdk)
    memory.clear()  # what a restart does to this process
    assert ask(sdk).headers["x-omniroute-cache"] == "HIT"
    assert upstream_chats(fake_provider) == 1


def test_a_cached_answer_is_served_as_a_stream_and_a_stream_fills_the_cache(
    fake_provider: FakeProvider, sdk: Any
) -> None:
    ask(sdk)
    with sdk.chat.completions.with_streaming_response.create(
        model=MODEL, messages=QUESTION, temperature=0, stream=True, stream_options={"include_usage": True}
    ) as response:
        assert response.headers["x-omniroute-cache"] == "HIT"
        chunks = list(response.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Paris."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 12

    # The other way round: a streamed answer, then the same request without stream.
    question = [{"role": "user", "content": "Stream this one"}]
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in sdk.chat.completions.create(model=MODEL, messages=question, temperature=0, stream=True)
        if c.choices
    )
    again = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=question, temperature=0)
    assert again.headers["x-omniroute-cache"] == "HIT"
    assert again.parse().choices[0].message.content == streamed == "Paris."
    assert upstream_chats(fake_provider) == 2


def test_tool_calls_are_replayed(fake_provider: FakeProvider, sdk: Any) -> None:
    fake_provider.reset()
    fake_provider.behave(Behaviour(tool_calls=[{"name": "get_weather", "arguments": '{"city":"Paris"}'}]))
    tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    first = sdk.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, tools=tools)
    streamed = list(
        sdk.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, tools=tools, stream=True)
    )

    call = first.choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city":"Paris"}')
    deltas = [tc for c in streamed if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert deltas[0].function.name == "get_weather"
    assert "".join(d.function.arguments or "" for d in deltas) == '{"city":"Paris"}'
    assert upstream_chats(fake_provider) == 1


@pytest.mark.parametrize("upstream", ["anthropic", "openai"])
def test_anthropic_sdk_hit_and_stream_hit(
    gateway: LiveGateway,
    fake_provider: FakeProvider,
    cache_on: Any,
    upstream: str,
) -> None:
    connect(fake_provider, upstream)
    fake_provider.behave(Behaviour(reply="Bonjour !"))
    sdk = anthropic.Anthropic(base_url=gateway.url, api_key=make_key(), max_retries=0)
    model = "anthropic/claude-sonnet-4-5" if upstream == "anthropic" else MODEL
    # (This SDK version has no `temperature` argument.)
    kwargs: Any = {"model": model, "max_tokens": 100, "messages": QUESTION, "extra_body": {"temperature": 0}}

    first = sdk.messages.with_raw_response.create(**kwargs)
    second = sdk.messages.with_raw_response.create(**kwargs)
    with sdk.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert [first.headers["x-omniroute-cache"], second.headers["x-omniroute-cache"]] == ["MISS", "HIT"]
    assert second.parse().content[0].text == "Bonjour !"
    assert text == "Bonjour !" and final.stop_reason == "end_turn"
    assert upstream_chats(fake_provider) == 1


def test_gemini_and_ollama_clients(gateway: LiveGateway, fake_provider: FakeProvider, cache_on: Any) -> None:
    make_connection(fake_provider.openai_base_url)
    fake_provider.behave(Behaviour(reply="Paris."))
    key = make_key()
    gem = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=gateway.url, api_version="v1beta"))
    config = types.GenerateContentConfig(temperature=0)
    texts = [gem.models.generate_content(model=MODEL, contents="Capital of France?", config=config).text]
    texts.append(
        "".join(
            c.text or ""
            for c in gem.models.generate_content_stream(model=MODEL, contents="Capital of France?", config=config)
        )
    )
    olla = ollama.Client(host=gateway.url + "/v1", headers={"Authorization": f"Bearer {key}"})
    question = [{"role": "user", "content": "Capital of France?"}]
    texts.append(
        "".join(
            p.message.content or ""
            for p in olla.chat(model=MODEL, messages=question, options={"temperature": 0}, stream=True)
        )
    )
    texts.append(olla.chat(model=MODEL, messages=question, options={"temperature": 0}).message.content or "")

    # Without ?alt=sse, Gemini streams one JSON array: served from the same entry.
    array = httpx.post(
        f"{gateway.url}/v1beta/models/{MODEL}:streamGenerateContent",
        json={
            "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
            "generationConfig": {"temperature": 0},
        },
        headers={"x-goog-api-key": key},
    )
    assert array.headers["x-omniroute-cache"] == "HIT"
    texts.append("".join(p["text"] for item in array.json() for p in item["candidates"][0]["content"]["parts"]))

    assert texts == ["Paris."] * 5
    assert upstream_chats(fake_provider) == 2  # one per client format


def test_management_api(gateway: LiveGateway, fake_provider: FakeProvider, sdk: Any, staff: Any) -> None:
    ask(sdk)
    ask(sdk)
    ask(sdk, max_tokens=5)
    gateway.wait_idle()  # the answer is stored after the client has it
    body = staff.get("/api/cache").json()
    assert body["semanticCache"] == {"memorySize": 2, "memoryMaxSize": 100, "dbSize": 2, "hitRate": 33.3}
    assert body["idempotency"] == {"activeKeys": 0, "windowMs": 5000}

    assert staff.delete("/api/cache?model=openai/gpt-4o").json() == {"ok": True, "cleared": 2, "scope": "model"}
    assert staff.get("/api/cache").json()["semanticCache"]["dbSize"] == 0
    assert ask(sdk).headers["x-omniroute-cache"] == "MISS"
    gateway.wait_idle()  # stored after the client has it
    assert staff.delete("/api/cache?model=other/model").json()["cleared"] == 0
    assert staff.delete("/api/cache").json() == {"ok": True, "cleared": 1, "scope": "all"}
    assert staff.get("/api/cache").json()["semanticCache"] == {
        "memorySize": 0,
        "memoryMaxSize": 100,
        "dbSize": 0,
        "hitRate": 0.0,
    }
    assert ask(sdk).headers["x-omniroute-cache"] == "MISS"

    assert staff.delete("/api/cache?model=").status_code == 400
    assert staff.delete("/api/cache?signature=x").status_code == 400
    assert httpx.get(f"{gateway.url}/api/cache").status_code in (401, 403)
    assert httpx.delete(f"{gateway.url}/api/cache").status_code in (401, 403)


def test_bad_input_is_a_4xx_with_the_cache_on(gateway: LiveGateway, sdk: Any) -> None:
    headers = {"Authorization": f"Bearer {sdk.api_key}"}
    bodies: list[Any] = [
        {"model": MODEL, "messages": "hi", "temperature": 0},
        {"model": MODEL, "messages": QUESTION, "temperature": "0"},
        {"model": "nope/none", "messages": QUESTION, "temperature": 0},
    ]
    for body in bodies:
        resp = httpx.post(f"{gateway.base_url}/chat/completions", json=body, headers=headers)
        assert 400 <= resp.status_code < 500, (body, resp.text)
        assert "x-omniroute-cache" not in resp.headers
    odd = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": MODEL, "messages": QUESTION, "temperature": 0},
        headers={**headers, "X-OmniRoute-No-Cache": "maybe"},
    )
    assert odd.status_code == 200


def test_failed_answers_are_not_cached(fake_provider: FakeProvider, sdk: Any) -> None:
    fake_provider.reset()
    fake_provider.behave(Behaviour(status=400, error_message="bad"), times=1)
    with pytest.raises(openai.BadRequestError):
        ask(sdk)
    fake_provider.behave(Behaviour(reply="Paris."))
    assert ask(sdk).headers["x-omniroute-cache"] == "MISS"
    assert ask(sdk).headers["x-omniroute-cache"] == "HIT"


def test_responses_api_hit_and_stream_hit(gateway: LiveGateway, fake_provider: FakeProvider, sdk: Any) -> None:
    first = sdk.responses.with_raw_response.create(model=MODEL, input="Capital of France?", temperature=0)
    second = sdk.responses.with_raw_response.create(model=MODEL, input="Capital of France?", temperature=0)
    events = list(sdk.responses.create(model=MODEL, input="Capital of France?", temperature=0, stream=True))

    assert [first.headers["x-omniroute-cache"], second.headers["x-omniroute-cache"]] == ["MISS", "HIT"]
    assert second.parse().output_text == "Paris."
    completed = [e for e in events if e.type == "response.completed"]
    assert completed and completed[0].response.output_text == "Paris."
    assert upstream_chats(fake_provider) == 1


def test_expired_rows_are_purged_and_listed_in_the_admin(staff: Any) -> None:
    """The database tier's housekeeping (with Redis, Redis expires its own keys)."""
    from datetime import UTC, datetime, timedelta

    from gateway.models import CacheEntry
    from gateway.tasks import cache_purge_expired

    now = datetime.now(UTC)
    for key, expires in (("a" * 64, now - timedelta(seconds=1)), ("b" * 64, now + timedelta(hours=1))):
        CacheEntry.objects.create(
            key=key, model="openai/gpt-4o", requested="fast", body=b"{}", size=2, created_at=now, expires_at=expires
        )
    page = staff.get("/admin/gateway/cacheentry/")
    assert page.status_code == 200 and page.content.count(b"openai/gpt-4o") >= 2

    assert cache_purge_expired() == 1
    assert list(CacheEntry.objects.values_list("key", flat=True)) == ["b" * 64]


def upstream_reached(fake: FakeProvider, calls: int = 1) -> None:
    deadline = time.monotonic() + 10
    while upstream_chats(fake) < calls:
        assert time.monotonic() < deadline, "the first request never reached the provider"
        time.sleep(0.01)


def test_identical_requests_in_flight_share_one_upstream_call(fake_provider: FakeProvider, sdk: Any) -> None:
    fake_provider.reset()
    fake_provider.behave(Behaviour(reply="Paris.", prompt_tokens=12, completion_tokens=2, delay=1.0))
    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(ask, sdk)
        upstream_reached(fake_provider)  # the others arrive while the first is upstream
        rest = [pool.submit(ask, sdk) for _ in range(4)]
        answers = [first.result(), *(r.result() for r in rest)]

    assert [a.headers["x-omniroute-cache"] for a in answers] == ["MISS", "HIT", "HIT", "HIT", "HIT"]
    assert {a.parse().choices[0].message.content for a in answers} == {"Paris."}
    assert upstream_chats(fake_provider) == 1


def test_a_stream_does_not_wait_for_an_identical_request_in_flight(fake_provider: FakeProvider, sdk: Any) -> None:
    fake_provider.reset()
    fake_provider.behave(Behaviour(reply="Paris.", prompt_tokens=12, completion_tokens=2, delay=1.0))

    def streamed() -> str:
        chunks = sdk.chat.completions.create(model=MODEL, messages=QUESTION, temperature=0, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(ask, sdk)
        upstream_reached(fake_provider)
        stream = pool.submit(streamed)
        assert stream.result() == "Paris." and first.result().headers["x-omniroute-cache"] == "MISS"
    assert upstream_chats(fake_provider) == 2  # its client gets bytes as they come, not after the first


def test_requests_waiting_for_a_failed_answer_are_answered_on_their_own(fake_provider: FakeProvider, sdk: Any) -> None:
    fake_provider.reset()
    fake_provider.behave(Behaviour(status=400, error_message="bad request here", delay=1.0), times=1)
    fake_provider.behave(Behaviour(reply="Paris.", prompt_tokens=12, completion_tokens=2))

    def status(_: int) -> int:
        try:
            return int(ask(sdk).status_code)
        except openai.APIStatusError as exc:
            return exc.status_code

    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(status, 0)
        upstream_reached(fake_provider)
        rest = list(pool.map(status, range(2)))
    assert [first.result(), *rest] == [400, 200, 200]
    assert upstream_chats(fake_provider) == 3
