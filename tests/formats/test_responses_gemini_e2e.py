"""The openai SDK's Responses API, and the ollama SDK, against a Gemini-format provider: Gemini's
thought signatures on function calls come back on the next turn through the Responses client."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fakes.gemini_format import signature_of
from tests.fakes.provider import Behaviour, FakeProvider
from tests.formats.test_ollama_e2e import client as ollama_client
from tests.formats.test_responses_e2e import WEATHER_TOOL, connect, make_key
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e

MODEL = "gemini/gemini-2.5-flash"


@pytest.fixture
def key(gateway: LiveGateway, fake_provider: FakeProvider) -> str:
    connect("gemini", fake_provider.url + "/v1beta", api_key="AIza-upstream")
    return make_key()


@pytest.mark.parametrize("stream", [False, True])
def test_function_calls_keep_their_thought_signature(
    gateway: LiveGateway, fake_provider: FakeProvider, key: str, stream: bool
) -> None:
    sdk: Any = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Rome"}},
    ]
    fake_provider.behave(Behaviour(tool_calls=calls, thinking="Two cities."), times=1)
    request: dict[str, Any] = {"model": MODEL, "input": "Weather in Paris and Rome?", "tools": [WEATHER_TOOL]}
    if stream:
        with sdk.responses.stream(**request) as events:
            final = events.get_final_response()
    else:
        final = sdk.responses.create(**request)

    function_calls = [item for item in final.output if item.type == "function_call"]
    assert [json.loads(c.arguments) for c in function_calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert any(item.type == "reasoning" and item.encrypted_content for item in final.output)

    follow_up = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        *[item.model_dump(exclude_none=True) for item in final.output],
        {"type": "function_call_output", "call_id": function_calls[0].call_id, "output": "sunny"},
        {"type": "function_call_output", "call_id": function_calls[1].call_id, "output": "rainy"},
    ]
    second = sdk.responses.create(**{**request, "input": follow_up})

    assert second.output_text == "Hello from gemini-2.5-flash!"
    model_turn = fake_provider.requests[-1].json["contents"][1]
    assert model_turn["role"] == "model"
    signature = signature_of('Two cities.get_weather{"city":"Paris"}get_weather{"city":"Rome"}')
    calls_sent = [part for part in model_turn["parts"] if "functionCall" in part]
    assert calls_sent[0]["thoughtSignature"] == signature
    assert "thoughtSignature" not in calls_sent[1]
    assert [part["functionCall"]["args"] for part in calls_sent] == [{"city": "Paris"}, {"city": "Rome"}]


def test_ollama_stream_against_gemini(gateway: LiveGateway, fake_provider: FakeProvider, key: str) -> None:
    fake_provider.behave(Behaviour(reply="Sunny all week", prompt_tokens=6, completion_tokens=3))

    parts = list(
        ollama_client(gateway, key).chat(model=MODEL, messages=[{"role": "user", "content": "Weather?"}], stream=True)
    )

    assert "".join(p.message.content or "" for p in parts) == "Sunny all week"
    assert [p.done for p in parts].count(True) == 1
    assert (parts[-1].prompt_eval_count, parts[-1].eval_count) == (6, 3)
