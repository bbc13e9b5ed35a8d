"""Combos against the fake provider: every strategy's order (distribution tests for the
random ones), fallback between members, nested combos, what the client sees when all
members fail, and `X-OmniRoute-Provider` / `X-OmniRoute-Model` naming the member that served."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import openai
import pytest

from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway
from tests.routing.helpers import HI, chat, combo, connect, error_message, keys_used, models_sent, profile, served

pytestmark = pytest.mark.e2e

A, B, C = "openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1"


def many(gateway: LiveGateway, key: str, model: str, count: int) -> list[str]:
    """`count` requests, a few at a time; the member that served each (all must succeed)."""

    async def run() -> list[str]:
        limit = asyncio.Semaphore(8)
        async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:

            async def one() -> str:
                async with limit:
                    resp = await client.post(
                        f"{gateway.base_url}/chat/completions", json={"model": model, "messages": HI}
                    )
                assert resp.status_code == 200, resp.text
                return served(resp)

            return list(await asyncio.gather(*(one() for _ in range(count))))

    return asyncio.run(run())


def sequence(gateway: LiveGateway, key: str, model: str, count: int) -> list[str]:
    out = []
    for _ in range(count):
        resp = chat(gateway, key, model)
        assert resp.status_code == 200, resp.text
        out.append(served(resp))
    return out


# -- strategies ---------------------------------------------------------------------------------


def test_priority_uses_the_first_member_and_falls_back_in_order(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    combo("prio", [A, B, C])
    assert sequence(gateway, key, "prio", 3) == [A, A, A]

    fake_provider.reset()
    fake_provider.behave(Behaviour(status=500), model="gpt-4o", times=1)
    fake_provider.behave(Behaviour(status=503), model="gpt-4o-mini", times=1)
    resp = chat(gateway, key, "prio")

    assert resp.status_code == 200 and served(resp) == C
    assert resp.headers["x-omniroute-provider"] == "openai" and resp.headers["x-omniroute-model"] == "gpt-4.1"
    assert resp.json()["choices"][0]["message"]["content"] == "Hello from gpt-4.1!"
    assert models_sent(fake_provider.requests) == ["gpt-4o", "gpt-4o-mini", "gpt-4.1"]


def test_fallback_moves_through_accounts_before_members(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider, key="sk-a", priority=1)
    connect(fake_provider, key="sk-b", priority=2)
    combo("accounts-first", [A, B])
    fake_provider.behave(Behaviour(status=500), model="gpt-4o", times=2)

    resp = chat(gateway, key, "accounts-first")

    assert served(resp) == B
    sent = [
        (r.json["model"], k) for r, k in zip(fake_provider.requests, keys_used(fake_provider.requests), strict=True)
    ]
    assert sent == [("gpt-4o", "sk-a"), ("gpt-4o", "sk-b"), ("gpt-4o-mini", "sk-a")]


def test_weighted_follows_the_weights(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider)
    combo("weighted", [{"model": A, "weight": 80}, {"model": B, "weight": 20}], strategy="weighted")

    counts = Counter(many(gateway, key, "weighted", 300))

    # 300 draws at p=0.8: mean 240, sd 6.9. A uniform pick (150) or ignoring weights fails this.
    assert 205 <= counts[A] <= 275, counts
    assert counts[A] + counts[B] == 300
    assert len(fake_provider.requests) == 300


def test_weighted_zero_weight_member_is_only_a_fallback(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    combo("weighted-zero", [{"model": A, "weight": 0}, {"model": B, "weight": 10}], strategy="weighted")
    assert set(many(gateway, key, "weighted-zero", 20)) == {B}
    fake_provider.behave(Behaviour(status=500), model="gpt-4o-mini", times=1)
    assert served(chat(gateway, key, "weighted-zero")) == A


def test_round_robin_rotates_exactly(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider)
    combo("rr", [A, B, C], strategy="round-robin")

    assert sequence(gateway, key, "rr", 7) == [A, B, C, A, B, C, A]
    assert models_sent(fake_provider.requests) == ["gpt-4o", "gpt-4o-mini", "gpt-4.1"] * 2 + ["gpt-4o"]


def test_round_robin_falls_back_to_the_following_member(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    combo("rr-fail", [A, B, C], strategy="round-robin")
    fake_provider.behave(Behaviour(status=503), model="gpt-4o-mini")  # B always fails

    assert sequence(gateway, key, "rr-fail", 3) == [A, C, C]
    assert models_sent(fake_provider.requests) == ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1"]


def test_random_uses_every_member(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider)
    combo("rand", [A, B], strategy="random")

    counts = Counter(many(gateway, key, "rand", 60))

    assert set(counts) == {A, B}
    assert 12 <= counts[A] <= 48, counts  # p=0.5, sd 3.9: far outside means broken


def test_least_used_evens_out(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider)
    combo("least", [A, B, C], strategy="least-used")

    assert sequence(gateway, key, "least", 6) == [A, B, C, A, B, C]

    # A failing member is not counted as used: the next request goes to it again.
    fake_provider.behave(Behaviour(status=500), model="gpt-4o", times=1)
    assert sequence(gateway, key, "least", 2) == [B, A]


def test_cost_optimized_tries_the_cheapest_first(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    for provider in ("openai", "groq", "deepseek"):
        connect(fake_provider, provider=provider)
    # Catalog prices (input + output per 1M tokens): 35.0, 0.13, 0.42.
    members = ["openai/gpt-5.5", "groq/llama-3.1-8b-instant", "ds/deepseek-v4-flash"]
    combo("cheap", members, strategy="cost-optimized")

    assert sequence(gateway, key, "cheap", 2) == ["groq/llama-3.1-8b-instant"] * 2

    fake_provider.behave(Behaviour(status=500), model="llama-3.1-8b-instant", times=1)
    assert served(chat(gateway, key, "cheap")) == "deepseek/deepseek-v4-flash"

    fake_provider.behave(Behaviour(status=500), model="llama-3.1-8b-instant", times=1)
    fake_provider.behave(Behaviour(status=500), model="deepseek-v4-flash", times=1)
    assert served(chat(gateway, key, "cheap")) == "openai/gpt-5.5"


def test_latency_optimized_prefers_the_faster_member(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    combo("fast", [A, B], strategy="latency-optimized")
    fake_provider.behave(Behaviour(delay=0.3), model="gpt-4o")

    # Unmeasured members go first, so both get measured: A (listed first), then B.
    assert sequence(gateway, key, "fast", 2) == [A, B]
    # Then B (fast) is preferred every time.
    assert sequence(gateway, key, "fast", 5) == [B] * 5

    # When the fast one fails, the slow one still serves, and the failure counts as slow.
    fake_provider.behave(Behaviour(status=500), model="gpt-4o-mini", times=3)
    assert sequence(gateway, key, "fast", 3) == [A, A, A]


# -- nesting ------------------------------------------------------------------------------------------


def test_nested_combos_expand_in_place(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider)
    connect(fake_provider, provider="groq")
    combo("leaf", ["groq/llama-3.3-70b-versatile", B])
    combo("middle", [A, "leaf"])
    combo("top", ["middle", C])

    assert served(chat(gateway, key, "top")) == A

    fake_provider.behave(Behaviour(status=500), model="gpt-4o", times=1)
    fake_provider.behave(Behaviour(status=500), model="llama-3.3-70b-versatile", times=1)
    resp = chat(gateway, key, "top")

    assert served(resp) == B
    assert models_sent(fake_provider.requests) == ["gpt-4o", "gpt-4o", "llama-3.3-70b-versatile", "gpt-4o-mini"]


def test_nested_round_robin_inside_priority(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider)
    combo("inner-rr", [A, B], strategy="round-robin")
    combo("outer-prio", ["inner-rr", C])

    assert sequence(gateway, key, "outer-prio", 4) == [A, B, A, B]


def test_alias_to_a_combo(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    from gateway.models import ModelAlias

    connect(fake_provider)
    combo("team-default", [B, A])
    ModelAlias.objects.create(alias="smart", model="team-default")
    assert served(chat(gateway, key, "smart")) == B


# -- when every member fails --------------------------------------------------------------------


def test_all_members_fail_first_status_last_message_earliest_retry_after(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    combo("doomed", [A, B, C])
    fake_provider.behave(
        Behaviour(status=429, error_message="A limited", headers={"Retry-After": "40"}), model="gpt-4o"
    )
    fake_provider.behave(
        Behaviour(status=503, error_message="B overloaded", headers={"Retry-After": "12"}), model="gpt-4o-mini"
    )
    fake_provider.behave(Behaviour(status=500, error_message="C broke last"), model="gpt-4.1")

    resp = chat(gateway, key, "doomed")

    assert resp.status_code == 429
    assert error_message(resp) == "[openai/gpt-4.1] C broke last"
    assert resp.headers["retry-after"] == "12"
    assert models_sent(fake_provider.requests) == ["gpt-4o", "gpt-4o-mini", "gpt-4.1"]


def test_all_members_fail_through_the_openai_sdk(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider)
    combo("sdk-doomed", [A, B])
    fake_provider.behave(Behaviour(status=502, error_message="bad gateway upstream"))
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)

    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="sdk-doomed", messages=HI)

    assert info.value.status_code == 502
    assert "[openai/gpt-4o-mini] bad gateway upstream" in info.value.message


def test_plain_400_is_not_retried_on_other_members(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider, key="sk-a", priority=1)
    connect(fake_provider, key="sk-b", priority=2)
    combo("strict", [A, B])
    fake_provider.behave(Behaviour(status=400, error_message="messages[0].content is invalid"), times=1)

    resp = chat(gateway, key, "strict")

    assert resp.status_code == 400
    assert error_message(resp) == "[openai/gpt-4o] messages[0].content is invalid"
    assert len(fake_provider.requests) == 1


def test_provider_scoped_400_moves_to_the_next_member(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider, key="sk-a", priority=1)
    connect(fake_provider, key="sk-b", priority=2)
    combo("scoped", [A, B])
    message = "Unsupported parameter: 'max_tokens' is not supported with this model."
    fake_provider.behave(Behaviour(status=400, error_message=message), model="gpt-4o", times=1)

    resp = chat(gateway, key, "scoped", max_tokens=5)

    assert resp.status_code == 200 and served(resp) == B
    # Not retried on the second account of the same model: the model is the problem.
    assert [
        (r.json["model"], k) for r, k in zip(fake_provider.requests, keys_used(fake_provider.requests), strict=True)
    ] == [
        ("gpt-4o", "sk-a"),
        ("gpt-4o-mini", "sk-a"),
    ]


def test_404_moves_to_the_next_member_not_the_next_account(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider, key="sk-a", priority=1)
    connect(fake_provider, key="sk-b", priority=2)
    combo("missing-first", [A, B])
    fake_provider.behave(Behaviour(status=404), model="gpt-4o", times=1)

    resp = chat(gateway, key, "missing-first")

    assert served(resp) == B
    assert models_sent(fake_provider.requests) == ["gpt-4o", "gpt-4o-mini"]


def test_member_without_accounts_is_skipped(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider)  # openai only: groq has no connection
    combo("partial", ["groq/llama-3.3-70b-versatile", A])
    resp = chat(gateway, key, "partial")
    assert resp.status_code == 200 and served(resp) == A
    assert models_sent(fake_provider.requests) == ["gpt-4o"]


def test_member_whose_accounts_cool_down_is_skipped_without_a_call(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider, provider="groq")
    connect(fake_provider)
    combo("cooling", ["groq/llama-3.3-70b-versatile", A])
    fake_provider.behave(Behaviour(status=429, headers={"Retry-After": "60"}), model="llama-3.3-70b-versatile", times=1)

    assert sequence(gateway, key, "cooling", 3) == [A, A, A]
    assert models_sent(fake_provider.requests) == ["llama-3.3-70b-versatile", "gpt-4o", "gpt-4o", "gpt-4o"]


# -- streams -----------------------------------------------------------------------------------------


def test_stream_fallback_before_the_first_byte_is_invisible(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, settings: pytest.FixtureRequest
) -> None:
    settings.UPSTREAM_FIRST_BYTE_TIMEOUT = 0.3  # type: ignore[attr-defined]
    connect(fake_provider)
    combo("stream-combo", [A, B, C])
    fake_provider.behave(Behaviour(status=503), model="gpt-4o", times=1)
    fake_provider.behave(Behaviour(stall=True), model="gpt-4o-mini", times=1)
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(model="stream-combo", messages=HI, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)

    assert text == "Hello from gpt-4.1!"
    assert raw.headers["x-omniroute-model"] == "gpt-4.1"
    assert models_sent(fake_provider.requests) == ["gpt-4o", "gpt-4o-mini", "gpt-4.1"]


def test_anthropic_client_falls_back_across_members(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    combo("claude-style", [A, B])
    fake_provider.behave(Behaviour(status=500), model="gpt-4o", times=1)

    resp = httpx.post(
        f"{gateway.base_url}/messages",
        json={"model": "claude-style", "max_tokens": 50, "messages": HI},
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )

    assert resp.status_code == 200, resp.text
    assert resp.json()["content"][0]["text"] == "Hello from gpt-4o-mini!"
    assert served(resp) == B


# -- combo member circuit breaker --------------------------------------------------------------------


def test_member_breaker_pauses_a_failing_member(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    profile(breaker_failure_threshold=2, breaker_reset_seconds=60)
    connect(fake_provider, provider="groq")
    connect(fake_provider)
    combo("paused", ["groq/llama-3.3-70b-versatile", A])
    fake_provider.behave(Behaviour(status=404), model="llama-3.3-70b-versatile")

    assert sequence(gateway, key, "paused", 4) == [A] * 4
    # Two 404s open the member's breaker; after that the member is skipped without a call.
    assert models_sent(fake_provider.requests) == ["llama-3.3-70b-versatile", "gpt-4o"] * 2 + ["gpt-4o"] * 2


# -- combo config: maxAttempts and timeoutMs ----------------------------------------------------------


def test_max_attempts_limits_upstream_calls(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider, key="sk-a", priority=1)
    connect(fake_provider, key="sk-b", priority=2)
    limited = combo("limited", [A, B, C])
    limited.config = {"maxAttempts": 3}
    limited.save()
    fake_provider.behave(Behaviour(status=500, error_message="down"))

    resp = chat(gateway, key, "limited")

    assert resp.status_code == 500
    # gpt-4o on both accounts, gpt-4o-mini on the first: three calls, then the request ends.
    assert models_sent(fake_provider.requests) == ["gpt-4o", "gpt-4o", "gpt-4o-mini"]
    assert error_message(resp) == "[openai/gpt-4o-mini] down"


def test_timeout_ms_bounds_the_whole_fallback(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, settings: pytest.FixtureRequest
) -> None:
    import time

    settings.UPSTREAM_FIRST_BYTE_TIMEOUT = 30  # type: ignore[attr-defined]
    connect(fake_provider)
    hurried = combo("hurried", [A, B])
    hurried.config = {"timeoutMs": 400}
    hurried.save()
    fake_provider.behave(Behaviour(stall=True), model="gpt-4o")

    started = time.monotonic()
    resp = chat(gateway, key, "hurried")

    assert time.monotonic() - started < 3
    assert resp.status_code == 504  # the stalled attempt ran out of the combo's time; B is not started
    assert models_sent(fake_provider.requests) == ["gpt-4o"]
    fake_provider.wait_for_cancelled(1)
