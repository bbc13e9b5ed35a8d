"""The global system prompt reaches every provider wire format (translated and passed
through), from every client format, through the running server and the official SDKs."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from google import genai
from google.genai import types

from tests.e2e.test_openai_chat import make_key
from tests.fakes.provider import FakeProvider
from tests.live_server import LiveGateway
from tests.settings.helpers import MODELS, configure, connect_all, last_body

pytestmark = pytest.mark.e2e

PROMPT = "GLOBAL-RULES: answer in French."


@pytest.fixture
def key(gateway: LiveGateway, fake_provider: FakeProvider) -> str:
    connect_all(fake_provider)
    configure(system_prompt_enabled=True, system_prompt=PROMPT)
    return make_key()


def system_text(fmt: str, body: dict[str, Any]) -> str:
    """The provider-format system prompt of a request, as text."""
    if fmt == "openai":
        first = body["messages"][0]
        assert first["role"] in ("system", "developer")
        return json.dumps(first["content"])
    if fmt == "anthropic":
        return json.dumps(body["system"])
    if fmt == "gemini":
        return json.dumps(body["systemInstruction"])
    instructions = body.get("instructions")
    if instructions:
        return str(instructions)
    first = body["input"][0]
    assert first["role"] in ("system", "developer")
    return json.dumps(first["content"])


def assert_prompt_first(text: str, own: str | None) -> None:
    assert PROMPT in text, text
    if own is not None:
        assert own in text and text.index(PROMPT) < text.index(own), text


@pytest.mark.parametrize("fmt", list(MODELS))
def test_openai_client_to_every_provider_format(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, fmt: str
) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    client.chat.completions.create(
        model=MODELS[fmt],
        messages=[{"role": "system", "content": "Own system."}, {"role": "user", "content": "Hi"}],
    )
    assert_prompt_first(system_text(fmt, last_body(fake_provider)), "Own system.")


def test_without_own_system_prompt_it_becomes_the_system_prompt(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    with client.chat.completions.stream(model=MODELS["anthropic"], messages=[{"role": "user", "content": "Hi"}]) as s:
        s.get_final_completion()
    assert last_body(fake_provider)["system"] in (PROMPT, [{"type": "text", "text": PROMPT}])


def test_anthropic_client_block_system_passthrough(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    client.messages.create(
        model=MODELS["anthropic"],
        max_tokens=100,
        system=[{"type": "text", "text": "Own system.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hi"}],
    )
    system = last_body(fake_provider)["system"]
    assert system[0] == {"type": "text", "text": PROMPT}
    assert system[1]["cache_control"] == {"type": "ephemeral"}


def test_responses_client_instructions_passthrough(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    client.responses.create(model=MODELS["responses"], instructions="Own system.", input="Hi")
    assert last_body(fake_provider)["instructions"] == f"{PROMPT}\n\nOwn system."


def test_gemini_client_system_instruction_passthrough(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    client = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=gateway.url, api_version="v1beta"))
    client.models.generate_content(
        model=MODELS["gemini"], contents="Hi", config=types.GenerateContentConfig(system_instruction="Own system.")
    )
    assert_prompt_first(system_text("gemini", last_body(fake_provider)), "Own system.")


def test_ollama_client_translated(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    client = ollama.Client(host=gateway.url + "/v1", headers={"Authorization": f"Bearer {key}"})
    client.chat(model=MODELS["openai"], messages=[{"role": "user", "content": "Hi"}], stream=False)
    assert last_body(fake_provider)["messages"][0] == {"role": "system", "content": PROMPT}


def test_turned_off_through_the_api_without_restart(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str
) -> None:
    admin = make_admin_key()
    off = httpx.put(
        f"{gateway.url}/api/settings/system-prompt",
        json={"enabled": False},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert off.status_code == 200 and off.json()["enabled"] is False
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    client.chat.completions.create(model=MODELS["openai"], messages=[{"role": "user", "content": "Hi"}])
    assert last_body(fake_provider)["messages"] == [{"role": "user", "content": "Hi"}]


def make_admin_key() -> str:
    from tests.factories import ApiKeyFactory

    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    return plain


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"model": MODELS["openai"], "messages": "Hi"}, "messages"),
        ("/v1/messages", {"model": MODELS["anthropic"], "max_tokens": 5, "system": 5, "messages": []}, None),
        ("/v1/responses", {"model": MODELS["responses"], "instructions": ["x"], "input": "Hi"}, "instructions"),
        ("/v1/api/chat", {"model": MODELS["openai"], "messages": {"role": "user"}}, "messages"),
    ],
)
def test_malformed_bodies_are_still_a_400(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, path: str, body: dict[str, Any], param: str | None
) -> None:
    response = httpx.post(f"{gateway.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert 400 <= response.status_code < 500, response.text
    if param is not None:
        assert param in response.text
