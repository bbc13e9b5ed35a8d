"""The official openai SDK against the gateway with an Anthropic-format provider behind it:
Chat Completions translated to Messages and back, stream and non-stream."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.e2e.test_openai_chat import make_key, records
from tests.fakes.anthropic_format import signature_of
from tests.fakes.provider import Behaviour, FakeProvider
from tests.formats.test_anthropic_sdk import PNG, connect
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e

MODEL = "anthropic/claude-sonnet-4-5"
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
# Arguments as the model writes them: not compact, unicode, escapes; they must arrive byte for byte.
PARIS = '{"city": "Paris, Île-de-France", "note": "a \\"quoted\\" word", "days": [1, 2, 3]}'
LYON = '{"city": "Lyon"}'


@pytest.fixture
def sdk(gateway: LiveGateway, fake_provider: FakeProvider) -> openai.OpenAI:
    connect(fake_provider, "anthropic", api_key="sk-ant-upstream")
    return openai.OpenAI(base_url=gateway.base_url, api_key=make_key(), max_retries=0)


def sent(fake: FakeProvider) -> dict[str, Any]:
    body = fake.requests[-1].json
    assert isinstance(body, dict)
    return body


def test_non_stream_text(gateway: LiveGateway, fake_provider: FakeProvider, sdk: openai.OpenAI) -> None:
    fake_provider.behave(Behaviour(reply="Hi there", prompt_tokens=30, completion_tokens=4, cached_tokens=20))

    completion = sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hello"}],
        temperature=0.5,
        stop=["\n\n"],
    )

    assert completion.choices[0].message.content == "Hi there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (30, 4)
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 20
    request = fake_provider.requests[-1]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-upstream" and request.headers["anthropic-version"] == "2023-06-01"
    assert sent(fake_provider) == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "system": [{"type": "text", "text": "Be kind."}],
        "max_tokens": 8192,
        "temperature": 0.5,
        "stop_sequences": ["\n\n"],
    }
    [rec] = records(gateway)
    assert (rec.provider, rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens) == ("anthropic", 30, 4, 20)


def test_stream_text_with_usage(gateway: LiveGateway, fake_provider: FakeProvider, sdk: openai.OpenAI) -> None:
    fake_provider.behave(Behaviour(reply="alpha beta gamma", prompt_tokens=8, completion_tokens=3))

    chunks = list(
        sdk.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Go"}],
            max_tokens=64,
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "alpha beta gamma"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (8, 3)
    assert sent(fake_provider)["stream"] is True and sent(fake_provider)["max_tokens"] == 64
    [rec] = records(gateway)
    assert rec.stream and (rec.prompt_tokens, rec.completion_tokens) == (8, 3)


def test_stream_without_usage_option(fake_provider: FakeProvider, sdk: openai.OpenAI) -> None:
    fake_provider.behave(Behaviour(reply="x y"))
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Go"}], stream=True))
    # The canonical usage chunk is always produced; the OpenAI encoder drops it when not asked for.
    assert all(c.choices for c in chunks)


def test_streamed_tool_call_arguments_are_reassembled_exactly(fake_provider: FakeProvider, sdk: openai.OpenAI) -> None:
    calls = [
        {"id": "toolu_P", "name": "get_weather", "arguments": PARIS},
        {"id": "toolu_L", "name": "get_weather", "arguments": LYON},
    ]
    fake_provider.behave(Behaviour(reply="Looking up both.", tool_calls=calls))

    stream = sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Paris and Lyon?"}],
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=True,
        stream=True,
    )
    assembled: dict[int, dict[str, str]] = {}
    text, finish = "", None
    for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is None:
            continue
        text += delta.content or ""
        for call in delta.tool_calls or []:
            entry = assembled.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.id or ""
            entry["name"] += (call.function.name if call.function else None) or ""
            entry["arguments"] += (call.function.arguments if call.function else None) or ""
        finish = chunk.choices[0].finish_reason or finish

    assert text == "Looking up both."
    assert assembled == {
        0: {"id": "toolu_P", "name": "get_weather", "arguments": PARIS},
        1: {"id": "toolu_L", "name": "get_weather", "arguments": LYON},
    }
    assert finish == "tool_calls"
    body = sent(fake_provider)
    assert body["tools"] == [
        {"name": "get_weather", "input_schema": TOOLS[0]["function"]["parameters"], "description": "Weather for a city"}
    ]
    assert body["tool_choice"] == {"type": "any"}


def test_tool_round_trip_non_stream(fake_provider: FakeProvider, sdk: openai.OpenAI) -> None:
    fake_provider.behave(Behaviour(tool_calls=[{"id": "toolu_1", "name": "get_weather", "arguments": LYON}]), times=1)
    question: Any = {"role": "user", "content": "Lyon?"}

    first = sdk.chat.completions.create(model=MODEL, messages=[question], tools=TOOLS)

    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.content is None
    assert message.tool_calls is not None
    [call] = message.tool_calls
    assert call.type == "function"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "toolu_1",
        "get_weather",
        {"city": "Lyon"},
    )

    fake_provider.behave(Behaviour(reply="Sunny in Lyon."))
    second = sdk.chat.completions.create(
        model=MODEL,
        tools=TOOLS,
        messages=[
            question,
            message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "22C"},
        ],
    )

    assert second.choices[0].message.content == "Sunny in Lyon."
    # The fake provider rejects a tool_use without its tool_result right after, like Anthropic does.
    assert sent(fake_provider)["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Lyon"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"}]},
    ]


def test_reasoning_non_stream_and_signature_sent_back(fake_provider: FakeProvider, sdk: openai.OpenAI) -> None:
    thought = "The user wants a number. 6 times 7."
    fake_provider.behave(Behaviour(thinking=thought, reply="42"), times=1)
    question: Any = {"role": "user", "content": "6*7?"}

    first = sdk.chat.completions.create(model=MODEL, messages=[question], reasoning_effort="high")

    message = first.choices[0].message
    extra = message.model_extra or {}
    assert message.content == "42" and extra["reasoning_content"] == thought
    assert extra["thinking_blocks"] == [{"type": "thinking", "thinking": thought, "signature": signature_of(thought)}]
    body = sent(fake_provider)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert body["max_tokens"] == 24576 + 8192

    fake_provider.behave(Behaviour(reply="Yes."))
    history: Any = [question, message.model_dump(exclude_none=True), {"role": "user", "content": "Sure?"}]
    sdk.chat.completions.create(model=MODEL, reasoning_effort="high", messages=history)

    assert sent(fake_provider)["messages"][1]["content"] == [
        {"type": "thinking", "thinking": thought, "signature": signature_of(thought)},
        {"type": "text", "text": "42"},
    ]


def test_reasoning_stream(gateway: LiveGateway, fake_provider: FakeProvider, sdk: openai.OpenAI) -> None:
    thought = "Think step by step."
    fake_provider.behave(Behaviour(thinking=thought, reply="Done.", prompt_tokens=5, completion_tokens=9))

    chunks = list(
        sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Go"}], reasoning_effort="low", stream=True
        )
    )

    extras = [c.choices[0].delta.model_extra or {} for c in chunks if c.choices]
    assert "".join(e.get("reasoning_content", "") for e in extras) == thought
    assert [e["thinking_signature"] for e in extras if "thinking_signature" in e] == [signature_of(thought)]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Done."
    assert sent(fake_provider)["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_image_and_json_schema(fake_provider: FakeProvider, sdk: openai.OpenAI) -> None:
    schema: Any = {"type": "object", "properties": {"animal": {"type": "string"}}, "required": ["animal"]}
    fake_provider.behave(Behaviour(reply='{"animal": "cat"}'))

    completion = sdk.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Which animal?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                ],
            }
        ],
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}},
    )

    assert json.loads(completion.choices[0].message.content or "") == {"animal": "cat"}
    body = sent(fake_provider)
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Which animal?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


def test_rate_limit_reaches_the_client_with_retry_after(fake_provider: FakeProvider, sdk: openai.OpenAI) -> None:
    headers = {"retry-after": "12", "anthropic-ratelimit-requests-remaining": "0"}
    fake_provider.behave(Behaviour(status=429, error_message="Too many requests", headers=headers))

    with pytest.raises(openai.RateLimitError) as info:
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])

    assert info.value.response.headers["retry-after"] == "12"
    assert isinstance(info.value.body, dict) and "Too many requests" in info.value.body["message"]


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"n": 2}, "'n'"),
        ({"response_format": {"type": "json_object"}}, "json_object"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}],
                    }
                ]
            },
            "image/bmp",
        ),
    ],
)
def test_inexpressible_requests_are_400_in_openai_shape(
    fake_provider: FakeProvider, sdk: openai.OpenAI, fields: dict[str, Any], needle: str
) -> None:
    request: Any = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], **fields}
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(**request)
    assert needle in info.value.message
    assert fake_provider.requests == []
