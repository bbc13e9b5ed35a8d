"""The fallback rules and retry hints as plain functions (the e2e tests show them at work)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.routing import Move, _parse_selection, classify, is_credit_error, is_deactivated
from gateway.state import HALF_OPEN, OPEN, BreakerPolicy, LocalState
from providers.adapters.base import ProviderError, ratelimit_reset


def err(status: int, message: str = "x", *, retryable: bool = False, code: str | None = None) -> ProviderError:
    return ProviderError(status, message, retryable=retryable, code=code)


@pytest.mark.parametrize(
    ("error", "move"),
    [
        (err(500), Move.NEXT_CONNECTION),
        (err(502), Move.NEXT_CONNECTION),
        (err(503), Move.NEXT_CONNECTION),
        (err(504), Move.NEXT_CONNECTION),
        (err(529), Move.NEXT_CONNECTION),
        (err(408), Move.NEXT_CONNECTION),
        (err(429), Move.NEXT_CONNECTION),
        (err(401), Move.NEXT_CONNECTION),
        (err(402), Move.NEXT_CONNECTION),
        (err(403), Move.NEXT_CONNECTION),
        (err(400, "Your credit balance is too low"), Move.NEXT_CONNECTION),
        (err(400, "API key not valid", retryable=True), Move.NEXT_CONNECTION),
        (err(404), Move.NEXT_MEMBER),
        (err(413), Move.NEXT_MEMBER),
        (err(415), Move.NEXT_MEMBER),
        (err(400, "Unsupported value: 'reasoning_effort' is not supported with this model"), Move.NEXT_MEMBER),
        (err(400, "Request blocked: prohibited_content"), Move.NEXT_MEMBER),
        (err(400, "messages: field required"), Move.END),
        (err(422, "temperature: must be <= 2"), Move.END),
    ],
)
def test_classify(error: ProviderError, move: Move) -> None:
    assert classify(error) is move


def test_credit_and_deactivation_hints() -> None:
    assert is_credit_error(err(402, "Payment Required"))
    assert is_credit_error(err(429, "You exceeded your current quota, please check your plan and billing details."))
    assert is_credit_error(err(502, "You are out of credits", code="error_in_body"))
    assert not is_credit_error(err(502, "You are out of credits"))  # a real 5xx says nothing about credits
    assert not is_credit_error(err(429, "Rate limit reached for requests"))
    assert is_deactivated(err(403, "Your account has been deactivated"))
    assert is_deactivated(err(401, "account_deactivated"))
    assert not is_deactivated(err(500, "account has been disabled"))


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-ratelimit-reset-requests": "1s", "x-ratelimit-remaining-requests": "0"}, 1.0),
        ({"x-ratelimit-reset-requests": "20ms", "x-ratelimit-remaining-requests": "0"}, 0.02),
        ({"x-ratelimit-reset-tokens": "6m0s", "x-ratelimit-remaining-tokens": "0"}, 360.0),
        ({"x-ratelimit-reset-tokens": "1h2m3.5s", "x-ratelimit-remaining-tokens": "0"}, 3723.5),
        # The exhausted limit decides, not the sooner one.
        (
            {
                "x-ratelimit-reset-requests": "2s",
                "x-ratelimit-remaining-requests": "10",
                "x-ratelimit-reset-tokens": "40s",
                "x-ratelimit-remaining-tokens": "0",
            },
            40.0,
        ),
        ({"x-ratelimit-reset-requests": "3s", "x-ratelimit-reset-tokens": "9s"}, 3.0),
        ({"x-ratelimit-reset": "12"}, 12.0),
        ({"x-ratelimit-reset-requests": "soon"}, None),
        ({}, None),
    ],
)
def test_ratelimit_reset(headers: dict[str, str], expected: float | None) -> None:
    assert ratelimit_reset(headers) == (pytest.approx(expected) if expected is not None else None)


def test_ratelimit_reset_as_unix_time() -> None:
    in_30s = time.time() + 30
    assert 28 < (ratelimit_reset({"x-ratelimit-reset": str(int(in_30s))}) or 0) <= 30
    assert 28 < (ratelimit_reset({"x-ratelimit-reset": str(int(in_30s * 1000))}) or 0) <= 30


def test_connection_selection_setting() -> None:
    assert _parse_selection("") == ("priority", {})
    assert _parse_selection("round-robin") == ("round-robin", {})
    assert _parse_selection("priority, OpenAI=round-robin ,groq=priority") == (
        "priority",
        {"openai": "round-robin", "groq": "priority"},
    )
    assert _parse_selection("fastest,openai=sticky") == ("priority", {})  # unknown: ignored, logged


def test_half_open_probe_slots_and_stuck_probes() -> None:
    state = LocalState()
    policy = BreakerPolicy(failure_threshold=1, reset_seconds=10, half_open_probes=2)
    asyncio.run(state.record_failure("p", policy))
    opened = state.breakers["p"].opened_at
    assert state.breakers["p"].state == OPEN
    assert not state.breaker_allows("p", policy, now=opened + 5)
    # After the reset time: two probes (the profile's number), then no more...
    assert state.breaker_allows("p", policy, now=opened + 10)
    assert state.breakers["p"].state == HALF_OPEN
    assert state.breaker_allows("p", policy, now=opened + 10.1)
    assert not state.breaker_allows("p", policy, now=opened + 11)
    # ...unless the probes never report back: their slots are freed after another reset time.
    assert state.breaker_allows("p", policy, now=opened + 20.2)


def test_backoff_counter_starts_over_after_quiet_time() -> None:
    state = LocalState()

    async def run() -> list[int]:
        values = [await state.next_counter("k", ttl=0.2) for _ in range(3)]
        await asyncio.sleep(0.25)
        return [*values, await state.next_counter("k", ttl=0.2)]

    assert asyncio.run(run()) == [0, 1, 2, 0]


def test_reset_forgets_everything() -> None:
    state = LocalState()

    async def run() -> None:
        await state.set_cooldown("conn:1", 60, "x")
        await state.record_failure("provider:p", BreakerPolicy(failure_threshold=1))
        await state.next_counter("combo:c")
        await state.note_used("c:m")
        state.observe_latency("m", 5)
        await state.reset()

    asyncio.run(run())
    assert not state.cooldowns and not state.breakers and not state.counters and not state.latency
