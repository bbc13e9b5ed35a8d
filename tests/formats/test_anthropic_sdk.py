"""The official anthropic SDK against the running gateway: an Anthropic-format provider (byte
passthrough) and an OpenAI-format provider (translation), stream and non-stream, tools,
thinking, images, errors and count_tokens."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import httpx
import pytest

from gateway.formats.anthropic import estimate_input_tokens
from providers.models import ProviderConnection
from tests.e2e.test_openai_chat import make_key, records
from tests.fakes.anthropic_format import signature_of
from tests.fakes.provider import Behaviour, FakeProvider
from tests.formats.test_anthropic_format import assemble, strict_events
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e

MODELS = {"anthropic": "anthropic/claude-sonnet-4-5", "openai": "openai/gpt-4o"}
UPSTREAM_MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4o"}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "array", "items": {"type": "integer"}}},
        "required": ["city"],
    },
}
ARGUMENTS = {"city": "Paris, Île-de-France", "units": "metric", "days": [1, 2, 3], "note": 'quote " and \\ slash'}


def connect(fake: FakeProvider, provider: str, *, api_key: str = "sk-upstream-1", priority: int = 1) -> int:
    conn = ProviderConnection(
        provider=provider, name=f"{provider} {priority}", priority=priority, base_url=fake.url + "/v1"
    )
    conn.set_api_key(api_key)
    conn.save()
    return conn.pk


def client(gateway: LiveGateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0)


@pytest.fixture(params=["anthropic", "openai"])
def upstream(request: pytest.FixtureRequest, fake_provider: FakeProvider) -> str:
    """The provider format behind the gateway, with one connection to the fake provider."""
    connect(fake_provider, request.param)
    return str(request.param)


def sent(fake: FakeProvider, index: int = -1) -> dict[str, Any]:
    body = fake.requests[index].json
    assert isinstance(body, dict)
    return body


def post(gateway: LiveGateway, path: str, payload: Any, key: str | None, **headers: str) -> httpx.Response:
    if key:
        headers["x-api-key"] = key
    content = payload if isinstance(payload, str) else json.dumps(payload)
    return httpx.post(f"{gateway.url}{path}", content=content, headers={"content-type": "application/json", **headers})


# -- text, stream and non-stream ----------------------------------------------------------------------


def test_create(gateway: LiveGateway, fake_provider: FakeProvider, upstream: str) -> None:
    key = make_key()
    fake_provider.behave(Behaviour(reply="Bonjour !", prompt_tokens=11, completion_tokens=3, cached_tokens=4))

    raw = client(gateway, key).messages.with_raw_response.create(
        model=MODELS[upstream],
        max_tokens=300,
        system="Answer in French.",
        messages=[{"role": "user", "content": "Hello"}],
        stop_sequences=["###"],
    )
    message = raw.parse()

    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "Bonjour !")]
    assert message.stop_reason == "end_turn" and message.role == "assistant" and message.id.startswith("msg_")
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (7, 4, 3)
    assert raw.headers["x-omniroute-provider"] == upstream
    request = fake_provider.requests[-1]
    body = sent(fake_provider)
    if upstream == "anthropic":
        # Passthrough: the client's own body, only the model id changes.
        assert request.path == "/v1/messages" and request.headers["x-api-key"] == "sk-upstream-1"
        assert request.headers["anthropic-version"] == "2023-06-01"
        assert body == {
            "model": "claude-sonnet-4-5",
            "max_tokens": 300,
            "system": "Answer in French.",
            "messages": [{"role": "user", "content": "Hello"}],
            "stop_sequences": ["###"],
        }
    else:
        assert request.path == "/v1/chat/completions" and request.headers["authorization"] == "Bearer sk-upstream-1"
        assert body["messages"] == [
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Hello"},
        ]
        assert (body["max_tokens"], body["stop"]) == (300, ["###"])
    [rec] = records(gateway)
    assert (rec.provider, rec.status_code, rec.stream) == (upstream, 200, False)
    assert (rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens) == (11, 3, 4)


def test_stream_helper_and_final_message(gateway: LiveGateway, fake_provider: FakeProvider, upstream: str) -> None:
    key = make_key()
    fake_provider.behave(Behaviour(reply="one two three four five", prompt_tokens=9, completion_tokens=5))

    with client(gateway, key).messages.stream(
        model=MODELS[upstream], max_tokens=100, messages=[{"role": "user", "content": "Count"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert "".join(pieces) == "one two three four five" and len(pieces) == 5
    assert final.content[0].type == "text" and final.content[0].text == "one two three four five"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 5)
    assert sent(fake_provider)["stream"] is True
    [rec] = records(gateway)
    assert rec.stream and (rec.prompt_tokens, rec.completion_tokens) == (9, 5)
    assert rec.ttfb_ms is not None and rec.ttfb_ms <= rec.latency_ms


def test_raw_stream_passes_a_strict_parser(gateway: LiveGateway, fake_provider: FakeProvider, upstream: str) -> None:
    key = make_key()
    fake_provider.behave(
        Behaviour(reply="Hi there", tool_calls=[{"id": "call_w", "name": "get_weather", "arguments": ARGUMENTS}])
    )
    payload = {
        "model": MODELS[upstream],
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }

    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=payload, headers={"x-api-key": key}) as resp:
        raw = resp.read()

    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
    message = assemble(strict_events(raw))
    assert message["content"][0] == {"type": "text", "text": "Hi there"}
    assert message["content"][1]["input"] == ARGUMENTS and message["content"][1]["id"] == "call_w"
    assert message["stop_reason"] == "tool_use"


def test_passthrough_stream_is_byte_identical(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "anthropic")
    key = make_key()
    upstream_bytes = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_x","type":"message",'
        b'"role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,'
        b'"usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
        b'event: ping\ndata: {"type": "ping"}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Hey"}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
        b'"usage":{"output_tokens":2}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    fake_provider.behave(Behaviour(body=upstream_bytes))
    payload = {
        "model": MODELS["anthropic"],
        "max_tokens": 9,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }

    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=payload, headers={"x-api-key": key}) as resp:
        assert resp.read() == upstream_bytes
    [rec] = records(gateway)
    assert (rec.prompt_tokens, rec.completion_tokens) == (12, 2)


def test_async_client(gateway: LiveGateway, fake_provider: FakeProvider, upstream: str) -> None:
    key = make_key()
    fake_provider.behave(Behaviour(reply="async hello"))

    async def run() -> list[str]:
        async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key=key, max_retries=0) as aclient:
            messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
            created = [
                aclient.messages.create(model=MODELS[upstream], max_tokens=20, messages=messages) for _ in range(5)
            ]

            async def streamed() -> str:
                async with aclient.messages.stream(model=MODELS[upstream], max_tokens=20, messages=messages) as stream:
                    texts = [text async for text in stream.text_stream]
                    final = await stream.get_final_message()
                assert final.content[0].type == "text" and final.content[0].text == "".join(texts)
                return "".join(texts)

            results = await asyncio.gather(*created, *(streamed() for _ in range(5)))
        return [r if isinstance(r, str) else r.content[0].text for r in results]  # type: ignore[attr-defined]

    assert asyncio.run(run()) == ["async hello"] * 10
    assert len(records(gateway)) == 10


# -- tools -----------------------------------------------------------------------------------------------


def test_tool_use_round_trip(gateway: LiveGateway, fake_provider: FakeProvider, upstream: str) -> None:
    key = make_key()
    sdk = client(gateway, key)
    fake_provider.behave(
        Behaviour(tool_calls=[{"id": "toolu_01A", "name": "get_weather", "arguments": ARGUMENTS}]), times=1
    )
    question: Any = {"role": "user", "content": "Weather in Paris?"}

    with sdk.messages.stream(
        model=MODELS[upstream],
        max_tokens=200,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto"},
        messages=[question],
    ) as stream:
        first = stream.get_final_message()

    [call] = first.content
    assert call.type == "tool_use" and call.id == "toolu_01A" and call.name == "get_weather"
    assert call.input == ARGUMENTS and first.stop_reason == "tool_use"
    if upstream == "openai":
        assert sent(fake_provider)["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER_TOOL["input_schema"],
                    "description": "Current weather for a city",
                },
            }
        ]
        assert sent(fake_provider)["tool_choice"] == "auto"

    fake_provider.behave(Behaviour(reply="It is 18C in Paris."))
    result: Any = {"type": "tool_result", "tool_use_id": call.id, "content": "18C, sunny"}
    second = sdk.messages.create(
        model=MODELS[upstream],
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}],
    )

    assert second.content[0].type == "text" and second.content[0].text == "It is 18C in Paris."
    messages = sent(fake_provider)["messages"]
    if upstream == "anthropic":
        assert messages[1]["content"] == [
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": ARGUMENTS}
        ]
        assert messages[2]["content"] == [result]
    else:
        assert messages[1]["tool_calls"] == [
            {
                "id": "toolu_01A",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": json.dumps(ARGUMENTS, separators=(",", ":"), ensure_ascii=False),
                },
            }
        ]
        assert messages[2] == {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C, sunny"}


def test_parallel_tool_calls_non_stream(gateway: LiveGateway, fake_provider: FakeProvider, upstream: str) -> None:
    key = make_key()
    calls = [
        {"id": "toolu_1", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"id": "toolu_2", "name": "get_weather", "arguments": {"city": "Lyon"}},
    ]
    fake_provider.behave(Behaviour(reply="Checking both.", tool_calls=calls))

    message = client(gateway, key).messages.create(
        model=MODELS[upstream],
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Paris and Lyon?"}],
    )

    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert [(b.id, b.input) for b in message.content if b.type == "tool_use"] == [
        ("toolu_1", {"city": "Paris"}),
        ("toolu_2", {"city": "Lyon"}),
    ]


# -- thinking --------------------------------------------------------------------------------------------


def test_thinking_signature_survives_a_second_turn_passthrough(
    gateway: LiveGateway, fake_provider: FakeProvider
) -> None:
    connect(fake_provider, "anthropic")
    key = make_key()
    sdk = client(gateway, key)
    thought = "The user greets me; I should greet back."
    fake_provider.behave(
        Behaviour(
            thinking=thought, tool_calls=[{"id": "toolu_t", "name": "get_weather", "arguments": {"city": "Oslo"}}]
        ),
        times=1,
    )
    question: Any = {"role": "user", "content": "Hi, weather in Oslo?"}
    thinking: anthropic.types.ThinkingConfigParam = {"type": "enabled", "budget_tokens": 2048}

    with sdk.messages.stream(
        model=MODELS["anthropic"],
        max_tokens=4096,
        thinking=thinking,
        tools=[WEATHER_TOOL],
        messages=[question],
    ) as stream:
        first = stream.get_final_message()

    assert first.content[0].type == "thinking"
    assert first.content[0].thinking == thought and first.content[0].signature == signature_of(thought)
    assert sent(fake_provider)["thinking"] == {"type": "enabled", "budget_tokens": 2048}

    fake_provider.behave(Behaviour(reply="Cold."))
    result: Any = {"type": "tool_result", "tool_use_id": "toolu_t", "content": "-3C"}
    sdk.messages.create(
        model=MODELS["anthropic"],
        max_tokens=4096,
        thinking=thinking,
        tools=[WEATHER_TOOL],
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}],
    )

    assert sent(fake_provider)["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": thought,
        "signature": signature_of(thought),
    }


def openai_stream_with_reasoning() -> bytes:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        body = {
            "id": "chatcmpl-r1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body)}\n\n"

    usage = {"prompt_tokens": 5, "completion_tokens": 7, "completion_tokens_details": {"reasoning_tokens": 4}}
    final = {
        "id": "chatcmpl-r1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [],
        "usage": usage,
    }
    return (
        chunk({"role": "assistant", "content": ""})
        + chunk({"reasoning_content": "Think "})
        + chunk({"reasoning_content": "hard."})
        + chunk({"content": "Answer."})
        + chunk({}, "stop")
        + f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n"
    ).encode()


def test_reasoning_from_openai_provider_and_back(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    key = make_key()
    sdk = client(gateway, key)
    fake_provider.behave(Behaviour(body=openai_stream_with_reasoning()), times=1)
    question: Any = {"role": "user", "content": "Why?"}

    with sdk.messages.stream(
        model=MODELS["openai"],
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        output_config={"effort": "high"},
        messages=[question],
    ) as stream:
        first = stream.get_final_message()

    assert [b.type for b in first.content] == ["thinking", "text"]
    thinking, text = first.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock) and isinstance(text, anthropic.types.TextBlock)
    assert (thinking.thinking, thinking.signature, text.text) == ("Think hard.", "", "Answer.")
    assert sent(fake_provider)["reasoning_effort"] == "high"
    [rec] = records(gateway)
    assert (rec.prompt_tokens, rec.completion_tokens, rec.reasoning_tokens) == (5, 7, 4)

    fake_provider.behave(Behaviour(reply="Because."))
    sdk.messages.create(
        model=MODELS["openai"],
        max_tokens=4096,
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": "Sure?"}],
    )
    assert sent(fake_provider)["messages"][1] == {
        "role": "assistant",
        "content": "Answer.",
        "reasoning_content": "Think hard.",
    }


# -- images ----------------------------------------------------------------------------------------------


def test_image_input(gateway: LiveGateway, fake_provider: FakeProvider, upstream: str) -> None:
    key = make_key()
    blocks: list[Any] = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is in these?"},
    ]

    message = client(gateway, key).messages.create(
        model=MODELS[upstream], max_tokens=50, messages=[{"role": "user", "content": blocks}]
    )

    assert message.content[0].type == "text"
    content = sent(fake_provider)["messages"][0]["content"]
    if upstream == "anthropic":
        assert content == blocks
    else:
        assert content == [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "text", "text": "What is in these?"},
        ]


# -- errors and fallback ---------------------------------------------------------------------------------


def test_rate_limit_falls_back_to_the_next_connection(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "anthropic", api_key="sk-first", priority=1)
    connect(fake_provider, "anthropic", api_key="sk-second", priority=2)
    key = make_key()
    fake_provider.behave(Behaviour(status=429, headers={"retry-after": "9"}), times=1)

    message = client(gateway, key).messages.create(
        model=MODELS["anthropic"], max_tokens=5, messages=[{"role": "user", "content": "x"}]
    )

    assert message.content[0].type == "text"
    assert [r.headers["x-api-key"] for r in fake_provider.requests] == ["sk-first", "sk-second"]


@pytest.mark.parametrize(
    ("status", "kind", "error_class"),
    [
        (429, "rate_limit_error", anthropic.RateLimitError),
        (529, "overloaded_error", anthropic.InternalServerError),
        (400, "invalid_request_error", anthropic.BadRequestError),
    ],
)
def test_upstream_errors_in_anthropic_shape(
    gateway: LiveGateway, fake_provider: FakeProvider, status: int, kind: str, error_class: type[Exception]
) -> None:
    connect(fake_provider, "anthropic")
    key = make_key()
    fake_provider.behave(Behaviour(status=status, error_message="upstream says no", headers={"retry-after": "7"}))

    with pytest.raises(error_class) as info:
        client(gateway, key).messages.create(
            model=MODELS["anthropic"], max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )

    err = info.value
    assert isinstance(err, anthropic.APIStatusError) and err.status_code == status
    assert isinstance(err.body, dict) and err.body["type"] == "error" and err.body["error"]["type"] == kind
    assert "upstream says no" in err.body["error"]["message"]
    if status == 429:
        assert err.response.headers["retry-after"] == "7"


def test_error_event_before_content_falls_back(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "anthropic", api_key="sk-first", priority=1)
    connect(fake_provider, "anthropic", api_key="sk-second", priority=2)
    key = make_key()
    overloaded = (
        b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    fake_provider.behave(Behaviour(body=overloaded), times=1)

    with client(gateway, key).messages.stream(
        model=MODELS["anthropic"], max_tokens=5, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        final = stream.get_final_message()

    assert final.content[0].type == "text"
    assert [r.headers["x-api-key"] for r in fake_provider.requests] == ["sk-first", "sk-second"]


def test_mid_stream_failure_is_an_error_event(gateway: LiveGateway, fake_provider: FakeProvider, upstream: str) -> None:
    key = make_key()
    fake_provider.behave(Behaviour(reply="one two three four five six", disconnect_after_chunks=2))
    received: list[str] = []

    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client(gateway, key).messages.stream(
            model=MODELS[upstream], max_tokens=5, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        received.extend(stream.text_stream)

    assert received == ["one ", "two "]
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == "api_error"
    [rec] = records(gateway)
    assert rec.status_code == 502


# -- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "status", "kind", "needle"),
    [
        ("{not json", 400, "invalid_request_error", "Invalid JSON"),
        (
            {"model": MODELS["anthropic"], "messages": [{"role": "user", "content": "x"}]},
            400,
            "invalid_request_error",
            "max_tokens",
        ),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, 400, "invalid_request_error", "'model'"),
        ({"model": MODELS["anthropic"], "max_tokens": 5, "messages": "hi"}, 400, "invalid_request_error", "messages"),
        (
            {"model": MODELS["anthropic"], "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]},
            400,
            "invalid_request_error",
            "messages.0.role",
        ),
        (
            {
                "model": MODELS["anthropic"],
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"name": "t"}],
            },
            400,
            "invalid_request_error",
            "input_schema",
        ),
        (
            {
                "model": MODELS["anthropic"],
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "stream": "yes",
            },
            400,
            "invalid_request_error",
            "'stream'",
        ),
        (
            {"model": "nosuch/x", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            404,
            "not_found_error",
            "nosuch",
        ),
        (
            {"model": "openai/gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], "top_k": 5},
            400,
            "invalid_request_error",
            "'top_k'",
        ),
    ],
)
def test_bad_input_in_anthropic_shape(
    gateway: LiveGateway, fake_provider: FakeProvider, payload: Any, status: int, kind: str, needle: str
) -> None:
    connect(fake_provider, "anthropic")
    connect(fake_provider, "openai")
    resp = post(gateway, "/v1/messages", payload, make_key())
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert needle in body["error"]["message"]
    assert fake_provider.requests == []


def test_native_only_fields_pass_through_to_anthropic(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "anthropic")
    payload = {
        "model": MODELS["anthropic"],
        "max_tokens": 5,
        "top_k": 5,
        "messages": [{"role": "user", "content": "x"}],
    }
    assert post(gateway, "/v1/messages", payload, make_key()).status_code == 200
    assert sent(fake_provider)["top_k"] == 5


def test_authentication(gateway: LiveGateway, fake_provider: FakeProvider, settings: Any) -> None:
    settings.REQUIRE_API_KEY = True
    connect(fake_provider, "anthropic")
    key = make_key()
    payload = {"model": MODELS["anthropic"], "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}

    missing = post(gateway, "/v1/messages", payload, None)
    wrong = post(gateway, "/v1/messages", payload, "sk-wrong")
    x_api_key = post(gateway, "/v1/messages", payload, None, **{"x-api-key": key})
    bearer = post(gateway, "/v1/messages", payload, None, authorization=f"Bearer {key}")

    assert missing.status_code == 401 and missing.json()["error"]["type"] == "authentication_error"
    assert "Missing API key" in missing.json()["error"]["message"]
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    assert x_api_key.status_code == 200 and bearer.status_code == 200
    with pytest.raises(anthropic.AuthenticationError):
        client(gateway, "sk-wrong").messages.create(
            model=MODELS["anthropic"], max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )


# -- count_tokens ------------------------------------------------------------------------------------------


def test_count_tokens_forwarded_to_anthropic(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "anthropic")
    fake_provider.behave(Behaviour(prompt_tokens=1234))

    count = client(gateway, make_key()).messages.count_tokens(
        model=MODELS["anthropic"],
        system="Be brief",
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Hi"}],
    )

    assert count.input_tokens == 1234
    request = fake_provider.requests[-1]
    assert request.path == "/v1/messages/count_tokens" and request.headers["x-api-key"] == "sk-upstream-1"
    assert sent(fake_provider) == {
        "model": "claude-sonnet-4-5",
        "system": "Be brief",
        "tools": [WEATHER_TOOL],
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_count_tokens_estimated_for_other_providers(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    messages: list[Any] = [{"role": "user", "content": "How many tokens is this sentence, roughly speaking?"}]

    count = client(gateway, make_key()).messages.count_tokens(
        model=MODELS["openai"], system="Be brief", messages=messages
    )

    assert count.input_tokens == estimate_input_tokens({"system": "Be brief", "messages": messages}) == 15
    assert fake_provider.requests == []


def test_count_tokens_estimated_when_upstream_has_no_endpoint(
    gateway: LiveGateway, fake_provider: FakeProvider
) -> None:
    connect(fake_provider, "anthropic")
    fake_provider.behave(Behaviour(status=404))
    payload = {"model": MODELS["anthropic"], "messages": [{"role": "user", "content": "x" * 40}]}

    resp = post(gateway, "/v1/messages/count_tokens", payload, make_key())

    assert resp.status_code == 200 and resp.json() == {"input_tokens": 10}


def test_count_tokens_errors(gateway: LiveGateway, fake_provider: FakeProvider, settings: Any) -> None:
    settings.REQUIRE_API_KEY = True
    connect(fake_provider, "anthropic")
    payload = {"model": MODELS["anthropic"], "messages": [{"role": "user", "content": "x"}]}

    unauthenticated = post(gateway, "/v1/messages/count_tokens", payload, None)
    no_messages = post(gateway, "/v1/messages/count_tokens", {"model": MODELS["anthropic"]}, make_key())
    fake_provider.behave(Behaviour(status=400, error_message="messages: bad"))
    upstream_rejects = post(gateway, "/v1/messages/count_tokens", payload, make_key())

    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"]["type"] == "authentication_error"
    assert no_messages.status_code == 400 and no_messages.json()["error"]["type"] == "invalid_request_error"
    assert upstream_rejects.status_code == 400 and "messages: bad" in upstream_rejects.json()["error"]["message"]
