"""The fake provider speaks the OpenAI wire format well enough for the official SDK, and follows its script."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionStreamOptionsParam,
)

from tests.fakes.fixtures import fake_provider, fake_provider_server  # noqa: F401
from tests.fakes.provider import Behaviour, FakeProvider

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello to the tests, please."}]


@pytest.fixture
def client(fake_provider: FakeProvider) -> Iterator[openai.OpenAI]:  # noqa: F811
    with openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk-test", max_retries=0, timeout=5) as sdk:
        yield sdk


def stream_chunks(client: openai.OpenAI, *, include_usage: bool = False) -> list[ChatCompletionChunk]:
    options: ChatCompletionStreamOptionsParam = {"include_usage": include_usage}
    return list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True, stream_options=options))


def raw_events(fake: FakeProvider, payload: dict[str, object]) -> list[str]:
    response = httpx.post(fake.openai_base_url + "/chat/completions", json=payload)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.endswith("\n\n")
    return [event.removeprefix("data: ") for event in response.text.split("\n\n") if event]


def test_non_stream_completion(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.content == "Hello from gpt-4o-mini!"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0
    [request] = fake_provider.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.json["messages"] == MESSAGES
    assert json.loads(request.body) == request.json


def test_scripted_reply_and_usage(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    fake_provider.behave(
        Behaviour(reply="Forty-two.", prompt_tokens=100, completion_tokens=30, cached_tokens=60, reasoning_tokens=20)
    )

    completion = client.chat.completions.create(model="o3-mini", messages=MESSAGES)

    assert completion.choices[0].message.content == "Forty-two."
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 30, 130)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 60
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 20


def test_stream_with_include_usage(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    fake_provider.behave(Behaviour(reply="One two three four", cached_tokens=3))

    chunks = stream_chunks(client, include_usage=True)

    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [chunk.choices[0].delta.content for chunk in chunks[1:-2]]
    assert contents == ["One ", "two ", "three ", "four"]
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 3
    assert usage.completion_tokens > 0


def test_stream_sse_framing(fake_provider: FakeProvider) -> None:  # noqa: F811
    events = raw_events(fake_provider, {"model": "gpt-4o", "messages": MESSAGES, "stream": True})

    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all("usage" not in chunk for chunk in chunks)  # only present when include_usage is asked for
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks) == "Hello from gpt-4o!"


def test_tool_calls_stream_is_reassembled_by_the_sdk(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    calls: list[dict[str, Any]] = [
        {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}},
        {"id": "call_2", "name": "get_time", "arguments": '{"timezone": "Europe/Paris"}'},
    ]
    fake_provider.behave(Behaviour(tool_calls=calls))

    with client.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    tool_calls = choice.message.tool_calls or []
    assert [(call.id, call.function.name) for call in tool_calls] == [("call_1", "get_weather"), ("call_2", "get_time")]
    assert json.loads(tool_calls[0].function.arguments) == {"city": "Paris", "unit": "celsius"}
    assert tool_calls[1].function.arguments == '{"timezone": "Europe/Paris"}'


def test_tool_call_arguments_arrive_in_fragments(fake_provider: FakeProvider) -> None:  # noqa: F811
    fake_provider.behave(Behaviour(tool_calls=[{"id": "call_1", "name": "lookup", "arguments": {"query": "fakes"}}]))

    events = raw_events(fake_provider, {"model": "gpt-4o", "messages": MESSAGES, "stream": True})

    deltas = [json.loads(event)["choices"][0]["delta"] for event in events[:-1]]
    fragments = [delta["tool_calls"][0]["function"]["arguments"] for delta in deltas if "tool_calls" in delta]
    assert len([fragment for fragment in fragments if fragment]) > 1
    assert "".join(fragments) == '{"query":"fakes"}'
    assert all(delta["tool_calls"][0]["index"] == 0 for delta in deltas if "tool_calls" in delta)


def test_tool_calls_non_stream(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    fake_provider.behave(Behaviour(tool_calls=[{"id": "call_9", "name": "lookup", "arguments": "{}"}]))

    message = client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message

    [call] = message.tool_calls or []
    assert isinstance(call, ChatCompletionMessageFunctionToolCall)
    assert (call.id, call.function.name, call.function.arguments) == ("call_9", "lookup", "{}")


@pytest.mark.parametrize(
    ("status", "error_class", "error_type", "code"),
    [
        (400, openai.BadRequestError, "invalid_request_error", None),
        (401, openai.AuthenticationError, "invalid_request_error", "invalid_api_key"),
        (403, openai.PermissionDeniedError, "request_forbidden", None),
        (404, openai.NotFoundError, "invalid_request_error", "model_not_found"),
        (429, openai.RateLimitError, "requests", "rate_limit_exceeded"),
        (500, openai.InternalServerError, "server_error", None),
        (503, openai.InternalServerError, "server_error", None),
    ],
)
def test_error_statuses_raise_the_sdk_exception(
    client: openai.OpenAI,
    fake_provider: FakeProvider,  # noqa: F811
    status: int,
    error_class: type[openai.APIStatusError],
    error_type: str,
    code: str | None,
) -> None:
    fake_provider.behave(Behaviour(status=status, error_message="scripted failure", headers={"Retry-After": "7"}))

    with pytest.raises(error_class) as raised:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert raised.value.status_code == status
    assert raised.value.response.headers["retry-after"] == "7"
    assert raised.value.body == {"message": "scripted failure", "type": error_type, "param": None, "code": code}


def test_error_before_a_stream_starts(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    fake_provider.behave(Behaviour(status=429))

    with pytest.raises(openai.RateLimitError) as raised:
        stream_chunks(client)

    assert raised.value.code == "rate_limit_exceeded"


def test_delay(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    fake_provider.behave(Behaviour(delay=0.3))

    started = time.monotonic()
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert time.monotonic() - started >= 0.3
    assert fake_provider.cancelled == []


def test_malformed_json_body(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    fake_provider.behave(Behaviour(body=b'{"id": "chatcmpl-1", "choices": ['))

    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def test_disconnect_mid_stream(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    fake_provider.behave(Behaviour(reply="a b c d e f", disconnect_after_chunks=2))
    received: list[ChatCompletionChunk] = []

    with pytest.raises(openai.APIConnectionError):
        for chunk in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            received.append(chunk)

    assert [chunk.choices[0].delta.content for chunk in received] == ["", "a ", "b "]
    assert fake_provider.cancelled == []  # the server hung up, not the client


def test_stall_until_client_timeout_is_recorded_as_cancelled(fake_provider: FakeProvider) -> None:  # noqa: F811
    fake_provider.behave(Behaviour(stall=True))
    impatient = openai.OpenAI(base_url=fake_provider.openai_base_url, api_key="sk-test", max_retries=0, timeout=0.3)

    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    [cancelled] = fake_provider.wait_for_cancelled()
    assert cancelled.path == "/v1/chat/completions"
    assert cancelled.id == fake_provider.requests[0].id


def test_client_leaving_a_slow_stream_is_recorded_as_cancelled(
    client: openai.OpenAI,
    fake_provider: FakeProvider,  # noqa: F811
) -> None:
    fake_provider.behave(Behaviour(reply="one two three four five six", chunk_delay=0.1))

    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    next(stream)
    next(stream)
    stream.close()

    assert [request.path for request in fake_provider.wait_for_cancelled()] == ["/v1/chat/completions"]


def test_model_specific_behaviour_wins_and_times_are_consumed_in_order(
    client: openai.OpenAI,
    fake_provider: FakeProvider,  # noqa: F811
) -> None:
    fake_provider.behave(Behaviour(reply="generic"))
    fake_provider.behave(Behaviour(reply="mini once"), model="gpt-4o-mini", times=1)
    fake_provider.behave(Behaviour(reply="mini twice"), model="gpt-4o-mini", times=2)

    def reply(model: str) -> str | None:
        return client.chat.completions.create(model=model, messages=MESSAGES).choices[0].message.content

    assert [reply("gpt-4o-mini") for _ in range(4)] == ["mini once", "mini twice", "mini twice", "generic"]
    assert reply("gpt-4o") == "generic"
    fake_provider.reset()
    assert reply("gpt-4o-mini") == "Hello from gpt-4o-mini!"
    assert len(fake_provider.requests) == 1


def test_models_list(client: openai.OpenAI, fake_provider: FakeProvider) -> None:  # noqa: F811
    models = client.models.list()

    assert "gpt-4o" in [model.id for model in models]
    assert all(model.object == "model" for model in models)
    assert fake_provider.requests[0].path == "/v1/models"


def test_invalid_request_json_gets_an_openai_error(fake_provider: FakeProvider) -> None:  # noqa: F811
    response = httpx.post(fake_provider.openai_base_url + "/chat/completions?x=1", content=b"not json")

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    [request] = fake_provider.requests
    assert (request.body, request.json, request.query) == (b"not json", None, {"x": "1"})


def test_stop_does_not_hang_on_stalled_requests() -> None:
    fake = FakeProvider().start()
    fake.behave(Behaviour(stall=True))
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            httpx.post(fake.openai_base_url + "/chat/completions", json={"model": "gpt-4o"}, timeout=30)
        except httpx.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    while not fake.requests:
        time.sleep(0.01)

    started = time.monotonic()
    fake.stop()
    caller.join(timeout=5)

    assert time.monotonic() - started < 3
    assert len(outcome) == 1
    with pytest.raises(RuntimeError):
        _ = fake.url
