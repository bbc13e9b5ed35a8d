"""Through the running gateway: the record's cache-creation tokens (Anthropic's
cache_creation_input_tokens, passed through or translated) and the client's format."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.e2e.test_openai_chat import client, make_key, records
from tests.fakes.provider import Behaviour, FakeProvider
from tests.formats.test_anthropic_sdk import connect
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e
HI: Any = [{"role": "user", "content": "Hello"}]
MODEL = "anthropic/claude-sonnet-4-5"


@pytest.mark.parametrize("stream", [False, True])
def test_cache_creation_tokens_are_recorded(gateway: LiveGateway, fake_provider: FakeProvider, stream: bool) -> None:
    connect(fake_provider, "anthropic")
    key = make_key()
    fake_provider.behave(
        Behaviour(reply="ok", prompt_tokens=100, cached_tokens=30, cache_creation_tokens=50, completion_tokens=5)
    )
    native = anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)
    if stream:
        with native.messages.stream(model=MODEL, max_tokens=50, messages=HI) as events:
            events.get_final_message()
        list(client(gateway, key).chat.completions.create(model=MODEL, messages=HI, stream=True))
    else:
        native.messages.create(model=MODEL, max_tokens=50, messages=HI)
        client(gateway, key).chat.completions.create(model=MODEL, messages=HI)

    passed_through, translated = records(gateway)
    for rec in (passed_through, translated):
        assert (rec.status_code, rec.stream) == (200, stream)
        assert (rec.prompt_tokens, rec.cached_tokens, rec.cache_creation_tokens) == (100, 30, 50)


def test_client_format_is_recorded(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    key = make_key()
    model = "openai/gpt-4o"
    client(gateway, key).chat.completions.create(model=model, messages=HI)
    anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0).messages.create(
        model=model, max_tokens=50, messages=HI
    )
    gemini = httpx.post(
        f"{gateway.url}/v1beta/models/{model}:generateContent",
        json={"contents": [{"parts": [{"text": "Hello"}]}]},
        headers={"x-goog-api-key": key},
    )
    assert gemini.status_code == 200
    client(gateway, key).responses.create(model=model, input="Hello")

    assert [r.client_format for r in records(gateway)] == ["openai", "anthropic", "gemini", "responses"]
