"""The official openai SDK against the gateway, routed to the Gemini-format fake provider:
chat requests are translated to `generateContent`, answers and streams back to OpenAI chat."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from providers.adapters.gemini.wire import SKIP_SIGNATURE
from tests.e2e.test_openai_chat import make_key, records
from tests.fakes.gemini_format import RETRY_DELAY, signature_of
from tests.fakes.provider import Behaviour, FakeProvider
from tests.formats.test_gemini_sdk import connect
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e

MODEL = "gemini/gemini-2.5-flash"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def client(gateway: LiveGateway, fake_provider: FakeProvider) -> openai.OpenAI:
    connect("gemini", fake_provider.url + "/v1beta", api_key="AIza-upstream")
    return openai.OpenAI(base_url=gateway.base_url, api_key=make_key(), max_retries=0)


def sent(fake: FakeProvider, index: int = -1) -> dict[str, Any]:
    body = fake.requests[index].json
    assert isinstance(body, dict)
    return body


def extra(obj: Any, name: str) -> Any:
    """A non-OpenAI field the SDK kept on a parsed object (reasoning_content, extra_content)."""
    return (obj.model_extra or {}).get(name)


def test_text(gateway: LiveGateway, fake_provider: FakeProvider, client: openai.OpenAI) -> None:
    fake_provider.behave(Behaviour(reply="Bonjour", prompt_tokens=12, completion_tokens=2, cached_tokens=5))

    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Hello"}],
        max_tokens=64,
        temperature=0.4,
        top_p=0.9,
        stop=["\n\n"],
    )

    assert completion.choices[0].message.content == "Bonjour"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gemini-2.5-flash"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 2)
    assert completion.usage.prompt_tokens_details and completion.usage.prompt_tokens_details.cached_tokens == 5
    request = fake_provider.requests[-1]
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.headers["x-goog-api-key"] == "AIza-upstream" and "authorization" not in request.headers
    assert sent(fake_provider) == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "systemInstruction": {"parts": [{"text": "Answer in French."}]},
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.4, "topP": 0.9, "stopSequences": ["\n\n"]},
    }
    [rec] = records(gateway)
    assert (rec.provider, rec.model, rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens) == (
        "gemini",
        "gemini-2.5-flash",
        12,
        2,
        5,
    )


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream(gateway: LiveGateway, fake_provider: FakeProvider, client: openai.OpenAI, include_usage: bool) -> None:
    fake_provider.behave(Behaviour(reply="one two three", prompt_tokens=4, completion_tokens=3))
    options: Any = {"include_usage": True} if include_usage else None

    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "count"}], stream=True, stream_options=options
        )
    )

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.prompt_tokens == 4
    else:
        assert all(c.usage is None for c in chunks)
    assert fake_provider.requests[-1].query == {"alt": "sse"}
    [rec] = records(gateway)
    assert rec.stream and (rec.prompt_tokens, rec.completion_tokens) == (4, 3)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(fake_provider: FakeProvider, client: openai.OpenAI, stream: bool) -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Rome"}},
    ]
    fake_provider.behave(Behaviour(tool_calls=calls, thinking="Two cities."), times=1)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Rome?"}]

    if stream:
        chunks = list(
            client.chat.completions.create(
                model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="required", stream=True
            )
        )
        pieces = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
        tool_calls = [
            {
                "id": p.id,
                "type": "function",
                "function": {"name": p.function.name, "arguments": p.function.arguments},
                "extra_content": extra(p, "extra_content"),
            }
            for p in pieces
            if p.function
        ]
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    else:
        completion = client.chat.completions.create(
            model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
        )
        assert completion.choices[0].finish_reason == "tool_calls"
        tool_calls = [
            {**call.model_dump(exclude_none=True), "extra_content": extra(call, "extra_content")}
            for call in completion.choices[0].message.tool_calls or []
        ]

    assert [json.loads(c["function"]["arguments"]) for c in tool_calls] == [{"city": "Paris"}, {"city": "Rome"}]
    first_id, second_id = tool_calls[0]["id"], tool_calls[1]["id"]
    assert first_id and second_id and first_id != second_id
    # Gemini signs the first call of a step; the signature rides along for the next turn.
    signature = signature_of('Two cities.get_weather{"city":"Paris"}get_weather{"city":"Rome"}')
    assert tool_calls[0]["extra_content"] == {"google": {"thought_signature": signature}}
    assert tool_calls[1]["extra_content"] is None
    assert sent(fake_provider)["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    fake_provider.behave(Behaviour(reply="Sunny and rainy."))
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{k: v for k, v in c.items() if v is not None} for c in tool_calls],
        },
        {"role": "tool", "tool_call_id": second_id, "content": "rainy"},
        {"role": "tool", "tool_call_id": first_id, "content": '{"sky": "sunny"}'},
    ]
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])

    assert final.choices[0].message.content == "Sunny and rainy."
    contents = sent(fake_provider)["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": first_id},
                "thoughtSignature": signature,
            },
            {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}, "id": second_id}},
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"output": "rainy"}, "id": second_id}},
            {"functionResponse": {"name": "get_weather", "response": {"sky": "sunny"}, "id": first_id}},
        ],
    }
    assert sent(fake_provider)["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"],
                }
            ]
        }
    ]


def test_gemini_3_history_without_signatures(fake_provider: FakeProvider, gateway: LiveGateway) -> None:
    """A tool-call history from another provider has no signature: Gemini 3 gets the documented skip value."""
    connect("gemini", fake_provider.url + "/v1beta")
    client = openai.OpenAI(base_url=gateway.base_url, api_key=make_key(), max_retries=0)
    fake_provider.behave(Behaviour(reply="ok"))

    client.chat.completions.create(
        model="gemini/gemini-3-flash-preview",
        messages=[
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ],
    )

    assert sent(fake_provider)["contents"][1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning(gateway: LiveGateway, fake_provider: FakeProvider, client: openai.OpenAI, stream: bool) -> None:
    fake_provider.behave(Behaviour(thinking="Six times seven.", reply="42", reasoning_tokens=9, completion_tokens=10))
    request: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "6*7?"}],
        "reasoning_effort": "high",
    }

    if stream:
        chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        reasoning = "".join(extra(d, "reasoning_content") or "" for d in deltas)
        content = "".join(d.content or "" for d in deltas)
        usage = chunks[-1].usage
    else:
        completion = client.chat.completions.create(**request)
        message = completion.choices[0].message
        reasoning, content, usage = extra(message, "reasoning_content"), message.content, completion.usage

    assert (reasoning, content) == ("Six times seven.", "42")
    assert usage and usage.completion_tokens == 10
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 9
    assert sent(fake_provider)["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 24576,
        "includeThoughts": True,
    }
    [rec] = records(gateway)
    assert rec.reasoning_tokens == 9


def test_images(fake_provider: FakeProvider, client: openai.OpenAI) -> None:
    fake_provider.behave(Behaviour(reply="Two images."))

    client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/photo.webp"}},
                ],
            }
        ],
    )

    assert sent(fake_provider)["contents"][0]["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"fileUri": "https://example.com/photo.webp", "mimeType": "image/webp"}},
    ]


def test_json_schema(fake_provider: FakeProvider, client: openai.OpenAI) -> None:
    fake_provider.behave(Behaviour(reply='{"n": 1}'))
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }

    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "one"}],
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema, "strict": True}},
    )

    assert json.loads(completion.choices[0].message.content or "") == {"n": 1}
    assert sent(fake_provider)["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


def test_rate_limit_carries_retry_delay(
    gateway: LiveGateway, fake_provider: FakeProvider, client: openai.OpenAI
) -> None:
    fake_provider.behave(Behaviour(status=429))

    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])

    assert info.value.response.headers["retry-after"] == RETRY_DELAY.removesuffix("s")
    assert "exceeded your current quota" in info.value.message


def test_unavailable_falls_back_to_the_next_connection(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect("gemini", fake_provider.url + "/v1beta", api_key="key-1", priority=1)
    connect("gemini", fake_provider.url + "/v1beta", api_key="key-2", priority=2)
    client = openai.OpenAI(base_url=gateway.base_url, api_key=make_key(), max_retries=0)
    fake_provider.behave(Behaviour(status=503), times=1)
    fake_provider.behave(Behaviour(reply="second try"))

    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])

    assert completion.choices[0].message.content == "second try"
    assert [r.headers["x-goog-api-key"] for r in fake_provider.requests] == ["key-1", "key-2"]


def test_invalid_upstream_key_is_not_the_clients_fault(fake_provider: FakeProvider, client: openai.OpenAI) -> None:
    fake_provider.behave(Behaviour(status=400, error_message="API key not valid. Please pass a valid API key."))

    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])

    assert "API key not valid" in info.value.message


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"logprobs": True}, "logprobs"),
        ({"parallel_tool_calls": False, "tools": [WEATHER_TOOL]}, "parallel_tool_calls"),
    ],
)
def test_inexpressible_features_are_400(
    fake_provider: FakeProvider, client: openai.OpenAI, fields: dict[str, Any], needle: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], **fields)

    assert needle in info.value.message and "Gemini" in info.value.message
    assert fake_provider.requests == []


def test_stream_error_event_before_any_content_is_an_http_error(
    fake_provider: FakeProvider, client: openai.OpenAI
) -> None:
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    fake_provider.behave(Behaviour(body=b"data: " + json.dumps(error).encode() + b"\r\n\r\n"))

    with pytest.raises(openai.APIStatusError) as info:
        list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True))

    assert info.value.status_code == 503 and "overloaded" in info.value.message
