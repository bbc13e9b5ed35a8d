"""Anthropic Messages as a client format, without a server: request -> canonical, canonical ->
message, the stream encoder's exact event sequence (checked by a strict parser), errors and the
count_tokens estimate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.formats.anthropic import FORMAT, AnthropicStreamEncoder, estimate_input_tokens

SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pk"

# -- a strict parser: what an SDK that trusts the wire format would accept ----------------------

_DELTA_FOR_BLOCK = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
    "redacted_thinking": set(),
}


def strict_events(raw: bytes) -> list[dict[str, Any]]:
    """Parse a Messages stream, failing on any stray line, wrong event name or out-of-order event."""
    assert raw.endswith(b"\n\n"), raw[-50:]
    events = []
    for frame in raw[:-2].split(b"\n\n"):
        lines = frame.split(b"\n")
        assert len(lines) == 2, f"an event is exactly one event line and one data line: {frame!r}"
        assert lines[0].startswith(b"event: ") and lines[1].startswith(b"data: "), frame
        data = json.loads(lines[1][6:])
        assert data["type"] == lines[0][7:].decode(), frame
        events.append(data)
    check_sequence(events)
    return events


def check_sequence(events: list[dict[str, Any]]) -> None:
    names = [e["type"] for e in events if e["type"] != "ping"]
    if "error" in names:
        assert names[-1] == "error" and names.count("error") == 1, names
        return
    assert names[0] == "message_start" and names.count("message_start") == 1, names
    assert names[-2:] == ["message_delta", "message_stop"] and names.count("message_stop") == 1, names
    assert names.count("message_delta") == 1, names
    open_block: dict[str, Any] | None = None
    opened = 0
    for event in events[1:-2]:
        if event["type"] == "content_block_start":
            assert open_block is None and event["index"] == opened, event
            open_block, opened = event["content_block"], opened + 1
        elif event["type"] == "content_block_delta":
            assert open_block is not None and event["index"] == opened - 1, event
            assert event["delta"]["type"] in _DELTA_FOR_BLOCK[open_block["type"]], event
        elif event["type"] == "content_block_stop":
            assert open_block is not None and event["index"] == opened - 1, event
            open_block = None
        else:
            assert event["type"] == "ping", event
    assert open_block is None


def assemble(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The final message a client builds from the events (as the SDKs accumulate them)."""
    message = dict(events[0]["message"])
    message["content"] = []
    buffers: dict[int, str] = {}
    for event in events:
        if event["type"] == "content_block_start":
            message["content"].append(dict(event["content_block"]))
        elif event["type"] == "content_block_delta":
            block, delta = message["content"][event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                buffers[event["index"]] = buffers.get(event["index"], "") + delta["partial_json"]
        elif event["type"] == "message_delta":
            message.update(event["delta"])
            message["usage"] = {**message["usage"], **event["usage"]}
    for index, text in buffers.items():
        message["content"][index]["input"] = json.loads(text)
    return message


# -- request -> canonical -------------------------------------------------------------------------


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "openai/gpt-4o", "max_tokens": 256, "messages": [{"role": "user", "content": "Hi"}], **fields}


def test_full_conversation_to_canonical() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    payload = request(
        system=[{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in French."}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}, image]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Need the tool.", "signature": SIGNATURE},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Lyon"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": "down"}]},
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ],
        stop_sequences=["END"],
        temperature=0.2,
        top_p=0.9,
        stream=True,
        metadata={"user_id": "u-42"},
    )
    canonical = FORMAT.to_canonical(payload)
    assert canonical["messages"] == [
        {"role": "system", "content": "You are terse.\n\nAnswer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
                {"id": "toolu_2", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Lyon"}'}},
            ],
            "reasoning_content": "Need the tool.",
            "thinking_blocks": [{"type": "thinking", "thinking": "Need the tool.", "signature": SIGNATURE}],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "down"},
        {"role": "user", "content": "And tomorrow?"},
    ]
    assert (canonical["stop"], canonical["temperature"], canonical["top_p"]) == (["END"], 0.2, 0.9)
    assert canonical["stream"] is True and canonical["user"] == "u-42" and canonical["max_tokens"] == 256


def test_tools_choice_and_reasoning_to_canonical() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    payload = request(
        tools=[{"name": "weather", "description": "Weather now", "input_schema": schema, "cache_control": {}}],
        tool_choice={"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 4000},
        output_config={"effort": "max", "format": {"type": "json_schema", "schema": schema}},
    )
    canonical = FORMAT.to_canonical(payload)
    assert canonical["tools"] == [
        {"type": "function", "function": {"name": "weather", "parameters": schema, "description": "Weather now"}}
    ]
    assert canonical["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    assert canonical["parallel_tool_calls"] is False
    assert canonical["thinking_budget"] == 4000
    assert canonical["reasoning_effort"] == "xhigh"
    assert canonical["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }


@pytest.mark.parametrize(("choice", "expected"), [("auto", "auto"), ("any", "required"), ("none", "none")])
def test_tool_choice_types(choice: str, expected: str) -> None:
    tools = [{"name": "t", "input_schema": {"type": "object"}}]
    assert FORMAT.to_canonical(request(tools=tools, tool_choice={"type": choice}))["tool_choice"] == expected


def test_tool_result_error_flag_and_url_image() -> None:
    payload = request(
        messages=[
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                ],
            },
        ]
    )
    messages = FORMAT.to_canonical(payload)["messages"]
    assert messages[1] == {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"}
    assert messages[2]["content"] == [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"max_tokens": None}, "max_tokens: Field required"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": [{"text": "no type"}]}]}, "messages.0.content.0"),
        ({"system": [{"type": "image"}]}, "system"),
        ({"temperature": "warm"}, "temperature"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"tools": [{"name": "t"}]}, "tools.0.input_schema"),
        ({"tools": [{"input_schema": {"type": "object"}}]}, "tools.0.name"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
        ({"thinking": {"type": "enabled"}}, "budget_tokens"),
        ({"output_config": {"format": {"type": "regex"}}}, "output_config.format"),
    ],
)
def test_invalid_requests_name_the_field(fields: dict[str, Any], needle: str) -> None:
    payload = {k: v for k, v in request(**fields).items() if v is not None}
    with pytest.raises(GatewayError) as info:
        FORMAT.validate(payload)  # what a passthrough checks
    assert info.value.status == 400 and needle in info.value.message
    with pytest.raises(GatewayError):
        FORMAT.to_canonical(payload)
    assert json.loads(FORMAT.error_body(info.value)) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": info.value.message},
    }


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"top_k": 5}, "'top_k'"),
        ({"mcp_servers": [{"type": "url", "url": "https://mcp", "name": "m"}]}, "'mcp_servers'"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "server tool 'web_search_20250305'"),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}
                ]
            },
            "image source type 'file'",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "search_result", "source": "s", "title": "t"}]}]},
            "'search_result' content blocks",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}],
                            }
                        ],
                    },
                ]
            },
            "'image' content inside tool_result",
        ),
    ],
)
def test_native_only_features_are_rejected_when_translating(fields: dict[str, Any], needle: str) -> None:
    payload = request(**fields)
    FORMAT.to_canonical(payload)  # accepted: an Anthropic-format provider would get them untouched
    with pytest.raises(GatewayError) as info:
        FORMAT.check_translatable(payload)
    assert info.value.status == 400 and needle in info.value.message


def test_plain_request_is_translatable() -> None:
    payload = request(
        system="Be brief", thinking={"type": "adaptive"}, tools=[{"name": "t", "input_schema": {"type": "object"}}]
    )
    FORMAT.check_translatable(payload)
    canonical = FORMAT.to_canonical(payload)
    assert "thinking_budget" not in canonical and "reasoning_effort" not in canonical


def test_pdf_and_text_documents_become_file_and_text_parts() -> None:
    pdf = {
        "type": "document",
        "title": "a.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBER"},
    }
    text = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}}
    canonical = FORMAT.to_canonical(request(messages=[{"role": "user", "content": [pdf, text]}]))
    assert canonical["messages"][0]["content"] == [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBER", "filename": "a.pdf"}},
        {"type": "text", "text": "plain words"},
    ]


# -- canonical -> message ---------------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5},
    }


def test_render_message_with_thinking_text_and_tools() -> None:
    message = {
        "role": "assistant",
        "content": "Let me look.",
        "reasoning_content": "Think",
        "thinking_blocks": [{"type": "thinking", "thinking": "Think", "signature": SIGNATURE}],
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":[1,2]}'}}],
    }
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 60},
        "cache_creation_input_tokens": 30,
    }
    rendered = json.loads(FORMAT.render_response(completion(message, "tool_calls", usage)))
    assert rendered == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o",
        "content": [
            {"type": "thinking", "thinking": "Think", "signature": SIGNATURE},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": [1, 2]}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 30,
            "cache_read_input_tokens": 60,
            "output_tokens": 7,
        },
    }


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal"), ("tool_calls", "tool_use")],
)
def test_render_stop_reasons(finish: str, stop_reason: str) -> None:
    rendered = json.loads(FORMAT.render_response(completion({"role": "assistant", "content": "x"}, finish)))
    assert rendered["stop_reason"] == stop_reason


def test_unsigned_reasoning_renders_as_thinking_with_empty_signature() -> None:
    rendered = json.loads(
        FORMAT.render_response(completion({"role": "assistant", "content": "4", "reasoning_content": "2+2"}))
    )
    assert rendered["content"][0] == {"type": "thinking", "thinking": "2+2", "signature": ""}


def test_invalid_tool_arguments_from_upstream_are_a_502() -> None:
    message = {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}]}
    with pytest.raises(GatewayError) as info:
        FORMAT.render_response(completion(message, "tool_calls"))
    assert info.value.status == 502


# -- the stream encoder -----------------------------------------------------------------------------


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": choices, **extra}


def encode(chunks: list[dict[str, Any]]) -> bytes:
    encoder = FORMAT.stream_encoder(model="gpt-4o", request_id="r", include_usage=False)
    return b"".join(encoder.feed(c) for c in chunks) + encoder.finish()


def test_text_stream_is_exactly_the_messages_sequence() -> None:
    raw = encode(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            chunk(None, usage={"prompt_tokens": 9, "completion_tokens": 2}),
        ]
    )
    start: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    usage = {"input_tokens": 9, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 2}

    def frame(data: dict[str, Any]) -> bytes:
        return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()

    assert raw == b"".join(
        [
            frame({"type": "message_start", "message": start}),
            frame({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            frame({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
            frame({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
            frame({"type": "content_block_stop", "index": 0}),
            frame(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": usage,
                }
            ),
            frame({"type": "message_stop"}),
        ]
    )


def test_thinking_text_and_parallel_tool_calls_stream() -> None:
    raw = encode(
        [
            chunk({"role": "assistant"}),
            chunk({"reasoning_content": "Two "}),
            chunk({"reasoning_content": "cities."}),
            chunk({"thinking_signature": SIGNATURE}),
            chunk({"content": "Checking both."}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "c0", "type": "function", "function": {"name": "w", "arguments": ""}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 1, "id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"ci'}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 1, "function": {"arguments": 'ty":"Lyon"}'}}]}),
            chunk({}, "tool_calls"),
            chunk(None, usage={"prompt_tokens": 20, "completion_tokens": 9}),
        ]
    )
    message = assemble(strict_events(raw))
    assert message["content"] == [
        {"type": "thinking", "thinking": "Two cities.", "signature": SIGNATURE},
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "c0", "name": "w", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "c1", "name": "w", "input": {"city": "Lyon"}},
    ]
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 20 and message["usage"]["output_tokens"] == 9


def test_usage_in_the_finish_chunk_and_stop_on_tool_calls() -> None:
    # Providers like Gemini finish with STOP even after a function call, usage in the same chunk.
    raw = encode(
        [
            chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}),
            chunk({}, "stop", usage={"prompt_tokens": 3, "completion_tokens": 1}),
        ]
    )
    events = strict_events(raw)
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["input_tokens"] == 3


def test_stream_without_usage_or_finish_still_closes_properly() -> None:
    events = strict_events(encode([chunk({"role": "assistant", "content": ""}), chunk({"content": "partial"})]))
    assert events[-2]["delta"]["stop_reason"] == "end_turn"
    assert events[-2]["usage"]["output_tokens"] == 0
    assert assemble(strict_events(encode([])))["content"] == []


def test_redacted_thinking_and_unsigned_reasoning() -> None:
    raw = encode(
        [
            chunk({"thinking_blocks": [{"type": "redacted_thinking", "data": "opaque"}]}),
            chunk({"reasoning_content": "plain reasoning"}),
            chunk({"content": "done"}),
            chunk({}, "stop"),
        ]
    )
    assert assemble(strict_events(raw))["content"] == [
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "thinking", "thinking": "plain reasoning", "signature": ""},
        {"type": "text", "text": "done"},
    ]


def test_each_chunk_is_written_as_soon_as_it_arrives() -> None:
    encoder = AnthropicStreamEncoder("m")
    assert b"message_start" in encoder.feed(chunk({"role": "assistant"}))
    assert b"text_delta" in encoder.feed(chunk({"content": "a"}))
    # message_delta waits for the usage that canonical streams send after the finish chunk.
    assert b"message_delta" not in encoder.feed(chunk({}, "stop"))
    assert b"message_delta" in encoder.feed(chunk(None, usage={"prompt_tokens": 1, "completion_tokens": 1}))
    assert encoder.finish() == b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "api_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_types_by_status(status: int, kind: str) -> None:
    err = GatewayError(status, "nope")
    assert json.loads(FORMAT.error_body(err)) == {"type": "error", "error": {"type": kind, "message": "nope"}}


def test_stream_error_is_an_error_event() -> None:
    raw = FORMAT.stream_error(GatewayError(529, "Overloaded"))
    assert raw == b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    strict_events(raw)


# -- count_tokens estimate ------------------------------------------------------------------------


def test_estimate_counts_system_tools_messages_and_attachments() -> None:
    tool = {"name": "weather", "input_schema": {"type": "object"}}
    payload = {
        "system": "x" * 40,
        "tools": [tool],
        "messages": [
            {"role": "user", "content": "y" * 80},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "weather", "input": {"c": 1}}]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "z" * 20}]},
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                ],
            },
        ],
    }
    chars = 40 + len(json.dumps(tool, separators=(",", ":"))) + 80 + len("weather") + len('{"c":1}') + 20
    assert estimate_input_tokens(payload) == -(-chars // 4) + 1600
