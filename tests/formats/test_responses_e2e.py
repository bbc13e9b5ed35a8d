"""The openai SDK's Responses API against the gateway: passed through to a Responses provider,
and translated for an OpenAI Chat Completions provider."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from gateway.keys import generate_api_key, hash_api_key, visible_prefix
from gateway.models import ApiKey
from gateway.recorder import recorder
from providers.models import ProviderConnection
from tests.fakes.provider import Behaviour, FakeProvider
from tests.fakes.responses_format import encrypted_of
from tests.formats.test_responses_format import parse_sse_strictly
from tests.live_server import LiveGateway
from usage.models import UsageRecord

pytestmark = pytest.mark.e2e

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="
PNG_DATA_URL = f"data:image/png;base64,{PNG_BASE64}"


def make_key() -> str:
    plain = generate_api_key()
    ApiKey.objects.create(name="test", key_hash=hash_api_key(plain), prefix=visible_prefix(plain))
    return plain


def connect(provider: str, base_url: str, api_key: str = "sk-upstream") -> None:
    conn = ProviderConnection(provider=provider, name=provider, priority=1, base_url=base_url)
    conn.set_api_key(api_key)
    conn.save()


# The SDK's overloads type every literal of the Responses API; test bodies are checked by the SDK
# itself at run time, so the client is typed loosely here.
Client = Any


def sdk(gateway: LiveGateway, key: str) -> Client:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def records(gateway: LiveGateway) -> list[UsageRecord]:
    gateway.wait_idle()
    assert recorder.flush(10)
    return list(UsageRecord.objects.order_by("id"))


@pytest.fixture
def passthrough(gateway: LiveGateway, fake_provider: FakeProvider) -> Client:
    """A client whose model `openai-responses/...` goes to the fake's Responses endpoint."""
    connect("openai-responses", fake_provider.openai_base_url, api_key="sk-resp")
    return sdk(gateway, make_key())


@pytest.fixture
def translated(gateway: LiveGateway, fake_provider: FakeProvider) -> Client:
    """A client whose model `openai/...` goes to the fake's Chat Completions endpoint."""
    connect("openai", fake_provider.openai_base_url)
    return sdk(gateway, make_key())


# -- passthrough to a Responses provider ----------------------------------------------------------


def test_passthrough_non_stream(passthrough: Client, fake_provider: FakeProvider, gateway: LiveGateway) -> None:
    fake_provider.behave(Behaviour(reply="Hi there", prompt_tokens=12, completion_tokens=3, cached_tokens=5))

    response = passthrough.responses.create(
        model="openai-responses/gpt-5", instructions="Be brief.", input="Hello", metadata={"k": "v"}
    )

    assert response.output_text == "Hi there"
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 5
    sent = fake_provider.requests[-1]
    assert sent.path == "/v1/responses"
    assert sent.headers["authorization"] == "Bearer sk-resp"
    # The client's own body, only the model id changed (and stream stated).
    assert sent.json == {
        "model": "gpt-5",
        "instructions": "Be brief.",
        "input": "Hello",
        "metadata": {"k": "v"},
        "stream": False,
    }
    [rec] = records(gateway)
    assert (rec.provider, rec.model, rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens) == (
        "openai-responses",
        "gpt-5",
        12,
        3,
        5,
    )


def test_passthrough_stream_helper_and_usage(
    passthrough: Client, fake_provider: FakeProvider, gateway: LiveGateway
) -> None:
    fake_provider.behave(
        Behaviour(reply="one two three", thinking="Let me think", prompt_tokens=9, completion_tokens=7)
    )

    with passthrough.responses.stream(
        model="openai-responses/o3",
        input=[{"role": "user", "content": "count"}],
        reasoning={"effort": "high", "summary": "auto"},
        include=["reasoning.encrypted_content"],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()

    assert final.output_text == "one two three"
    reasoning = final.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content == encrypted_of("Let me think")
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in kinds
    assert fake_provider.requests[-1].json["reasoning"] == {"effort": "high", "summary": "auto"}
    [rec] = records(gateway)
    assert rec.stream and (rec.prompt_tokens, rec.completion_tokens) == (9, 7)


def test_passthrough_keeps_builtin_tools_and_state(passthrough: Client, fake_provider: FakeProvider) -> None:
    response = passthrough.responses.create(
        model="openai-responses/gpt-4.1",
        input="What happened today?",
        tools=[{"type": "web_search"}],
        previous_response_id="resp_earlier",
    )

    assert response.output_text == "Hello from gpt-4.1!"
    sent = fake_provider.requests[-1].json
    assert sent["tools"] == [{"type": "web_search"}] and sent["previous_response_id"] == "resp_earlier"


def test_passthrough_function_call_round_trip(passthrough: Client, fake_provider: FakeProvider) -> None:
    fake_provider.behave(
        Behaviour(tool_calls=[{"id": "call_w1", "name": "get_weather", "arguments": {"city": "Paris"}}]), times=1
    )
    stream = passthrough.responses.create(
        model="openai-responses/gpt-5", input="Weather in Paris?", tools=[WEATHER_TOOL], stream=True
    )
    events = list(stream)
    [call] = [e.item for e in events if e.type == "response.output_item.done"]
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Paris"}

    second = passthrough.responses.create(
        model="openai-responses/gpt-5",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C, sunny"},
        ],
        tools=[WEATHER_TOOL],
    )

    assert second.output_text == "Hello from gpt-5!"
    assert fake_provider.requests[-1].json["input"][2]["output"] == "18C, sunny"


# -- translation for an OpenAI Chat Completions provider ------------------------------------------


def test_translated_non_stream(translated: Client, fake_provider: FakeProvider, gateway: LiveGateway) -> None:
    fake_provider.behave(
        Behaviour(reply="Bonjour", prompt_tokens=20, completion_tokens=6, cached_tokens=8, reasoning_tokens=2)
    )

    response = translated.responses.create(
        model="openai/gpt-4o",
        instructions="Answer in French.",
        input=[
            {"role": "developer", "content": "Stay polite."},
            {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
        ],
        max_output_tokens=50,
        temperature=0.3,
        top_p=0.9,
    )

    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "Bonjour"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (20, 6, 26)
    assert response.usage.input_tokens_details.cached_tokens == 8
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    sent = fake_provider.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "developer", "content": "Stay polite."},
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
    ]
    assert (sent.json["max_tokens"], sent.json["temperature"], sent.json["top_p"]) == (50, 0.3, 0.9)
    [rec] = records(gateway)
    assert (rec.provider, rec.prompt_tokens, rec.cached_tokens, rec.reasoning_tokens) == ("openai", 20, 8, 2)


def test_translated_stream_event_lifecycle(translated: Client, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(reply="one two three", prompt_tokens=4, completion_tokens=3))

    events = list(translated.responses.create(model="openai/gpt-4o", input="count", stream=True))

    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1].response
    assert completed.output_text == "one two three"
    assert completed.usage is not None and completed.usage.total_tokens == 7
    assert len({e.response.id for e in events if hasattr(e, "response")}) == 1


def test_translated_stream_helper(translated: Client, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(reply="streamed words here"))

    with translated.responses.stream(model="openai/gpt-4o-mini", input="go") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(deltas) == "streamed words here" == final.output_text


def test_translated_function_call_round_trip(translated: Client, fake_provider: FakeProvider) -> None:
    arguments = {"city": "Paris", "unit": "celsius", "details": ["wind", "rain"]}
    fake_provider.behave(
        Behaviour(
            reply="Let me check.",
            tool_calls=[
                {"id": "call_a", "name": "get_weather", "arguments": arguments},
                {"id": "call_b", "name": "get_weather", "arguments": {"city": "Rome"}},
            ],
        ),
        times=1,
    )
    with translated.responses.stream(
        model="openai/gpt-4o", input="Weather in Paris and Rome?", tools=[WEATHER_TOOL], tool_choice="auto"
    ) as stream:
        argument_deltas = [e.delta for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()

    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, json.loads(c.arguments)) for c in calls] == [
        ("call_a", arguments),
        ("call_b", {"city": "Rome"}),
    ]
    assert len(argument_deltas) > 2  # fragments, reassembled exactly
    assert final.output_text == "Let me check."
    first_request = fake_provider.requests[-1].json
    assert first_request["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather of a city",
                "parameters": WEATHER_TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    assert first_request["tool_choice"] == "auto"

    follow_up: list[Any] = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    follow_up += [item.model_dump(exclude_none=True) for item in final.output]
    follow_up += [
        {"type": "function_call_output", "call_id": "call_a", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_b", "output": "22C"},
    ]
    translated.responses.create(model="openai/gpt-4o", input=follow_up, tools=[WEATHER_TOOL])

    messages = fake_provider.requests[-1].json["messages"]
    assert messages[1]["role"] == "assistant" and messages[1]["content"] == "Let me check."
    assert [(c["id"], json.loads(c["function"]["arguments"])) for c in messages[1]["tool_calls"]] == [
        ("call_a", arguments),
        ("call_b", {"city": "Rome"}),
    ]
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "22C"},
    ]


def test_translated_reasoning_effort_image_and_schema(translated: Client, fake_provider: FakeProvider) -> None:
    schema = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
    fake_provider.behave(Behaviour(reply='{"color": "red"}'))

    response = translated.responses.create(
        model="openai/o3-mini",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Which color?"},
                    {"type": "input_image", "image_url": PNG_DATA_URL, "detail": "low"},
                ],
            }
        ],
        reasoning={"effort": "high"},
        text={"format": {"type": "json_schema", "name": "color", "schema": schema, "strict": True}},
    )

    assert json.loads(response.output_text) == {"color": "red"}
    sent = fake_provider.requests[-1].json
    assert sent["reasoning_effort"] == "high"
    assert sent["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": PNG_DATA_URL, "detail": "low"},
    }
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "color", "schema": schema, "strict": True},
    }


def test_translated_length_is_incomplete(translated: Client, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(reply="cut", finish_reason="length"))

    response = translated.responses.create(model="openai/gpt-4o", input="long story", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"

    events = list(translated.responses.create(model="openai/gpt-4o", input="long story", stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"tools": [{"type": "web_search"}]}, "built-in tool 'web_search'"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"background": True}, "background"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item of type 'item_reference'"),
    ],
)
def test_translated_rejects_what_only_responses_providers_serve(
    translated: Client, fake_provider: FakeProvider, extra: dict[str, Any], needle: str
) -> None:
    body: dict[str, Any] = {"model": "openai/gpt-4o", "input": "hi", **extra}
    with pytest.raises(openai.BadRequestError) as info:
        translated.responses.create(**body)

    assert needle in info.value.message
    assert info.value.code == "unsupported_feature"
    assert fake_provider.requests == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": "openai/gpt-4o"}, "Missing required field 'input'"),
        ({"model": "openai/gpt-4o", "input": 5}, "'input' must be a string or an array"),
        ({"model": "openai/gpt-4o", "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"model": "openai/gpt-4o", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "openai/gpt-4o", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        (
            {"model": "openai/gpt-4o", "input": [{"type": "function_call_output", "output": "x"}]},
            "input[0].call_id",
        ),
    ],
)
def test_bad_bodies_get_openai_shaped_400(
    gateway: LiveGateway, translated: Client, fake_provider: FakeProvider, body: dict[str, Any], needle: str
) -> None:
    resp = httpx.post(
        f"{gateway.base_url}/responses", json=body, headers={"Authorization": f"Bearer {translated.api_key}"}
    )

    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"
    assert fake_provider.requests == []


def test_translated_stream_failure_ends_with_response_failed(
    gateway: LiveGateway, translated: Client, fake_provider: FakeProvider
) -> None:
    fake_provider.behave(Behaviour(reply="a b c d e f", disconnect_after_chunks=2))

    with httpx.stream(
        "POST",
        f"{gateway.base_url}/responses",
        json={"model": "openai/gpt-4o", "input": "x", "stream": True},
        headers={"Authorization": f"Bearer {translated.api_key}"},
    ) as resp:
        body = resp.read()

    events = parse_sse_strictly(body)
    assert events[-1][0] == "response.failed"
    failed = events[-1][1]
    assert failed["response"]["status"] == "failed" and failed["response"]["error"]["code"] == "server_error"
    assert failed["response"]["id"] == events[0][1]["response"]["id"]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))


def test_upstream_error_is_openai_shaped(translated: Client, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(status=429, error_message="slow down", headers={"Retry-After": "3"}))

    with pytest.raises(openai.RateLimitError) as info:
        translated.responses.create(model="openai/gpt-4o", input="x")

    assert "slow down" in info.value.message
    assert info.value.response.headers["retry-after"] == "3"
