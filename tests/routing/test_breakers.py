"""Provider circuit breakers (closed → open → half-open with probes → closed/open) with the
numbers of the resilience profile, set through /api/resilience and applied at runtime."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway
from tests.routing.helpers import HI, Admin, chat, combo, connect, error_message, keys_used, models_sent, served

pytestmark = pytest.mark.e2e

MODEL = "openai/gpt-4o"


def set_profile(admin: Admin, **numbers: float) -> None:
    resp = admin.put("/resilience", {"profiles": {"apikey": numbers}})
    assert resp.status_code == 200, resp.text


def test_breaker_opens_after_the_profile_threshold_and_stops_calling(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    set_profile(admin, breakerFailureThreshold=3, breakerResetSeconds=60)
    connect(fake_provider)
    fake_provider.behave(Behaviour(status=500))

    statuses = [chat(gateway, key, MODEL).status_code for _ in range(3)]
    assert statuses == [500, 500, 500]
    assert len(fake_provider.requests) == 3

    resp = chat(gateway, key, MODEL)
    assert resp.status_code == 503
    assert error_message(resp) == "[openai/gpt-4o] Provider openai circuit breaker is open"
    assert 58 <= int(resp.headers["retry-after"]) <= 60
    assert len(fake_provider.requests) == 3  # not called while open

    breaker = admin.breaker("openai")
    assert breaker["state"] == "open" and breaker["failures"] == 3 and breaker["threshold"] == 3


def test_half_open_lets_one_probe_through_then_closes_on_success(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    set_profile(admin, breakerFailureThreshold=2, breakerResetSeconds=0.5)
    connect(fake_provider)
    fake_provider.behave(Behaviour(status=502), times=2)
    assert [chat(gateway, key, MODEL).status_code for _ in range(3)] == [502, 502, 503]
    assert len(fake_provider.requests) == 2

    time.sleep(0.6)
    # Half-open: of three concurrent requests only one reaches the provider (slowly); the
    # others are turned away while the probe is out.
    fake_provider.behave(Behaviour(delay=0.3), times=1)

    async def three() -> list[int]:
        async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {key}"}) as client:

            async def one(pause: float) -> int:
                await asyncio.sleep(pause)
                body = {"model": MODEL, "messages": HI}
                return (await client.post(f"{gateway.base_url}/chat/completions", json=body)).status_code

            return list(await asyncio.gather(one(0), one(0.1), one(0.15)))

    statuses = asyncio.run(three())
    assert sorted(statuses) == [200, 503, 503]
    assert len(fake_provider.requests) == 3

    # The probe succeeded: closed again, requests flow.
    assert [chat(gateway, key, MODEL).status_code for _ in range(3)] == [200, 200, 200]
    assert admin.breaker("openai")["state"] == "closed"


def test_failed_probe_opens_the_breaker_again(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    set_profile(admin, breakerFailureThreshold=1, breakerResetSeconds=0.4)
    connect(fake_provider)
    fake_provider.behave(Behaviour(status=503), times=2)
    assert chat(gateway, key, MODEL).status_code == 503
    assert "circuit breaker is open" in error_message(chat(gateway, key, MODEL))

    time.sleep(0.5)
    assert chat(gateway, key, MODEL).status_code == 503  # the probe, which fails
    assert len(fake_provider.requests) == 2
    assert "circuit breaker is open" in error_message(chat(gateway, key, MODEL))
    assert len(fake_provider.requests) == 2

    time.sleep(0.5)
    assert chat(gateway, key, MODEL).status_code == 200
    assert len(fake_provider.requests) == 3


def test_open_breaker_moves_a_combo_to_its_next_member(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    set_profile(admin, breakerFailureThreshold=2, breakerResetSeconds=60)
    connect(fake_provider, provider="groq")
    connect(fake_provider)
    combo("breaker-combo", ["groq/llama-3.3-70b-versatile", MODEL])
    fake_provider.behave(Behaviour(status=500), model="llama-3.3-70b-versatile")

    served_by = [served(chat(gateway, key, "breaker-combo")) for _ in range(4)]

    assert served_by == [MODEL] * 4
    assert models_sent(fake_provider.requests) == ["llama-3.3-70b-versatile", "gpt-4o"] * 2 + ["gpt-4o"] * 2
    assert admin.breaker("groq")["state"] == "open"


def test_rate_limits_and_client_errors_do_not_count_against_the_breaker(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    set_profile(admin, breakerFailureThreshold=2, breakerResetSeconds=60)
    connect(fake_provider)
    fake_provider.behave(Behaviour(status=400), times=3)
    assert [chat(gateway, key, MODEL).status_code for _ in range(3)] == [400, 400, 400]
    assert admin.breaker("openai")["state"] == "closed"


def test_profile_changes_apply_at_runtime(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a = connect(fake_provider, key="sk-a", priority=1)
    connect(fake_provider, key="sk-b", priority=2)

    set_profile(admin, cooldownBaseSeconds=100, cooldownMaxSeconds=1000)
    fake_provider.behave(Behaviour(status=429), times=1)
    assert chat(gateway, key, MODEL).status_code == 200
    assert 99 <= admin.cooldown(a, "gpt-4o")["cooldownSeconds"] <= 100

    assert admin.post("/resilience/reset").status_code == 200
    set_profile(admin, cooldownBaseSeconds=7)
    fake_provider.behave(Behaviour(status=429), times=1)
    assert chat(gateway, key, MODEL).status_code == 200
    assert 6 <= admin.cooldown(a, "gpt-4o")["cooldownSeconds"] <= 7

    # The breaker threshold too: lowered to 2, two requests that fail on every account open it.
    assert admin.post("/resilience/reset").status_code == 200
    set_profile(admin, breakerFailureThreshold=2, breakerResetSeconds=60)
    fake_provider.behave(Behaviour(status=500), times=4)
    assert chat(gateway, key, MODEL).status_code == 500
    assert chat(gateway, key, MODEL).status_code == 500
    assert "circuit breaker is open" in error_message(chat(gateway, key, MODEL))
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"] * 4


def test_reset_closes_breakers_and_ends_cooldowns(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    set_profile(admin, breakerFailureThreshold=1, breakerResetSeconds=600)
    connect(fake_provider, provider="groq")
    connect(fake_provider)
    fake_provider.behave(Behaviour(status=500), model="llama-3.3-70b-versatile", times=1)
    fake_provider.behave(Behaviour(status=429, headers={"Retry-After": "600"}), model="gpt-4o", times=1)
    assert chat(gateway, key, "groq/llama-3.3-70b-versatile").status_code == 500
    assert chat(gateway, key, MODEL).status_code == 429
    assert chat(gateway, key, "groq/llama-3.3-70b-versatile").status_code == 503
    assert chat(gateway, key, MODEL).status_code == 429
    assert len(fake_provider.requests) == 2

    resp = admin.post("/resilience/reset")

    assert resp.status_code == 200
    assert resp.json() == {
        "ok": True,
        "resetCount": 2,
        "cooldowns": 1,
        "breakers": 1,
        "message": "Reset 1 circuit breaker(s) and 1 cooldown(s)",
    }
    assert chat(gateway, key, "groq/llama-3.3-70b-versatile").status_code == 200
    assert chat(gateway, key, MODEL).status_code == 200
    assert len(fake_provider.requests) == 4
