"""The Responses client format without a server: request translation, the response object, and the
stream encoder's event lifecycle checked by a strict parser and by the openai SDK's own accumulator."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from openai._models import construct_type
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from gateway.errors import GatewayError
from gateway.formats.responses import FORMAT
from gateway.formats.responses_output import ResponsesStreamEncoder, decode_reasoning

THINKING = {"type": "thinking", "thinking": "Hmm.", "signature": "sig-anthropic-1"}
GEMINI_EXTRA = {"google": {"thought_signature": "ts-1"}}


def parse_sse_strictly(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Each frame must be exactly `event: <type>\\ndata: <json>\\n\\n` with the data's type equal to
    the event name: no comments, no blank data, no `[DONE]`, nothing after the last frame."""
    assert body.endswith(b"\n\n"), body[-80:]
    events = []
    for frame in body[:-2].split(b"\n\n"):
        lines = frame.split(b"\n")
        assert len(lines) == 2, frame
        assert lines[0].startswith(b"event: ") and lines[1].startswith(b"data: "), frame
        name, data = lines[0][7:].decode(), json.loads(lines[1][6:])
        assert data["type"] == name
        events.append((name, data))
    return events


def sdk_final_response(events: list[tuple[str, dict[str, Any]]]) -> Response:
    """Feed the events to the openai SDK's stream accumulator, which raises on any inconsistency."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for _, data in events:
        state.handle_event(construct_type(type_=ResponseStreamEvent, value=data))  # type: ignore[arg-type]
    final = state._completed_response
    assert final is not None
    return final


def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


def encode(chunks: list[dict[str, Any]]) -> bytes:
    encoder = FORMAT.stream_encoder(model="m1", request_id="r", include_usage=True)
    return b"".join(encoder.feed(c) for c in chunks) + encoder.finish()


# -- request -> canonical --------------------------------------------------------------------------


def test_string_input_and_instructions() -> None:
    canonical = FORMAT.to_canonical(
        {"model": "p/m", "instructions": "Be brief.", "input": "Hi", "max_output_tokens": 10, "stream": True}
    )
    assert canonical["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert (canonical["max_tokens"], canonical["stream"]) == (10, True)


def test_assistant_side_items_make_one_turn() -> None:
    payload = {
        "model": "p/m",
        "input": [
            {"role": "user", "content": "Weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Think."}]},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"a":1}'},
            {"type": "function_call", "call_id": "c2", "name": "w", "arguments": ""},
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "rain"}]},
            {"role": "user", "content": "Thanks"},
        ],
    }
    assert FORMAT.to_canonical(payload)["messages"] == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "Think.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": '{"a":1}'}},
                {"id": "c2", "type": "function", "function": {"name": "w", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "rain"}]},
        {"role": "user", "content": "Thanks"},
    ]


def test_tools_choice_formats_and_options() -> None:
    canonical = FORMAT.to_canonical(
        {
            "model": "p/m",
            "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/i.png"}]}],
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False}],
            "tool_choice": {"type": "function", "name": "f"},
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "reasoning": {"effort": "minimal", "summary": "auto"},
            "parallel_tool_calls": False,
            "temperature": 0,
            "safety_identifier": "u-1",
            "store": True,
        }
    )
    assert canonical["messages"][0]["content"] == [{"type": "image_url", "image_url": {"url": "https://x/i.png"}}]
    assert canonical["tools"] == [
        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": False}}
    ]
    assert canonical["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert canonical["response_format"] == {"type": "json_object"}
    assert (canonical["verbosity"], canonical["reasoning_effort"], canonical["user"]) == ("low", "minimal", "u-1")
    assert (canonical["parallel_tool_calls"], canonical["temperature"]) == (False, 0)


def test_passthrough_only_features_are_accepted_then_named_for_translation() -> None:
    payload = {
        "model": "p/m",
        "previous_response_id": "resp_1",
        "input": [
            {"type": "item_reference", "id": "msg_1"},
            {"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]},
            {"role": "user", "content": "ok"},
        ],
        "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}, {"type": "function", "name": "f"}],
        "tool_choice": {"type": "web_search_preview"},
    }
    canonical = FORMAT.to_canonical(payload)  # a Responses provider would get all of it as is
    assert canonical["messages"] == [{"role": "user", "content": "ok"}]
    assert [t["function"]["name"] for t in canonical["tools"]] == ["f"]

    with pytest.raises(GatewayError) as info:
        FORMAT.check_translatable(payload)
    message = info.value.message
    assert info.value.status == 400 and info.value.code == "unsupported_feature"
    for needle in ("previous_response_id", "item_reference", "file_id", "'file_search'", "'web_search_preview'"):
        assert needle in message


def test_plain_requests_are_translatable() -> None:
    FORMAT.check_translatable({"model": "p/m", "input": "hi", "tools": [{"type": "function", "name": "f"}]})


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({"input": "x", "instructions": 5}, "'instructions' must be a string"),
        ({"input": []}, "'input' must not be empty"),
        ({"input": [5]}, "input[0] must be an object"),
        ({"input": [{"role": "user", "content": 5}]}, "input[0].content"),
        ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}]}, "arguments"),
        ({"input": "x", "tools": "f"}, "'tools' must be an array"),
        ({"input": "x", "tools": [{"name": "f"}]}, "tools[0].type"),
        ({"input": "x", "tools": [{"type": "function", "name": "f", "parameters": []}]}, "parameters"),
        ({"input": "x", "tool_choice": "always"}, "tool_choice"),
        ({"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format.schema"),
        ({"input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"input": "x", "temperature": "warm"}, "'temperature' must be a number"),
        ({"input": "x", "reasoning": "high"}, "'reasoning' must be an object"),
    ],
)
def test_bad_bodies(payload: dict[str, Any], needle: str) -> None:
    with pytest.raises(GatewayError) as info:
        FORMAT.to_canonical({"model": "p/m", **payload})
    assert info.value.status == 400 and needle in info.value.message


# -- canonical -> response object ------------------------------------------------------------------


def canonical_response(message: dict[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    usage = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
        "cache_creation_input_tokens": 3,
    }
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "claude-x",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage,
    }


def test_rendered_response_parses_in_the_sdk() -> None:
    message = {
        "role": "assistant",
        "content": "Done.",
        "reasoning_content": "Hmm.",
        "thinking_blocks": [THINKING],
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}],
    }
    body = orjson.loads(FORMAT.render_response(canonical_response(message, "tool_calls")))
    response = Response.model_validate(body)

    assert response.status == "completed" and response.output_text == "Done."
    assert [item.type for item in response.output] == ["reasoning", "message", "function_call"]
    call = response.output[2]
    assert call.type == "function_call" and (call.call_id, call.name, call.arguments) == ("c1", "f", '{"x":1}')
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert response.usage.input_tokens_details.cache_write_tokens == 3
    assert response.usage.output_tokens_details.reasoning_tokens == 2


def test_length_renders_incomplete() -> None:
    body = orjson.loads(FORMAT.render_response(canonical_response({"role": "assistant", "content": "cu"}, "length")))
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}


def test_signed_reasoning_round_trips_through_the_client() -> None:
    """Thinking blocks and Gemini call signatures come back on the next turn exactly as they left."""
    message = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Hmm.",
        "thinking_blocks": [THINKING],
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "f", "arguments": "{}"},
                "extra_content": GEMINI_EXTRA,
            }
        ],
    }
    output = orjson.loads(FORMAT.render_response(canonical_response(message, "tool_calls")))["output"]
    follow_up = [
        {"role": "user", "content": "go"},
        *output,
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]

    [_, assistant, _] = FORMAT.to_canonical({"model": "p/m", "input": follow_up})["messages"]
    assert assistant["thinking_blocks"] == [THINKING]
    assert assistant["reasoning_content"] == "Hmm."
    assert assistant["tool_calls"][0]["extra_content"] == GEMINI_EXTRA


def test_foreign_encrypted_content_is_not_ours() -> None:
    assert decode_reasoning("gAAAAopenai-encrypted") is None
    assert decode_reasoning("omniroute.v1:not base64!") is None


# -- stream encoder --------------------------------------------------------------------------------


def test_text_stream_golden_framing() -> None:
    body = encode(
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            {"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}},
        ]
    )
    events = parse_sse_strictly(body)

    assert [name for name, _ in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [data["sequence_number"] for _, data in events] == list(range(10))
    assert events[6][1]["text"] == "Hello"
    final = sdk_final_response(events)
    assert final.output_text == "Hello" and final.usage is not None and final.usage.total_tokens == 5


def test_reasoning_tools_and_signatures_stream() -> None:
    chunks = [
        chunk({"role": "assistant"}),
        chunk({"reasoning_content": "Let me "}),
        chunk({"reasoning_content": "see."}),
        chunk({"thinking_signature": "sig-1"}),
        chunk({"content": "Calling."}),
        chunk(
            {"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "c2",
                        "function": {"name": "g", "arguments": "{}"},
                        "extra_content": GEMINI_EXTRA,
                    }
                ]
            }
        ),
        chunk({}, "tool_calls"),
    ]
    events = parse_sse_strictly(encode(chunks))
    names = [name for name, _ in events]

    assert names[2:9] == [
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
    ]
    assert names.count("response.function_call_arguments.delta") == 3
    assert names[-1] == "response.completed"
    final = sdk_final_response(events)
    kinds = [item.type for item in final.output]
    assert kinds == ["reasoning", "message", "function_call", "function_call", "reasoning"]
    first_call = final.output[2]
    assert first_call.type == "function_call" and first_call.arguments == '{"a":1}'

    # The client sends the output back: signatures return to canonical for the next provider call.
    follow_up = [{"role": "user", "content": "x"}, *[item.model_dump(exclude_none=True) for item in final.output]]
    [_, assistant] = FORMAT.to_canonical({"model": "p/m", "input": follow_up})["messages"]
    assert assistant["thinking_blocks"] == [{"type": "thinking", "thinking": "Let me see.", "signature": "sig-1"}]
    assert assistant["tool_calls"][1]["extra_content"] == GEMINI_EXTRA
    assert "extra_content" not in assistant["tool_calls"][0]


def test_empty_stream_still_completes_once() -> None:
    events = parse_sse_strictly(encode([]))
    assert [name for name, _ in events] == ["response.created", "response.in_progress", "response.completed"]


def test_failure_ends_with_response_failed() -> None:
    encoder = ResponsesStreamEncoder("m1")
    body = encoder.feed(chunk({"content": "partial"}))
    body += encoder.failure("upstream went away") or b""
    events = parse_sse_strictly(body)

    assert events[-1][0] == "response.failed"
    response = events[-1][1]["response"]
    assert response["id"] == events[0][1]["response"]["id"]
    assert response["error"] == {"code": "server_error", "message": "upstream went away"}
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert encoder.failure("again") == b""  # one terminal event only


def test_stateless_stream_error_event() -> None:
    events = parse_sse_strictly(FORMAT.stream_error(GatewayError(502, "boom")))
    assert events == [
        ("error", {"type": "error", "code": "server_error", "message": "boom", "param": None, "sequence_number": 0})
    ]


def test_whole_thinking_blocks_get_their_own_reasoning_item() -> None:
    redacted = {"type": "redacted_thinking", "data": "opaque"}
    events = parse_sse_strictly(
        encode([chunk({"thinking_blocks": [redacted]}), chunk({"content": "ok"}), chunk({}, "stop")])
    )
    final = sdk_final_response(events)

    reasoning = final.output[0]
    assert reasoning.type == "reasoning" and reasoning.summary == []
    assert decode_reasoning(reasoning.encrypted_content) == ([redacted], {})
    assert final.output_text == "ok"


def test_validate_checks_the_shape_and_defers_the_translation() -> None:
    assert FORMAT.validate({"model": "p/m", "input": [{"type": "some_future_item"}]}) is None
    assert FORMAT.validate({"model": "p/m", "previous_response_id": "resp_1"}) is None
    for payload, needle in (
        ({"model": "p/m"}, "Missing required field 'input'"),
        ({"model": "p/m", "input": {"role": "user"}}, "'input' must be a string or an array"),
        ({"model": "p/m", "input": "x", "instructions": ["a"]}, "'instructions' must be a string"),
        ({"model": "p/m", "input": "x", "tools": {"type": "function"}}, "'tools' must be an array"),
    ):
        with pytest.raises(GatewayError) as info:
            FORMAT.validate(payload)
        assert needle in info.value.message
