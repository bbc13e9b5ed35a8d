"""Runtime endpoints: /api/models/availability, /api/rate-limits, /api/resilience/reset,
/api/combos/test, and /v1/providers/{provider}/chat/completions."""

from __future__ import annotations

import httpx
import openai
import pytest

from gateway import runtime
from gateway.models import ApiKey
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway
from tests.routing.helpers import (
    HI,
    Admin,
    chat,
    combo,
    connect,
    error_message,
    keys_used,
    make_key,
    models_sent,
    served,
)

pytestmark = pytest.mark.e2e

MODEL = "openai/gpt-4o"


# -- availability ------------------------------------------------------------------------------


def test_availability_lists_cooldowns_and_open_breakers(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a = connect(fake_provider, key="sk-a", priority=1)
    b = connect(fake_provider, key="sk-b", priority=2)
    connect(fake_provider, provider="groq", key="sk-groq")
    admin.put("/resilience", {"profiles": {"apikey": {"breakerFailureThreshold": 1, "breakerResetSeconds": 120}}})
    assert admin.get("/models/availability").json() == {"unavailableCount": 0, "models": []}

    fake_provider.behave(Behaviour(status=402, error_message="out of credits"), model="gpt-4o", times=1)
    fake_provider.behave(Behaviour(status=429, headers={"Retry-After": "30"}), model="gpt-4o", times=1)
    fake_provider.behave(Behaviour(status=500), model="llama-3.3-70b-versatile", times=1)
    assert chat(gateway, key, MODEL).status_code == 402  # the first failure's status
    assert chat(gateway, key, "groq/llama-3.3-70b-versatile").status_code == 500

    body = admin.get("/models/availability").json()

    assert body["unavailableCount"] == 3
    breaker, credit, limited = body["models"]  # by provider, then connection
    assert credit["provider"] == "openai" and credit["connectionId"] == a and "model" not in credit
    assert credit["reason"] == "credits or quota exhausted (402): out of credits"
    assert 3590 <= credit["cooldownSeconds"] <= 3600 and credit["since"].endswith("Z")
    assert limited["connectionId"] == b and limited["model"] == "gpt-4o" and 28 <= limited["cooldownSeconds"] <= 30
    assert limited["connectionName"] == "sk-b"
    assert breaker["provider"] == "groq" and "circuit breaker open" in breaker["reason"]
    assert 118 <= breaker["cooldownSeconds"] <= 120


def test_availability_of_one_model_and_clear(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin
) -> None:
    a = connect(fake_provider, key="sk-a")
    fake_provider.behave(Behaviour(status=429, error_message="busy", headers={"Retry-After": "45"}), times=1)
    assert chat(gateway, key, MODEL).status_code == 429

    resp = admin.post("/models/availability", {"model": MODEL})
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["available"] is False and report["model"] == "openai/gpt-4o" and report["provider"] == "openai"
    assert report["reason"] == "Every connection is cooling down: rate limited (429): busy"
    assert 43 <= report["retryAfterSeconds"] <= 45
    assert report["connections"][0]["connectionId"] == a and report["connections"][0]["available"] is False
    assert report["breaker"]["state"] == "closed"
    assert "cleared" not in report

    # Another model of the same account is available: the rate limit was for gpt-4o.
    other = admin.post("/models/availability", {"provider": "openai", "model": "gpt-4o-mini"}).json()
    assert other["available"] is True and other["model"] == "openai/gpt-4o-mini"

    cleared = admin.post("/models/availability", {"provider": "openai", "model": "gpt-4o", "clear": True}).json()
    assert cleared["available"] is True and cleared["cleared"] == {"cooldowns": 1, "breakers": 0}
    assert chat(gateway, key, MODEL).status_code == 200
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-a"]


def test_availability_resolves_aliases_and_refuses_bad_input(gateway: LiveGateway, admin: Admin) -> None:
    from gateway.models import ModelAlias

    ModelAlias.objects.create(alias="fast", model="groq/llama-3.3-70b-versatile")
    combo("some-combo", [MODEL])

    fast = admin.post("/models/availability", {"model": "fast"}).json()
    assert fast["model"] == "groq/llama-3.3-70b-versatile"
    assert fast["available"] is False and fast["reason"] == "No active connection for provider 'groq'"

    assert admin.post("/models/availability", {"model": "some-combo"}).status_code == 400
    resp = admin.post("/models/availability", {"provider": "nope", "model": "x"})
    assert resp.status_code == 400 and resp.json()["error"]["details"][0]["field"] == "provider"
    resp = admin.post("/models/availability", {"provider": "openai", "model": "groq/llama-3.3-70b-versatile"})
    assert resp.status_code == 400
    assert (
        resp.json()["error"]["message"] == 'Model "groq/llama-3.3-70b-versatile" does not belong to provider "openai"'
    )
    assert admin.post("/models/availability", {"model": "nosuch/model"}).status_code == 404
    assert admin.post("/models/availability", {"model": MODEL, "clear": "yes"}).status_code == 400
    assert admin.post("/models/availability", {"model": MODEL, "extra": 1}).status_code == 400
    assert admin.post("/models/availability", {}).status_code == 400


# -- rate limits ---------------------------------------------------------------------------------


def test_rate_limits_shows_connections_breakers_and_selection(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, admin: Admin, settings: pytest.FixtureRequest
) -> None:
    settings.CONNECTION_SELECTION = "priority,groq=round-robin"  # type: ignore[attr-defined]
    a = connect(fake_provider, key="sk-a", priority=1)
    b = connect(fake_provider, key="sk-b", priority=2, is_active=False)
    fake_provider.behave(Behaviour(status=401), times=1)
    fake_provider.behave(Behaviour(status=500), times=1)
    assert chat(gateway, key, MODEL).status_code == 401  # sk-b is inactive: nothing else to try

    body = admin.get("/rate-limits").json()

    assert body["selection"] == {"default": "priority", "providers": {"groq": "round-robin"}}
    rows = {row["connectionId"]: row for row in body["connections"]}
    assert rows[a]["state"] == "cooling-down" and rows[a]["reason"].startswith("authentication failed (401)")
    assert rows[a]["provider"] == "openai" and rows[a]["name"] == "sk-a" and rows[a]["priority"] == 1
    assert rows[b] == {
        "connectionId": b,
        "provider": "openai",
        "name": "sk-b",
        "priority": 2,
        "isActive": False,
        "state": "ready",
        "cooldownSeconds": 0.0,
        "reason": None,
        "since": None,
        "models": [],
    }
    [breaker] = body["breakers"]
    assert breaker["provider"] == "openai" and breaker["state"] == "closed"
    assert breaker["threshold"] == 5 and breaker["resetSeconds"] == 30.0


def test_runtime_endpoints_need_an_operator(gateway: LiveGateway) -> None:
    inference = make_key()
    for method, path in [
        ("GET", "/api/rate-limits"),
        ("GET", "/api/models/availability"),
        ("POST", "/api/models/availability"),
        ("POST", "/api/resilience/reset"),
        ("POST", "/api/combos/test"),
    ]:
        anonymous = httpx.request(method, f"{gateway.url}{path}", json={})
        assert anonymous.status_code == 401, path
        keyed = httpx.request(method, f"{gateway.url}{path}", json={}, headers={"Authorization": f"Bearer {inference}"})
        assert keyed.status_code == 403, path


# -- combo test -------------------------------------------------------------------------------------


def test_combo_test_calls_every_member_through_the_pipeline(
    gateway: LiveGateway, fake_provider: FakeProvider, admin: Admin
) -> None:
    from usage.models import UsageRecord

    connect(fake_provider, key="sk-a", priority=1)
    connect(fake_provider, key="sk-b", priority=2)
    combo("inner-test", ["openai/gpt-4.1"])
    combo("tested", [MODEL, "openai/gpt-4o-mini", "inner-test", "openai/o3-mini"], strategy="round-robin")
    fake_provider.behave(Behaviour(status=500, error_message="mini is down"), model="gpt-4o-mini")
    fake_provider.behave(Behaviour(reply=""), model="o3-mini")
    fake_provider.behave(Behaviour(status=429, headers={"Retry-After": "5"}), model="gpt-4o", times=1)

    resp = admin.post("/combos/test", {"comboName": "tested"})

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["comboName"] == "tested" and body["strategy"] == "round-robin"
    results = {r["model"]: r for r in body["results"]}
    assert [r["model"] for r in body["results"]] == [MODEL, "openai/gpt-4o-mini", "openai/gpt-4.1", "openai/o3-mini"]
    # gpt-4o: sk-a rate limited, sk-b answered: the fallback across accounts is part of the test.
    assert results[MODEL]["status"] == "ok" and results[MODEL]["responseText"] == "Hello from gpt-4o!"
    assert results[MODEL]["statusCode"] == 200 and results[MODEL]["latencyMs"] >= 0
    assert results["openai/gpt-4o-mini"] == {
        "model": "openai/gpt-4o-mini",
        "latencyMs": results["openai/gpt-4o-mini"]["latencyMs"],
        "status": "error",
        "statusCode": 500,
        "error": "[openai/gpt-4o-mini] mini is down",
    }
    assert results["openai/gpt-4.1"]["status"] == "ok"
    assert results["openai/o3-mini"]["status"] == "error"
    assert results["openai/o3-mini"]["error"] == "The model answered with no text"
    sent = sorted(models_sent(fake_provider.requests))
    assert sent == sorted(["gpt-4o", "gpt-4o", "gpt-4o-mini", "gpt-4o-mini", "gpt-4.1", "o3-mini"])
    # Real requests: recorded like any other, under a combo-test request id.
    gateway.wait_idle()
    from gateway.recorder import recorder

    assert recorder.flush(10)
    records = UsageRecord.objects.filter(request_id__startswith="combo-test-")
    assert records.count() == 4


def test_combo_test_unknown_combo_and_bad_input(gateway: LiveGateway, admin: Admin) -> None:
    resp = admin.post("/combos/test", {"comboName": "nope"})
    assert resp.status_code == 404 and resp.json()["error"]["message"] == "Combo 'nope' not found"
    assert admin.post("/combos/test", {"combo": "x"}).status_code == 400
    assert admin.post("/combos/test", {"comboName": 5}).status_code == 400


def test_combo_test_times_out_a_stalled_member(
    gateway: LiveGateway, fake_provider: FakeProvider, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "COMBO_TEST_TIMEOUT", 0.5)
    connect(fake_provider)
    combo("slowpoke", [MODEL, "openai/gpt-4o-mini"])
    fake_provider.behave(Behaviour(stall=True), model="gpt-4o")

    body = admin.post("/combos/test", {"comboName": "slowpoke"}).json()

    slow, fine = body["results"]
    assert slow["status"] == "error" and slow["error"] == "timed out after 0.5 s"
    assert fine["status"] == "ok"
    fake_provider.wait_for_cancelled(1)


def test_runtime_functions_work_from_a_plain_sync_caller(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    """The runtime functions run on a private loop: also from a plain sync caller."""
    connect(fake_provider)
    combo("direct", [MODEL])
    result = runtime.combo_test(combo_name="direct")
    assert result["results"][0]["status"] == "ok"
    assert runtime.rate_limits()["connections"][0]["state"] == "ready"


# -- provider-pinned endpoint -------------------------------------------------------------------------


def test_pinned_provider_adds_the_prefix(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    connect(fake_provider, provider="groq")
    client = openai.OpenAI(base_url=f"{gateway.base_url}/providers/groq", api_key=key, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(model="llama-3.3-70b-versatile", messages=HI)

    assert raw.parse().choices[0].message.content == "Hello from llama-3.3-70b-versatile!"
    assert raw.headers["x-omniroute-provider"] == "groq"
    assert models_sent(fake_provider.requests) == ["llama-3.3-70b-versatile"]


def test_pinned_provider_accepts_its_own_prefix_and_alias(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider, provider="deepseek")
    for path, model in [
        ("/providers/deepseek/chat/completions", "deepseek/deepseek-v4-flash"),
        ("/providers/ds/chat/completions", "ds/deepseek-v4-flash"),
        ("/providers/ds/chat/completions", "deepseek-v4-flash"),
    ]:
        resp = chat(gateway, key, model, path=path)
        assert resp.status_code == 200, resp.text
        assert served(resp) == "deepseek/deepseek-v4-flash"


def test_pinned_provider_keeps_catalog_ids_with_slashes(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider, provider="openrouter")
    resp = chat(gateway, key, "openai/gpt-4o-mini", path="/providers/openrouter/chat/completions")
    assert resp.status_code == 200
    assert served(resp) == "openrouter/openai/gpt-4o-mini"
    assert models_sent(fake_provider.requests) == ["openai/gpt-4o-mini"]


def test_pinned_provider_refuses_other_providers_and_unknown_ones(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider)
    resp = chat(gateway, key, "groq/llama-3.3-70b-versatile", path="/providers/openai/chat/completions")
    assert resp.status_code == 400
    assert error_message(resp) == 'Model "groq/llama-3.3-70b-versatile" does not belong to provider "openai"'

    resp = chat(gateway, key, "gpt-4o", path="/providers/nosuch/chat/completions")
    assert resp.status_code == 400 and error_message(resp) == 'Unknown provider "nosuch"'
    assert fake_provider.requests == []


def test_pinned_provider_ignores_combos_and_aliases_and_still_checks_the_key(
    gateway: LiveGateway, fake_provider: FakeProvider
) -> None:
    connect(fake_provider)
    combo("gpt-4o", ["openai/gpt-4o-mini"])  # a combo shadowing the bare name on /v1/chat/completions
    restricted = make_key()
    ApiKey.objects.filter(scope=ApiKey.SCOPE_INFERENCE).update(allowed_models=["openai/gpt-4o"])

    resp = chat(gateway, restricted, "gpt-4o", path="/providers/openai/chat/completions")
    assert resp.status_code == 200 and served(resp) == "openai/gpt-4o"

    denied = chat(gateway, restricted, "gpt-4.1", path="/providers/openai/chat/completions")
    assert denied.status_code == 403

    anonymous = httpx.post(f"{gateway.base_url}/providers/openai/chat/completions", json={"model": "x", "messages": HI})
    assert anonymous.status_code == 401


def test_pinned_provider_streams_and_falls_back_across_its_accounts(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    connect(fake_provider, key="sk-a", priority=1)
    connect(fake_provider, key="sk-b", priority=2)
    fake_provider.behave(Behaviour(status=503), times=1)
    client = openai.OpenAI(base_url=f"{gateway.base_url}/providers/openai", api_key=key, max_retries=0)

    text = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
        if c.choices
    )

    assert text == "Hello from gpt-4o!"
    assert keys_used(fake_provider.requests) == ["sk-a", "sk-b"]
