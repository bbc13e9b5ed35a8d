"""Fault injection on a single model with one or more accounts (connections): which outcomes
move to the next connection, which cooldown they earn, what the client sees when nothing
works, and that every upstream call is accounted for (none lost, none repeated)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import openai
import pytest

from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway, free_port
from tests.routing.helpers import HI, Admin, chat, connect, error_message, keys_used, profile, served

pytestmark = pytest.mark.e2e

MODEL = "openai/gpt-4o"


def two_accounts(fake: FakeProvider) -> tuple[int, int]:
    return connect(fake, key="sk-a", priority=1), connect(fake, key="sk-b", priority=2)


# -- 429 and Retry-After ---------------------------------------------------------------------


def test_429_with_retry_after_cools_the_account_down_and_the_next_request_skips_it(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=429, error_message="slow down", headers={"Retry-After": "30"}), times=1)

    first = chat(gateway, key, MODEL)
    assert first.status_code == 200 and served(first) == "openai/gpt-4o"
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"]

    second = chat(gateway, key, MODEL)
    assert second.status_code == 200
    # The cooled-down account is not called again.
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b", "sk-b"]
    # A rate limit cools down this model on the account, not the whole account.
    assert admin.connection(a)["state"] == "ready"
    row = admin.cooldown(a, "gpt-4o")
    assert 28 <= row["cooldownSeconds"] <= 30
    assert row["reason"] == "rate limited (429): slow down"


def test_rate_limit_on_one_model_leaves_the_accounts_other_models_usable(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    fake_provider.behave(Behaviour(status=429, headers={"Retry-After": "60"}), model="gpt-4o", times=1)

    assert chat(gateway, key, MODEL).status_code == 429
    assert chat(gateway, key, MODEL).status_code == 429  # cooling: not called
    assert chat(gateway, key, "openai/gpt-4o-mini").status_code == 200

    assert [r.json["model"] for r in fake_provider.requests] == ["gpt-4o", "gpt-4o-mini"]


def test_429_without_retry_after_backs_off_exponentially_per_the_profile(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    profile(cooldown_base_seconds=10, backoff_multiplier=3, cooldown_max_seconds=1000)
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=429), times=1)
    assert chat(gateway, key, MODEL).status_code == 200
    assert 9 <= admin.cooldown(a, "gpt-4o")["cooldownSeconds"] <= 10

    # Cleared by hand; the next 429 without a hint waits three times as long.
    assert admin.post("/models/availability", {"model": MODEL, "clear": True}).status_code == 200
    fake_provider.behave(Behaviour(status=429), times=1)
    assert chat(gateway, key, MODEL).status_code == 200
    assert 29 <= admin.cooldown(a, "gpt-4o")["cooldownSeconds"] <= 30
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b", "sk-a", "sk-b"]


def test_backoff_is_capped_by_the_profile(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    profile(cooldown_base_seconds=10, backoff_multiplier=100, cooldown_max_seconds=50)
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=429), times=1)
    assert chat(gateway, key, MODEL).status_code == 200
    assert 9 <= admin.cooldown(a, "gpt-4o")["cooldownSeconds"] <= 10

    admin.post("/models/availability", {"model": MODEL, "clear": True})
    fake_provider.behave(Behaviour(status=429), times=1)
    assert chat(gateway, key, MODEL).status_code == 200
    assert 49 <= admin.cooldown(a, "gpt-4o")["cooldownSeconds"] <= 50  # min(10 * 100, 50)


def test_all_accounts_rate_limited_returns_429_with_the_earliest_real_retry_after(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=429, error_message="first limit", headers={"Retry-After": "50"}), times=1)
    fake_provider.behave(Behaviour(status=429, error_message="second limit", headers={"Retry-After": "20"}), times=1)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 429
    assert resp.headers["retry-after"] == "20"
    assert error_message(resp) == "[openai/gpt-4o] second limit"
    assert resp.json()["error"]["type"] == "rate_limit_error"
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"]

    # While both cool down the gateway answers at once, with the real remaining wait.
    again = chat(gateway, key, MODEL)
    assert again.status_code == 429
    assert 19 <= int(again.headers["retry-after"]) <= 20
    assert "cooling down" in error_message(again) and "second limit" in error_message(again)
    assert len(fake_provider.requests) == 2


def test_retry_after_as_http_date(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider)
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    fake_provider.behave(Behaviour(status=429, headers={"Retry-After": when}), times=1)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 429
    assert 88 <= int(resp.headers["retry-after"]) <= 90


@pytest.mark.parametrize(
    ("headers", "message", "expected"),
    [
        ({"x-ratelimit-reset-requests": "7s", "x-ratelimit-remaining-requests": "0"}, None, 7),
        ({"x-ratelimit-reset-tokens": "1m30s", "x-ratelimit-remaining-tokens": "0"}, None, 90),
        ({}, "Rate limit reached. Please retry after 25s.", 25),
    ],
)
def test_retry_hints_from_rate_limit_headers_and_body(
    gateway: LiveGateway,
    fake_provider: FakeProvider,
    key: str,
    headers: dict[str, str],
    message: str | None,
    expected: int,
) -> None:
    connect(fake_provider)
    fake_provider.behave(Behaviour(status=429, headers=headers, error_message=message), times=1)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) == expected


def test_openai_sdk_sees_rate_limit_error_with_retry_after(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    fake_provider.behave(Behaviour(status=429, error_message="quota per minute", headers={"Retry-After": "12"}))
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)

    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)

    assert info.value.response.headers["retry-after"] == "12"
    assert "quota per minute" in info.value.message


# -- server errors, timeouts, transport failures ---------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_moves_to_the_next_account_which_then_takes_over_for_a_while(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin, status: int
) -> None:
    profile(cooldown_base_seconds=0.5)
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=status, error_message="node down"), times=1)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"]
    # sk-b served where sk-a failed: sk-a, not the provider, is the problem; it sits out briefly.
    row = admin.cooldown(a, "gpt-4o")
    assert row["reason"] == f"failed ({status}) while another connection served: node down"
    assert chat(gateway, key, MODEL).status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b", "sk-b"]
    time.sleep(0.6)
    assert chat(gateway, key, MODEL).status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b", "sk-b", "sk-a"]
    assert admin.breaker("openai")["failures"] == 0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_error_on_the_only_account_is_returned(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, status: int
) -> None:
    connect(fake_provider)
    fake_provider.behave(Behaviour(status=status, error_message="upstream broke"), times=1)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == status
    assert error_message(resp) == "[openai/gpt-4o] upstream broke"
    assert "retry-after" not in resp.headers
    assert len(fake_provider.requests) == 1


def test_stall_before_first_byte_times_out_and_moves_on(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, settings: pytest.FixtureRequest
) -> None:
    settings.UPSTREAM_FIRST_BYTE_TIMEOUT = 0.3  # type: ignore[attr-defined]
    two_accounts(fake_provider)
    fake_provider.behave(Behaviour(stall=True), times=1)

    started = time.monotonic()
    resp = chat(gateway, key, MODEL, stream=True)

    assert resp.status_code == 200 and "Hello" in resp.text
    assert time.monotonic() - started < 5
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"]
    fake_provider.wait_for_cancelled(1)  # the stalled request was abandoned, not left open


def test_timeout_on_the_only_account_is_a_504(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, settings: pytest.FixtureRequest
) -> None:
    settings.UPSTREAM_FIRST_BYTE_TIMEOUT = 0.3  # type: ignore[attr-defined]
    connect(fake_provider)
    fake_provider.behave(Behaviour(stall=True), times=1)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 504
    assert "did not answer in time" in error_message(resp)
    assert len(fake_provider.requests) == 1


def test_connection_refused_moves_to_the_next_account(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    dead = connect(f"http://127.0.0.1:{free_port()}/v1", key="sk-dead", priority=1)
    connect(fake_provider, key="sk-b", priority=2)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 200 and served(resp) == "openai/gpt-4o"
    assert keys_used(fake_provider.requests) == ["sk-b"]
    # The dead account is left out for a while (nothing else can observe it: it is never reached).
    assert (
        "failed (502) while another connection served: Cannot reach upstream"
        in admin.cooldown(dead, "gpt-4o")["reason"]
    )


def test_connection_refused_on_the_only_account_is_a_502(gateway: LiveGateway, key: str) -> None:
    connect(f"http://127.0.0.1:{free_port()}/v1")

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 502
    assert "Cannot reach upstream" in error_message(resp)


def test_disconnect_mid_stream_is_not_retried_and_ends_with_an_error_event(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    two_accounts(fake_provider)
    fake_provider.behave(Behaviour(reply="one two three four five", disconnect_after_chunks=2), times=1)
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)

    text = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model=MODEL, messages=HI, stream=True):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""

    assert text == "one two "  # what was relayed before the break stays; nothing is repeated
    assert "upstream stream failed" in str(info.value.message)
    assert keys_used(fake_provider.requests) == ["sk-a"]  # no fallback after the first byte


def test_error_event_before_the_first_byte_falls_back_invisibly(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    two_accounts(fake_provider)
    error_event = b'data: {"error": {"message": "overloaded, try later", "type": "server_error"}}\n\n'
    fake_provider.behave(Behaviour(body=error_event), times=1)

    resp = chat(gateway, key, MODEL, stream=True)

    assert resp.status_code == 200
    assert "overloaded" not in resp.text and "Hello" in resp.text
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"]


# -- account problems: credits, auth, deactivation --------------------------------------------------


def test_credit_exhausted_cools_the_account_down_for_long(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=402, error_message="insufficient credits on this account"), times=1)

    assert chat(gateway, key, MODEL).status_code == 200
    assert chat(gateway, key, MODEL).status_code == 200

    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b", "sk-b"]
    row = admin.connection(a)
    assert 3590 <= row["cooldownSeconds"] <= 3600  # creditErrorCooldownSeconds of the profile
    assert row["reason"].startswith("credits or quota exhausted (402)")


def test_anthropic_style_credit_400_moves_to_the_next_account(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(
        Behaviour(status=400, error_message="Your credit balance is too low to access the API."), times=1
    )

    assert chat(gateway, key, MODEL).status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"]
    assert admin.connection(a)["state"] == "cooling-down"


def test_openai_insufficient_quota_429_is_a_credit_error(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a, _ = two_accounts(fake_provider)
    message = "You exceeded your current quota, please check your plan and billing details."
    fake_provider.behave(Behaviour(status=429, error_message=message, headers={"Retry-After": "1"}), times=1)

    assert chat(gateway, key, MODEL).status_code == 200
    assert admin.connection(a)["cooldownSeconds"] > 3000  # not the 1 s of the header


def test_200_with_an_error_body_moves_to_the_next_account(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(Behaviour(body=b'{"error": {"message": "You are out of credits", "code": 402}}'), times=1)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == "Hello from gpt-4o!"
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"]
    assert admin.connection(a)["reason"].startswith("credits or quota exhausted")


def test_200_with_an_error_body_on_the_only_account_is_a_502(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    fake_provider.behave(Behaviour(body=b'{"error": {"message": "internal hiccup"}}'), times=1)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 502
    assert "internal hiccup" in error_message(resp)


def test_invalid_key_cools_the_account_down(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=401), times=1)

    assert chat(gateway, key, MODEL).status_code == 200
    assert chat(gateway, key, MODEL).status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b", "sk-b"]
    assert admin.connection(a)["reason"].startswith("authentication failed (401)")


def test_deactivated_account_is_kept_out(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=403, error_message="Your account has been deactivated."), times=1)

    assert chat(gateway, key, MODEL).status_code == 200
    row = admin.connection(a)
    assert row["reason"].startswith("account deactivated (403)")
    assert row["cooldownSeconds"] > 300 * 24 * 3600


def test_plain_400_ends_the_request_without_trying_other_accounts(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a, _ = two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=400, error_message="temperature must be at most 2"), times=1)

    resp = chat(gateway, key, MODEL)

    assert resp.status_code == 400
    assert error_message(resp) == "[openai/gpt-4o] temperature must be at most 2"
    assert keys_used(fake_provider.requests) == ["sk-a"]
    assert admin.connection(a)["state"] == "ready"  # the account did nothing wrong


# -- selection: priority and round-robin -------------------------------------------------------------


def test_priority_selection_fills_the_first_account(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider, key="sk-second", priority=2)
    connect(fake_provider, key="sk-first", priority=1)
    for _ in range(4):
        assert chat(gateway, key, MODEL).status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-first"] * 4


def test_round_robin_selection_rotates_exactly(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, settings: pytest.FixtureRequest
) -> None:
    settings.CONNECTION_SELECTION = "priority,openai=round-robin"  # type: ignore[attr-defined]
    for n in (1, 2, 3):
        connect(fake_provider, key=f"sk-{n}", priority=n)
    connect(fake_provider, provider="groq", key="sk-groq-1", priority=1)
    connect(fake_provider, provider="groq", key="sk-groq-2", priority=2)

    for _ in range(6):
        assert chat(gateway, key, MODEL).status_code == 200
    for _ in range(2):
        assert chat(gateway, key, "groq/llama-3.3-70b-versatile").status_code == 200

    assert keys_used(fake_provider.requests) == ["sk-1", "sk-2", "sk-3"] * 2 + ["sk-groq-1"] * 2


def test_round_robin_skips_a_cooling_account_and_still_falls_back(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, settings: pytest.FixtureRequest
) -> None:
    settings.CONNECTION_SELECTION = "round-robin"  # type: ignore[attr-defined]
    two_accounts(fake_provider)
    fake_provider.behave(Behaviour(status=429, headers={"Retry-After": "60"}), times=1)

    for _ in range(4):
        assert chat(gateway, key, MODEL).status_code == 200

    # sk-a answered 429 on the first request, which then went to sk-b; sk-a is left out after.
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b", "sk-b", "sk-b", "sk-b"]


def test_inactive_account_is_never_called(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider, key="sk-off", priority=1, is_active=False)
    connect(fake_provider, key="sk-on", priority=2)
    assert chat(gateway, key, MODEL).status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-on"]


def test_no_account_at_all_is_a_503(gateway: LiveGateway, key: str) -> None:
    resp = chat(gateway, key, MODEL)
    assert resp.status_code == 503
    assert "No active connection for provider 'openai'" in error_message(resp)


def test_concurrent_requests_are_neither_lost_nor_duplicated(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    """Fallback under load: every client request reaches the provider exactly once, although
    the first account of each is unreachable (and some answers fail once on the second)."""
    import asyncio

    connect(f"http://127.0.0.1:{free_port()}/v1", key="sk-dead", priority=1)
    connect(fake_provider, key="sk-b", priority=2)
    connect(fake_provider, key="sk-c", priority=3)

    async def run() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(n: int) -> int:
                resp = await client.post(
                    f"{gateway.base_url}/chat/completions",
                    json={"model": MODEL, "messages": [{"role": "user", "content": f"request {n}"}]},
                    headers={"Authorization": f"Bearer {key}"},
                )
                return resp.status_code

            return list(await asyncio.gather(*(one(n) for n in range(40))))

    statuses = asyncio.run(run())

    assert statuses == [200] * 40
    prompts = sorted(r.json["messages"][0]["content"] for r in fake_provider.requests)
    assert prompts == sorted(f"request {n}" for n in range(40))  # each exactly once
