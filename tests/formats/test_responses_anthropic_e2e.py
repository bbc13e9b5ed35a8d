"""The openai SDK's Responses API against an Anthropic-format provider: thinking with signatures and
tool calls must survive the round trip through a Responses client (carried in `encrypted_content`)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fakes.anthropic_format import signature_of
from tests.fakes.provider import Behaviour, FakeProvider
from tests.formats.test_responses_e2e import WEATHER_TOOL, connect, make_key, records
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e

MODEL = "anthropic/claude-sonnet-4-5"


@pytest.fixture
def sdk(gateway: LiveGateway, fake_provider: FakeProvider) -> Any:
    connect("anthropic", fake_provider.openai_base_url, api_key="sk-ant")
    return openai.OpenAI(base_url=gateway.base_url, api_key=make_key(), max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_and_tools_round_trip(
    sdk: Any, fake_provider: FakeProvider, gateway: LiveGateway, stream: bool
) -> None:
    fake_provider.behave(
        Behaviour(
            thinking="The user wants weather.",
            reply="Let me look.",
            tool_calls=[{"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
            prompt_tokens=40,
            completion_tokens=12,
        ),
        times=1,
    )
    request: dict[str, Any] = {
        "model": MODEL,
        "instructions": "You are helpful.",
        "input": "Weather in Paris?",
        "tools": [WEATHER_TOOL],
        "reasoning": {"effort": "medium"},
        "max_output_tokens": 4000,
    }
    if stream:
        with sdk.responses.stream(**request) as events:
            final = events.get_final_response()
    else:
        final = sdk.responses.create(**request)

    assert [item.type for item in final.output] == ["reasoning", "message", "function_call"]
    reasoning, _, call = final.output
    assert reasoning.summary[0].text == "The user wants weather." and reasoning.encrypted_content
    assert final.output_text == "Let me look."
    assert (call.call_id, json.loads(call.arguments)) == ("toolu_1", {"city": "Paris"})
    first = fake_provider.requests[-1].json
    assert first["system"] == [{"type": "text", "text": "You are helpful."}]
    assert first["thinking"]["type"] == "enabled"
    assert first["tools"][0]["name"] == "get_weather"

    follow_up = [
        {"role": "user", "content": "Weather in Paris?"},
        *[item.model_dump(exclude_none=True) for item in final.output],
        {"type": "function_call_output", "call_id": "toolu_1", "output": "18C"},
    ]
    second = sdk.responses.create(**{**request, "input": follow_up})

    assert second.output_text == "Hello from claude-sonnet-4-5!"
    # Anthropic requires the signed thinking block first in the assistant turn that used tools.
    assistant, results = fake_provider.requests[-1].json["messages"][1:]
    assert assistant["role"] == "assistant"
    assert assistant["content"][0] == {
        "type": "thinking",
        "thinking": "The user wants weather.",
        "signature": signature_of("The user wants weather."),
    }
    assert [block["type"] for block in assistant["content"]] == ["thinking", "text", "tool_use"]
    assert results["content"][0]["type"] == "tool_result" and results["content"][0]["tool_use_id"] == "toolu_1"
    recorded = records(gateway)
    assert recorded[0].prompt_tokens == 40 and recorded[0].completion_tokens == 12


def test_stream_events_in_order(sdk: Any, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(thinking="Hmm", reply="Yes."))

    events = list(sdk.responses.create(model=MODEL, input="?", stream=True, reasoning={"effort": "low"}))

    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
