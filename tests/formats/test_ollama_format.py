"""The Ollama client format without a server: request translation, the response body, the NDJSON
stream encoder and the /api/tags body."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from ollama import ChatResponse, ListResponse

from gateway.errors import GatewayError
from gateway.formats.ollama import FORMAT, OllamaStreamEncoder
from gateway.snapshot import Snapshot
from providers.catalog import get_catalog
from tests.formats.test_responses_e2e import PNG_BASE64

JPEG_BASE64 = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0a"


def canonical(payload: dict[str, Any]) -> dict[str, Any]:
    return FORMAT.to_canonical({"model": "p/m", **payload})


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def lines(body: bytes) -> list[dict[str, Any]]:
    """NDJSON, strictly: every line a JSON object, no blank line, a newline at the end."""
    assert body.endswith(b"\n")
    raw = body[:-1].split(b"\n")
    assert all(raw), body
    return [json.loads(line) for line in raw]


def encode(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    encoder = FORMAT.stream_encoder(model="m", request_id="r", include_usage=True)
    return lines(b"".join(encoder.feed(c) for c in chunks) + encoder.finish())


# -- request -> canonical --------------------------------------------------------------------------


def test_messages_images_tools_and_results() -> None:
    result = canonical(
        {
            "messages": [
                {"role": "user", "content": "Look", "images": [PNG_BASE64, JPEG_BASE64]},
                {
                    "role": "assistant",
                    "content": "",
                    "thinking": "I should call tools.",
                    "tool_calls": [
                        {"function": {"name": "a", "arguments": {"x": 1}}},
                        {"id": "own-id", "function": {"name": "b", "arguments": {}}},
                    ],
                },
                {"role": "tool", "content": "B result", "tool_name": "b"},
                {"role": "tool", "content": "A result"},
            ],
            "tools": [{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}}],
            "stream": False,
        }
    )

    [user, assistant, result_b, result_a] = result["messages"]
    assert user["content"] == [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_BASE64}"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG_BASE64}"}},
    ]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "reasoning_content": "I should call tools.",
        "tool_calls": [
            {"id": "call_1_0", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
            {"id": "own-id", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        ],
    }
    assert result_b == {"role": "tool", "tool_call_id": "own-id", "content": "B result"}
    assert result_a == {"role": "tool", "tool_call_id": "call_1_0", "content": "A result"}
    assert result["tools"] == [{"type": "function", "function": {"name": "a", "parameters": {"type": "object"}}}]
    assert result["stream"] is False


def test_options_format_and_think() -> None:
    result = canonical(
        {
            "messages": [{"role": "user", "content": "x"}],
            "options": {"temperature": 0.5, "num_predict": -1, "stop": [], "num_gpu": 1, "frequency_penalty": 0.2},
            "format": "json",
            "think": "low",
            "keep_alive": 0,
        }
    )
    assert result["temperature"] == 0.5 and result["frequency_penalty"] == 0.2
    assert "max_tokens" not in result and "stop" not in result  # unbounded and empty mean "the default"
    assert result["response_format"] == {"type": "json_object"}
    assert result["reasoning_effort"] == "low"
    assert canonical({"messages": [{"role": "user", "content": "x"}], "think": False}).get("reasoning_effort") is None
    assert "stream" in result and result["stream"] is True  # Ollama streams unless told otherwise


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"messages": []}, "'messages' must be a non-empty array"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": ["x"]}]}, "messages[0].content must be a string"),
        ({"messages": [{"role": "user", "content": "x", "images": ["bm90IGFuIGltYWdl"]}]}, "not a PNG, JPEG"),
        ({"messages": [{"role": "assistant", "content": "x", "images": [PNG_BASE64]}]}, "only user messages"),
        ({"messages": [{"role": "tool", "content": "x", "tool_name": "f"}]}, "no matching tool call"),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}]},
            "function.name is required",
        ),
        ({"messages": [{"role": "user", "content": "x"}], "options": {"top_k": 20, "mirostat": 1}}, "mirostat, top_k"),
        ({"messages": [{"role": "user", "content": "x"}], "options": {"temperature": "hot"}}, "options.temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "options": {"stop": "END"}}, "options.stop"),
        ({"messages": [{"role": "user", "content": "x"}], "format": "yaml"}, "'format'"),
        ({"messages": [{"role": "user", "content": "x"}], "think": "max"}, "'think'"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, "tools[0].function.name"),
    ],
)
def test_bad_bodies(payload: dict[str, Any], needle: str) -> None:
    with pytest.raises(GatewayError) as info:
        canonical(payload)
    assert info.value.status == 400 and needle in info.value.message


def test_error_bodies_are_ollama_shaped() -> None:
    err = GatewayError(404, "Unknown model")
    assert orjson.loads(FORMAT.error_body(err)) == {"error": "Unknown model"}
    assert FORMAT.stream_error(err) == b'{"error":"Unknown model"}\n'


# -- canonical -> response -------------------------------------------------------------------------


def test_rendered_response_parses_in_the_sdk() -> None:
    body = FORMAT.render_response(
        {
            "id": "x",
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "reasoning_content": "Hmm.",
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":[1]}'}}
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        }
    )
    response = ChatResponse(**orjson.loads(body))

    assert response.done and response.done_reason == "stop" and response.message.thinking == "Hmm."
    assert response.message.content == ""
    [call] = response.message.tool_calls or []
    assert (call.function.name, call.function.arguments) == ("f", {"a": [1]})
    assert (response.prompt_eval_count, response.eval_count) == (4, 2)


def test_arguments_that_are_not_an_object_are_a_502() -> None:
    response = {
        "model": "m",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1"}}],
                },
                "finish_reason": "length",
            }
        ],
    }
    with pytest.raises(GatewayError) as info:
        FORMAT.render_response(response)
    assert info.value.status == 502 and "'f'" in info.value.message


# -- stream ----------------------------------------------------------------------------------------


def test_stream_lines_and_one_final_line() -> None:
    out = encode(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"reasoning_content": "Think"}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
        ]
    )

    assert [(line["message"]["content"], line["message"].get("thinking"), line["done"]) for line in out] == [
        ("", "Think", False),
        ("Hel", None, False),
        ("lo", None, False),
        ("", None, True),
    ]
    final = out[-1]
    assert (final["done_reason"], final["prompt_eval_count"], final["eval_count"]) == ("stop", 3, 2)
    assert final["total_duration"] >= final["eval_duration"] >= 0 and final["load_duration"] == 0
    ChatResponse(**final)


def test_tool_calls_are_sent_whole_once_complete() -> None:
    out = encode(
        [
            chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"ci'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Paris"}'}}]}),
            chunk({"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": ""}}]}),
            chunk({}, "tool_calls"),
        ]
    )

    calls = [line["message"]["tool_calls"] for line in out if "tool_calls" in line["message"]]
    assert calls == [
        [{"id": "c1", "function": {"index": 0, "name": "f", "arguments": {"city": "Paris"}}}],
        [{"id": "c2", "function": {"index": 1, "name": "g", "arguments": {}}}],
    ]
    assert [line["done"] for line in out] == [False, False, True]
    assert out[-1]["done_reason"] == "stop"


def test_length_finish_and_broken_arguments() -> None:
    out = encode([chunk({"content": "cut"}), chunk({}, "length")])
    assert out[-1]["done_reason"] == "length"

    broken = encode(
        [
            chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": '{"a'}}]}),
            chunk({}, "length"),
        ]
    )
    assert broken == [{"error": "The model called tool 'f' with arguments that are not a JSON object: {\"a"}]


def test_no_final_line_after_a_failure() -> None:
    encoder = OllamaStreamEncoder("m")
    encoder.feed(chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "nope"}}]}))
    assert b"error" in encoder.feed(chunk({}, "tool_calls"))
    assert encoder.feed(chunk({"content": "more"})) == b"" and encoder.finish() == b""


# -- /api/tags -------------------------------------------------------------------------------------


def test_tags_list_chat_models_of_the_snapshot() -> None:
    models = {
        "object": "list",
        "data": [
            {"id": "openai/gpt-4o", "object": "model", "owned_by": "openai", "type": "chat"},
            {"id": "openai/text-embedding-3-small", "object": "model", "owned_by": "openai", "type": "embedding"},
            {"id": "my-combo", "object": "model", "owned_by": "combo"},
        ],
    }
    snap = Snapshot(version=1, catalog=get_catalog(), keys_by_hash={}, credentials={}, models_body=orjson.dumps(models))

    body = FORMAT.tags_body(snap)
    listed = ListResponse(**orjson.loads(body))

    assert [m.model for m in listed.models] == ["openai/gpt-4o", "my-combo"]
    assert listed.models[0].details is not None and listed.models[0].details.family == "openai"
    assert FORMAT.tags_body(snap) is body  # built once per snapshot


def test_plain_assistant_turns_and_riff_files() -> None:
    messages = canonical({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]})
    assert messages["messages"][1] == {"role": "assistant", "content": ""}
    wav = "UklGRiQAAABXQVZFZm10IBAAAAABAAEA"  # RIFF....WAVEfmt: a RIFF file, not a WebP image
    with pytest.raises(GatewayError, match="not a PNG, JPEG, GIF or WebP"):
        canonical({"messages": [{"role": "user", "content": "x", "images": [wav]}]})
    webp = "UklGRiQAAABXRUJQVlA4IBgAAAAwAQCdASoBAAEAAwA0JaQAA3AA/vuUAAA="
    image = canonical({"messages": [{"role": "user", "content": "", "images": [webp]}]})["messages"][0]["content"]
    assert image == [{"type": "image_url", "image_url": {"url": f"data:image/webp;base64,{webp}"}}]
