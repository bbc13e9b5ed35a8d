"""The openai SDK's Chat Completions against the gateway, served by a Responses API provider
(the fake's `/v1/responses`): requests become Responses input items, answers and streams
become chat completions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from gateway.snapshot import snapshot_mark_dirty
from gateway.state import get_state
from providers.models import ProviderNode
from tests.fakes.provider import Behaviour, FakeProvider
from tests.fakes.responses_format import encrypted_of
from tests.formats.test_responses_e2e import connect, make_key, records
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e

PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather of a city", "parameters": PARAMETERS},
    }
]


@pytest.fixture
def chat(gateway: LiveGateway, fake_provider: FakeProvider) -> Any:
    """An openai client; model `openai-responses/...` is served by the fake's Responses endpoint."""
    connect("openai-responses", fake_provider.openai_base_url, api_key="sk-resp")
    return openai.OpenAI(base_url=gateway.base_url, api_key=make_key(), max_retries=0)


def test_non_stream_chat(chat: Any, fake_provider: FakeProvider, gateway: LiveGateway) -> None:
    fake_provider.behave(Behaviour(reply="Hi there", prompt_tokens=11, completion_tokens=4, cached_tokens=2))

    completion = chat.chat.completions.create(
        model="openai-responses/gpt-4.1",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        max_tokens=40,
        temperature=0.2,
    )

    assert completion.choices[0].message.content == "Hi there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 11 and completion.usage.prompt_tokens_details.cached_tokens == 2
    sent = fake_provider.requests[-1]
    assert sent.path == "/v1/responses" and sent.headers["authorization"] == "Bearer sk-resp"
    assert sent.json == {
        "model": "gpt-4.1",
        "input": [
            {"type": "message", "role": "system", "content": "Be brief."},
            {"type": "message", "role": "user", "content": "Hello"},
        ],
        "store": False,
        "max_output_tokens": 40,
        "temperature": 0.2,
    }
    [rec] = records(gateway)
    assert (rec.provider, rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens) == ("openai-responses", 11, 4, 2)


def test_stream_with_tool_call_arguments_in_pieces(chat: Any, fake_provider: FakeProvider) -> None:
    arguments = {"city": "Paris", "days": [1, 2, 3], "note": "umbrella?"}
    fake_provider.behave(
        Behaviour(
            reply="Checking.",
            tool_calls=[
                {"id": "call_1", "name": "get_weather", "arguments": arguments},
                {"id": "call_2", "name": "get_weather", "arguments": {"city": "Oslo"}},
            ],
            prompt_tokens=8,
            completion_tokens=5,
        )
    )

    chunks = list(
        chat.chat.completions.create(
            model="openai-responses/gpt-4.1",
            messages=[{"role": "user", "content": "Weather?"}],
            tools=TOOLS,
            tool_choice="required",
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Checking."
    assembled: dict[int, dict[str, str]] = {}
    for c in chunks:
        for call in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            entry = assembled.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.id or ""
            entry["name"] += (call.function.name or "") if call.function else ""
            entry["arguments"] += (call.function.arguments or "") if call.function else ""
    assert [(e["id"], e["name"], json.loads(e["arguments"])) for e in assembled.values()] == [
        ("call_1", "get_weather", arguments),
        ("call_2", "get_weather", {"city": "Oslo"}),
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert chunks[-1].usage.total_tokens == 13
    sent = fake_provider.requests[-1].json
    assert sent["stream"] is True and sent["tool_choice"] == "required"
    assert sent["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": PARAMETERS,
        }
    ]


def test_tool_round_trip(chat: Any, fake_provider: FakeProvider) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]

    completion = chat.chat.completions.create(model="openai-responses/gpt-4.1", messages=messages, tools=TOOLS)

    assert completion.choices[0].message.content == "Hello from gpt-4.1!"
    # The fake rejects an output whose call_id has no function_call before it, as OpenAI does.
    assert fake_provider.requests[-1].json["input"][1:] == [
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    ]


def test_reasoning_comes_back_and_is_replayed(chat: Any, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(reply="42", thinking="Deep thought", reasoning_tokens=5))

    completion = chat.chat.completions.create(
        model="openai-responses/o3", messages=[{"role": "user", "content": "Answer?"}], reasoning_effort="high"
    )

    message = completion.choices[0].message
    assert message.content == "42" and message.model_extra["reasoning_content"] == "Deep thought"
    [block] = message.model_extra["thinking_blocks"]
    sent = fake_provider.requests[-1].json
    assert sent["reasoning"] == {"effort": "high", "summary": "auto"}
    assert sent["include"] == ["reasoning.encrypted_content"]
    assert completion.usage.completion_tokens_details.reasoning_tokens == 5

    # Next turn: the assistant message as the client got it carries OpenAI's encrypted reasoning back.
    chat.chat.completions.create(
        model="openai-responses/o3",
        messages=[
            {"role": "user", "content": "Answer?"},
            {"role": "assistant", "content": "42", "thinking_blocks": [block]},
            {"role": "user", "content": "Why?"},
        ],
    )
    replayed = fake_provider.requests[-1].json["input"][1]
    assert replayed["type"] == "reasoning" and replayed["encrypted_content"] == encrypted_of("Deep thought")


def test_stream_reasoning_and_length(chat: Any, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(reply="partial answer", thinking="Some thinking", finish_reason="length"))

    chunks = list(
        chat.chat.completions.create(
            model="openai-responses/o3", messages=[{"role": "user", "content": "Long?"}], stream=True
        )
    )

    reasoning = "".join(c.choices[0].delta.model_extra.get("reasoning_content") or "" for c in chunks if c.choices)
    assert reasoning == "Some thinking"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "partial answer"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]


def test_inexpressible_parameter_is_a_400(chat: Any, fake_provider: FakeProvider) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat.chat.completions.create(
            model="openai-responses/gpt-4.1", messages=[{"role": "user", "content": "x"}], stop=["END"]
        )
    assert "stop sequences" in info.value.message
    assert fake_provider.requests == []


def test_upstream_errors_and_failed_streams(chat: Any, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(status=429, error_message="Too many", headers={"Retry-After": "4"}), times=1)
    with pytest.raises(openai.RateLimitError) as info:
        chat.chat.completions.create(model="openai-responses/gpt-5", messages=[{"role": "user", "content": "x"}])
    assert "Too many" in info.value.message and info.value.response.headers["retry-after"] == "4"
    # The account now cools down: the next call is refused without reaching the provider.
    calls = len(fake_provider.requests)
    with pytest.raises(openai.RateLimitError) as again:
        chat.chat.completions.create(model="openai-responses/gpt-5", messages=[{"role": "user", "content": "x"}])
    assert "cooling down" in again.value.message and len(fake_provider.requests) == calls
    asyncio.run(get_state().reset())

    failed = {"type": "response.failed", "sequence_number": 0, "response": {"id": "r", "status": "failed",
              "error": {"code": "invalid_prompt", "message": "Prompt refused"}}}  # fmt: skip
    body = f"event: response.failed\ndata: {json.dumps(failed)}\n\n".encode()
    fake_provider.behave(Behaviour(body=body), times=1)
    with pytest.raises(openai.BadRequestError) as bad:
        chat.chat.completions.create(
            model="openai-responses/gpt-5", messages=[{"role": "user", "content": "x"}], stream=True
        )
    assert "Prompt refused" in bad.value.message


def test_custom_responses_node(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    """A custom node with apiType "responses": chat clients are translated, Responses clients pass through."""
    ProviderNode.objects.create(
        name="Corp LLM", prefix="corp", type=ProviderNode.TYPE_OPENAI, api_type=ProviderNode.API_RESPONSES,
        base_url=fake_provider.openai_base_url,
    )  # fmt: skip
    connect("corp", fake_provider.openai_base_url, api_key="sk-corp")
    snapshot_mark_dirty()
    sdk: Any = openai.OpenAI(base_url=gateway.base_url, api_key=make_key(), max_retries=0)

    completion = sdk.chat.completions.create(model="corp/house-model", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Hello from house-model!"
    assert fake_provider.requests[-1].path == "/v1/responses"
    assert fake_provider.requests[-1].json["input"] == [{"type": "message", "role": "user", "content": "hi"}]

    response = sdk.responses.create(model="corp/house-model", input="hi", tools=[{"type": "web_search"}])
    assert response.output_text == "Hello from house-model!"
    assert fake_provider.requests[-1].json == {
        "model": "house-model",
        "input": "hi",
        "tools": [{"type": "web_search"}],
        "stream": False,
    }
    assert fake_provider.requests[-1].headers["authorization"] == "Bearer sk-corp"
