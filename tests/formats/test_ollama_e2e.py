"""The ollama SDK against the gateway (`/v1/api/chat`, `/api/tags`), served by an OpenAI Chat
Completions provider (the fake)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import ollama
import pytest

from tests.fakes.provider import Behaviour, FakeProvider
from tests.formats.test_responses_e2e import PNG_BASE64, connect, make_key, records
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
def key(gateway: LiveGateway, fake_provider: FakeProvider) -> str:
    connect("openai", fake_provider.openai_base_url)
    return make_key()


def client(gateway: LiveGateway, key: str) -> ollama.Client:
    # The SDK appends /api/chat to the host: the gateway serves Ollama chat at /v1/api/chat.
    return ollama.Client(host=gateway.url + "/v1", headers={"Authorization": f"Bearer {key}"})


def ndjson_lines(gateway: LiveGateway, key: str, body: dict[str, Any]) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """The raw stream, checked strictly: one JSON object per line, no blank lines."""
    with httpx.stream(
        "POST", f"{gateway.base_url}/api/chat", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10
    ) as resp:
        raw = resp.read()
    assert raw.endswith(b"\n")
    lines = raw[:-1].split(b"\n")
    assert all(lines), raw
    return resp, [json.loads(line) for line in lines]


def test_non_stream_chat(gateway: LiveGateway, key: str, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(reply="Hi there", prompt_tokens=9, completion_tokens=3))

    response = client(gateway, key).chat(
        model="openai/gpt-4o",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        options={"temperature": 0.1, "top_p": 0.8, "num_predict": 64, "stop": ["END"], "seed": 3, "num_ctx": 8192},
        keep_alive="5m",
    )

    assert response.message.role == "assistant" and response.message.content == "Hi there"
    assert response.done is True and response.done_reason == "stop"
    assert (response.prompt_eval_count, response.eval_count) == (9, 3)
    assert response.model == "gpt-4o" and response.created_at
    sent = fake_provider.requests[-1].json
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["stop"], sent["seed"]) == (
        0.1,
        0.8,
        64,
        ["END"],
        3,
    )
    assert "stream" not in sent or sent["stream"] is False
    [rec] = records(gateway)
    assert (rec.provider, rec.prompt_tokens, rec.completion_tokens, rec.stream) == ("openai", 9, 3, False)


def test_stream_chat(gateway: LiveGateway, key: str, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(reply="one two three", prompt_tokens=5, completion_tokens=3))

    parts = list(
        client(gateway, key).chat(model="openai/gpt-4o", messages=[{"role": "user", "content": "count"}], stream=True)
    )

    assert "".join(p.message.content or "" for p in parts) == "one two three"
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done
    assert parts[-1].done_reason == "stop"
    assert (parts[-1].prompt_eval_count, parts[-1].eval_count) == (5, 3)
    assert parts[-1].total_duration is not None and parts[-1].total_duration > 0
    [rec] = records(gateway)
    assert rec.stream and (rec.prompt_tokens, rec.completion_tokens) == (5, 3)


def test_stream_is_strict_ndjson(gateway: LiveGateway, key: str, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(reply="a b c"))

    resp, lines = ndjson_lines(gateway, key, {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}]})

    assert resp.headers["content-type"] == "application/x-ndjson"
    assert [line["done"] for line in lines] == [False, False, False, True]
    assert [line["message"]["content"] for line in lines] == ["a ", "b ", "c", ""]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_with_object_arguments(
    gateway: LiveGateway, key: str, fake_provider: FakeProvider, stream: bool
) -> None:
    arguments = {"city": "Paris", "days": 3, "extras": ["wind"]}
    fake_provider.behave(
        Behaviour(
            tool_calls=[
                {"id": "call_p", "name": "get_weather", "arguments": arguments},
                {"id": "call_o", "name": "get_weather", "arguments": {"city": "Oslo"}},
            ]
        )
    )

    ollama_client = client(gateway, key)
    messages = [{"role": "user", "content": "Weather?"}]
    if stream:
        parts = list(ollama_client.chat(model="openai/gpt-4o", messages=messages, tools=[WEATHER_TOOL], stream=True))
    else:
        parts = [ollama_client.chat(model="openai/gpt-4o", messages=messages, tools=[WEATHER_TOOL])]

    calls = [call for p in parts for call in (p.message.tool_calls or [])]
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", arguments),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done_reason == "stop"
    assert fake_provider.requests[-1].json["tools"] == [WEATHER_TOOL]


def test_tool_round_trip_matches_results_by_tool_name(
    gateway: LiveGateway, key: str, fake_provider: FakeProvider
) -> None:
    fake_provider.behave(
        Behaviour(
            tool_calls=[
                {"id": "call_w", "name": "get_weather", "arguments": {"city": "Paris"}},
                {"id": "call_t", "name": "get_time", "arguments": {"zone": "CET"}},
            ]
        ),
        times=1,
    )
    ollama_client = client(gateway, key)
    first = ollama_client.chat(model="openai/gpt-4o", messages=[{"role": "user", "content": "Weather and time?"}])
    assert first.message.tool_calls is not None

    ollama_client.chat(
        model="openai/gpt-4o",
        messages=[
            {"role": "user", "content": "Weather and time?"},
            first.message,
            {"role": "tool", "content": "12:00", "tool_name": "get_time"},
            {"role": "tool", "content": "18C", "tool_name": "get_weather"},
        ],
    )

    messages = fake_provider.requests[-1].json["messages"]
    ids = {c["function"]["name"]: c["id"] for c in messages[1]["tool_calls"]}
    assert [json.loads(c["function"]["arguments"]) for c in messages[1]["tool_calls"]] == [
        {"city": "Paris"},
        {"zone": "CET"},
    ]
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": ids["get_time"], "content": "12:00"},
        {"role": "tool", "tool_call_id": ids["get_weather"], "content": "18C"},
    ]


def test_images_become_data_urls(gateway: LiveGateway, key: str, fake_provider: FakeProvider) -> None:
    client(gateway, key).chat(
        model="openai/gpt-4o",
        messages=[{"role": "user", "content": "What is this?", "images": [base64.b64decode(PNG_BASE64)]}],
    )

    assert fake_provider.requests[-1].json["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
    ]


def test_format_json_and_schema(gateway: LiveGateway, key: str, fake_provider: FakeProvider) -> None:
    fake_provider.behave(Behaviour(reply='{"ok": true}'))
    ollama_client = client(gateway, key)

    response = ollama_client.chat(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}], format="json")
    assert json.loads(response.message.content or "") == {"ok": True}
    assert fake_provider.requests[-1].json["response_format"] == {"type": "json_object"}

    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    ollama_client.chat(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}], format=schema)
    assert fake_provider.requests[-1].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


def test_think_sets_reasoning_effort(gateway: LiveGateway, key: str, fake_provider: FakeProvider) -> None:
    ollama_client = client(gateway, key)
    ollama_client.chat(model="openai/o3-mini", messages=[{"role": "user", "content": "x"}], think=True)
    assert fake_provider.requests[-1].json["reasoning_effort"] == "medium"
    ollama_client.chat(model="openai/o3-mini", messages=[{"role": "user", "content": "x"}], think="high")
    assert fake_provider.requests[-1].json["reasoning_effort"] == "high"


def test_errors_are_ollama_shaped(gateway: LiveGateway, key: str, fake_provider: FakeProvider) -> None:
    ollama_client = client(gateway, key)
    with pytest.raises(ollama.ResponseError) as unsupported:
        ollama_client.chat(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}], options={"top_k": 40})
    assert unsupported.value.status_code == 400 and "top_k" in unsupported.value.error

    with pytest.raises(ollama.ResponseError) as unknown:
        ollama_client.chat(model="nosuch/model", messages=[{"role": "user", "content": "x"}])
    assert unknown.value.status_code == 404 and "nosuch" in unknown.value.error

    resp = httpx.post(
        f"{gateway.base_url}/api/chat", json={"model": "openai/gpt-4o"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status_code == 400 and list(resp.json()) == ["error"] and "messages" in resp.json()["error"]
    assert fake_provider.requests == []


def test_upstream_failure_mid_stream_ends_with_an_error_line(
    gateway: LiveGateway, key: str, fake_provider: FakeProvider
) -> None:
    fake_provider.behave(Behaviour(reply="a b c d e", disconnect_after_chunks=2))

    _, lines = ndjson_lines(gateway, key, {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}]})

    assert "error" in lines[-1] and not any(line.get("done") for line in lines)
    with pytest.raises(ollama.ResponseError):
        fake_provider.behave(Behaviour(reply="a b c d e", disconnect_after_chunks=2))
        list(client(gateway, key).chat(model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True))


def test_tags_list_the_real_models(gateway: LiveGateway, key: str) -> None:
    listed = ollama.Client(host=gateway.url, headers={"Authorization": f"Bearer {key}"}).list()

    names = [m.model or "" for m in listed.models]
    assert "openai/gpt-4o" in names
    assert not any(name.startswith("anthropic/") for name in names)  # no connection: not served
    assert not any("embedding" in name for name in names)  # chat models only
    model = next(m for m in listed.models if m.model == "openai/gpt-4o")
    assert model.details is not None and model.details.family == "openai"
    assert model.modified_at is not None and model.digest


def test_tags_need_a_valid_key(gateway: LiveGateway, key: str) -> None:
    resp = httpx.get(f"{gateway.url}/api/tags", headers={"Authorization": "Bearer wrong"})
    assert resp.status_code == 401 and "error" in resp.json()
