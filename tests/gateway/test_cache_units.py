"""The response cache's pure parts: the key, the semantic split, the canonical round trip and
vector matching (the end-to-end behaviour is in test_response_cache.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from gateway.cache_codec import assemble, read_answer, render_stream, replay_chunks
from gateway.cache_key import describe, deterministic, split_last_user
from gateway.cache_vectors import best_match, pack, similarity
from gateway.formats import get_client_format

PLAN: Any = SimpleNamespace(requested="fast", targets=[SimpleNamespace(name="openai/gpt-4o")])
BODY = {"model": "fast", "messages": [{"role": "user", "content": "Hi"}], "temperature": 0}


def key(body: dict[str, Any], plan: Any = PLAN, client: str = "openai") -> str | None:
    lookup = describe(client, body, plan, non_deterministic=False)
    return lookup.key if lookup else None


def test_key_ignores_transport_fields_only() -> None:
    base = key(BODY)
    assert base is not None
    extras = {"stream": True, "stream_options": {"include_usage": True}, "user": "u", "metadata": {"a": 1}}
    assert key({**BODY, **extras}) == base
    assert key({**BODY, "model": "other-name"}) == base  # the requested name comes from the plan
    assert key({**BODY, "temperature": 0.0}) == base  # the same JSON number
    assert key({**BODY, "max_tokens": 5}) != base
    assert key({**BODY, "tools": [{"type": "function", "function": {"name": "f"}}]}) != base
    assert key(BODY, client="anthropic") != base
    other_targets: Any = SimpleNamespace(requested="fast", targets=[SimpleNamespace(name="groq/llama")])
    assert key(BODY, plan=other_targets) != base


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"temperature": 0}, True),
        ({"temperature": 0.0}, True),
        ({"temperature": 0.2}, False),
        ({}, False),
        ({"temperature": 1, "seed": 7}, True),
        ({"seed": True}, False),
        ({"temperature": False}, False),
        ({"generationConfig": {"temperature": 0}}, True),
        ({"options": {"seed": 3}}, True),
    ],
)
def test_deterministic(body: dict[str, Any], expected: bool) -> None:
    assert deterministic(body) is expected


def test_non_deterministic_requests_have_no_key_unless_allowed() -> None:
    body = {**BODY, "temperature": 0.7}
    assert describe("openai", body, PLAN, non_deterministic=False) is None
    assert describe("openai", body, PLAN, non_deterministic=True) is not None


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b c"}]}, "b c"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}, "x"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}, ""),
        ({"contents": [{"role": "user", "parts": [{"text": "g"}]}]}, "g"),
        ({"input": "plain"}, "plain"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": "r"}]}]}, "r"),
        ({"prompt": "none"}, ""),
    ],
)
def test_last_user_message(body: dict[str, Any], text: str) -> None:
    assert split_last_user(body)[1] == text


def test_semantic_scope_is_the_context_without_the_last_message() -> None:
    a = describe("openai", BODY, PLAN, non_deterministic=False)
    b = describe("openai", {**BODY, "messages": [{"role": "user", "content": "Hello"}]}, PLAN, non_deterministic=False)
    system = [{"role": "system", "content": "German"}, {"role": "user", "content": "Hi"}]
    c = describe("openai", {**BODY, "messages": system}, PLAN, non_deterministic=False)
    assert a and b and c
    assert a.key != b.key and a.scope == b.scope and a.scope != c.scope
    assert (a.prompt, b.prompt) == ("Hi", "Hello")


def test_thinking_budget_setting_is_part_of_the_identity() -> None:
    from gateway.options.thinking import ThinkingPolicy

    plain = describe("openai", BODY, PLAN, non_deterministic=False)
    low = describe("openai", BODY, PLAN, non_deterministic=False, thinking=ThinkingPolicy("custom", 1024, "low"))
    high = describe("openai", BODY, PLAN, non_deterministic=False, thinking=ThinkingPolicy("custom", 1024, "high"))
    assert plain and low and high
    assert len({plain.key, low.key, high.key}) == 3 and len({plain.scope, low.scope, high.scope}) == 3


RESPONSE: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Sunny.",
                "reasoning_content": "Think.",
                "thinking_blocks": [{"type": "thinking", "thinking": "Think.", "signature": "sig"}],
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
}


def test_a_response_replayed_as_chunks_assembles_to_itself() -> None:
    again = assemble(replay_chunks(RESPONSE), model="gpt-4o")
    assert again is not None
    assert again["choices"] == RESPONSE["choices"] and again["usage"] == RESPONSE["usage"]
    assert assemble(replay_chunks(RESPONSE)[:-2], model="gpt-4o") is None  # no finish reason: incomplete


def test_ollama_answers_are_read_back() -> None:
    fmt = get_client_format("ollama")
    stream = fmt.stream_encoder(model="gpt-4o", request_id="r", include_usage=True)
    sent = b"".join(stream.feed(c) for c in replay_chunks(RESPONSE)) + stream.finish()
    read = read_answer(fmt, sent, stream=True, model="gpt-4o")
    assert read is not None
    message = read["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("Sunny.", "Think.")
    assert orjson.loads(message["tool_calls"][0]["function"]["arguments"]) == {"a": 1}
    assert read["usage"]["prompt_tokens"] == 3
    assert read_answer(fmt, b"not json", stream=True, model="gpt-4o") is None


def test_vectors() -> None:
    a, b, c = pack([1.0, 1.0, 0.0]), pack([1.0, 0.9, 0.0]), pack([0.0, 0.0, 1.0])
    assert a and b and c
    assert similarity(a, a) == pytest.approx(1.0)
    assert similarity(a, c) == pytest.approx(0.0)
    assert similarity(a, pack([1.0]) or b"") == 0.0  # other dimensions
    assert pack([0.0, 0.0]) is None and pack([]) is None
    assert best_match(a, [("c", c), ("b", b)], 0.9) == "b"
    assert best_match(a, [("c", c)], 0.9) is None


@pytest.mark.parametrize("client", ["openai", "anthropic", "responses", "gemini", "gemini_array", "ollama"])
@pytest.mark.parametrize("stream", [False, True])
def test_every_client_format_round_trips(client: str, stream: bool) -> None:
    """What a client is sent (rendered from the canonical answer) reads back to that answer."""
    fmt = get_client_format(client)
    if stream:
        sent = render_stream(fmt, RESPONSE, payload={"stream_options": {"include_usage": True}}, request_id="r")
    elif client == "gemini_array":
        return  # only ever a stream
    else:
        sent = fmt.render_response(RESPONSE)
    read = read_answer(fmt, sent, stream=stream, model="gpt-4o")
    assert read is not None
    message = read["choices"][0]["message"]
    assert message["content"] == "Sunny."
    assert message["reasoning_content"] == "Think."
    [call] = message["tool_calls"]
    assert (call["function"]["name"], orjson.loads(call["function"]["arguments"])) == ("f", {"a": 1})
    assert read["choices"][0]["finish_reason"] == "tool_calls"
    assert read["usage"]["prompt_tokens"] == 3 and read["usage"]["completion_tokens"] == 4
