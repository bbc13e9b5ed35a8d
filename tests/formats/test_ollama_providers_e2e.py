"""The ollama SDK against Anthropic-format and Responses-format providers: thinking, tool calls with
object arguments, one final line."""

from __future__ import annotations

from typing import Any

import ollama
import pytest

from tests.fakes.provider import Behaviour, FakeProvider
from tests.formats.test_ollama_e2e import WEATHER_TOOL, client
from tests.formats.test_responses_e2e import connect, make_key
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e

# provider id -> a model of it
PROVIDERS = {"anthropic": "anthropic/claude-sonnet-4-5", "openai-responses": "openai-responses/o3"}


@pytest.fixture(params=sorted(PROVIDERS))
def target(request: pytest.FixtureRequest, gateway: LiveGateway, fake_provider: FakeProvider) -> tuple[str, str]:
    connect(request.param, fake_provider.openai_base_url)
    return PROVIDERS[request.param], make_key()


def test_stream_thinking_and_tools(gateway: LiveGateway, fake_provider: FakeProvider, target: tuple[str, str]) -> None:
    model, key = target
    fake_provider.behave(
        Behaviour(
            thinking="Need the weather tool.",
            tool_calls=[{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris", "days": 2}}],
            prompt_tokens=21,
            completion_tokens=9,
        )
    )

    parts = list(
        client(gateway, key).chat(
            model=model,
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER_TOOL],
            think=True,
            stream=True,
        )
    )

    assert "".join(p.message.thinking or "" for p in parts) == "Need the weather tool."
    calls = [call for p in parts for call in (p.message.tool_calls or [])]
    assert [(c.function.name, c.function.arguments) for c in calls] == [("get_weather", {"city": "Paris", "days": 2})]
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done
    assert (parts[-1].prompt_eval_count, parts[-1].eval_count) == (21, 9)


def test_non_stream_text(gateway: LiveGateway, fake_provider: FakeProvider, target: tuple[str, str]) -> None:
    model, key = target
    fake_provider.behave(Behaviour(reply="Bonjour", prompt_tokens=5, completion_tokens=2))

    response: Any = client(gateway, key).chat(
        model=model,
        messages=[{"role": "system", "content": "French."}, {"role": "user", "content": "Hello"}],
        options={"num_predict": 100, "temperature": 0.4},
    )

    assert response.message.content == "Bonjour" and response.done_reason == "stop"
    assert (response.prompt_eval_count, response.eval_count) == (5, 2)


def test_what_a_responses_provider_cannot_express(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect("openai-responses", fake_provider.openai_base_url)
    with pytest.raises(ollama.ResponseError) as info:
        client(gateway, make_key()).chat(
            model="openai-responses/gpt-4.1", messages=[{"role": "user", "content": "x"}], options={"seed": 1}
        )
    assert info.value.status_code == 400 and "seed" in info.value.error
    assert fake_provider.requests == []
