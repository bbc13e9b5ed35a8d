"""The thinking budget setting, as each provider wire format receives it: translated from an
OpenAI client, passed through from each native client, stripped for models that cannot
reason, per mode (custom, auto, adaptive, passthrough)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from tests.e2e.test_openai_chat import make_key
from tests.fakes.provider import FakeProvider
from tests.live_server import LiveGateway
from tests.settings.helpers import MODELS, configure, connect_all, last_body

pytestmark = pytest.mark.e2e

# The SDKs type messages strictly; the literal bodies here are checked at run time.
HI: Any = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def key(gateway: LiveGateway, fake_provider: FakeProvider) -> str:
    connect_all(fake_provider)
    return make_key()


@pytest.fixture
def sdk(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def control(fmt: str, body: dict[str, Any]) -> Any:
    """The reasoning control the provider received, in its own wire format."""
    if fmt == "openai":
        return body.get("reasoning_effort")
    if fmt == "responses":
        return (body.get("reasoning") or {}).get("effort")
    if fmt == "anthropic":
        return (body.get("thinking") or {}).get("budget_tokens")
    return ((body.get("generationConfig") or {}).get("thinkingConfig") or {}).get("thinkingBudget")


CUSTOM_EXPECTED = {"openai": "high", "responses": "high", "anthropic": 3000, "gemini": 3000}


@pytest.mark.parametrize("fmt", list(MODELS))
def test_custom_from_an_openai_client(sdk: openai.OpenAI, fake_provider: FakeProvider, fmt: str) -> None:
    configure(thinking_mode="custom", thinking_custom_budget=3000, thinking_effort_level="high")
    sdk.chat.completions.create(model=MODELS[fmt], messages=HI, max_tokens=8000, reasoning_effort="low")
    body = last_body(fake_provider)
    assert control(fmt, body) == CUSTOM_EXPECTED[fmt], body
    if fmt == "anthropic":
        assert body["thinking"]["type"] == "enabled" and body["max_tokens"] > 3000


def test_custom_passthrough_from_native_clients(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    configure(thinking_mode="custom", thinking_custom_budget=3000, thinking_effort_level="high")
    claude = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    claude.messages.create(model=MODELS["anthropic"], max_tokens=2000, messages=HI, extra_body={"temperature": 0.3})
    body = last_body(fake_provider)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1999}  # below max_tokens
    assert "temperature" not in body  # Anthropic refuses sampling changes while thinking

    gemini = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=gateway.url, api_version="v1beta"))
    gemini.models.generate_content(
        model=MODELS["gemini"],
        contents="Hi",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True)),
    )
    config = last_body(fake_provider)["generationConfig"]["thinkingConfig"]
    assert config["thinkingBudget"] == 3000
    assert True in (config.get("includeThoughts"), config.get("include_thoughts"))  # the client's own option kept

    responses = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    responses.responses.create(model=MODELS["responses"], input="Hi", reasoning={"effort": "low", "summary": "auto"})
    assert last_body(fake_provider)["reasoning"] == {"effort": "high", "summary": "auto"}


def test_stripped_for_a_model_that_cannot_reason(sdk: openai.OpenAI, fake_provider: FakeProvider) -> None:
    configure(thinking_mode="custom")
    sdk.chat.completions.create(model="openai/gpt-4o", messages=HI, reasoning_effort="high")
    assert "reasoning_effort" not in last_body(fake_provider)
    sdk.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=HI, reasoning_effort="high")
    assert "thinking" in last_body(fake_provider)  # the same request to a reasoning model keeps it


def test_passthrough_mode_leaves_requests_alone(sdk: openai.OpenAI, fake_provider: FakeProvider) -> None:
    sdk.chat.completions.create(model="openai/gpt-4o", messages=HI, reasoning_effort="low")
    assert last_body(fake_provider)["reasoning_effort"] == "low"
    sdk.chat.completions.create(model=MODELS["anthropic"], messages=HI)
    assert "thinking" not in last_body(fake_provider)


def test_auto_maps_the_clients_request_or_uses_the_effort_level(
    sdk: openai.OpenAI, fake_provider: FakeProvider
) -> None:
    configure(thinking_mode="auto", thinking_effort_level="medium")
    sdk.chat.completions.create(model=MODELS["anthropic"], messages=HI, max_tokens=30000, reasoning_effort="high")
    assert last_body(fake_provider)["thinking"]["budget_tokens"] == 24576  # the client's "high"
    sdk.chat.completions.create(model=MODELS["anthropic"], messages=HI, max_tokens=30000)
    assert last_body(fake_provider)["thinking"]["budget_tokens"] == 8192  # nothing asked: medium
    sdk.chat.completions.create(model=MODELS["openai"], messages=HI)
    assert last_body(fake_provider)["reasoning_effort"] == "medium"


def test_adaptive_scales_with_the_prompt(sdk: openai.OpenAI, fake_provider: FakeProvider) -> None:
    configure(thinking_mode="adaptive", thinking_custom_budget=8000)
    sdk.chat.completions.create(model=MODELS["anthropic"], messages=HI, max_tokens=30000)
    small = last_body(fake_provider)["thinking"]["budget_tokens"]
    big: Any = [{"role": "user", "content": "Summarize: " + "lorem ipsum " * 2000}]
    sdk.chat.completions.create(model=MODELS["anthropic"], messages=big, max_tokens=30000)
    large = last_body(fake_provider)["thinking"]["budget_tokens"]
    assert (small, large) == (2000, 16000)
    sdk.chat.completions.create(model=MODELS["gemini"], messages=big)
    assert control("gemini", last_body(fake_provider)) == 16000
    sdk.chat.completions.create(model=MODELS["responses"], messages=HI)
    assert control("responses", last_body(fake_provider)) == "low"
