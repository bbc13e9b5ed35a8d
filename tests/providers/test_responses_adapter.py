"""The Responses adapter without a server: canonical -> Responses requests, Responses answers and
streams -> canonical, and the byte-for-byte passthrough relay."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import orjson
import pytest

from gateway.errors import GatewayError
from providers.adapters.base import Credential, ProviderError
from providers.adapters.responses import ADAPTER, responses_body
from providers.adapters.responses_stream import ResponsesPassthrough, ResponsesStreamDecoder, signature_of
from providers.catalog import ProviderInfo, get_catalog


def frame(name: str, sequence: int, **fields: Any) -> bytes:
    data = {"type": name, "sequence_number": sequence, **fields}
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def decode(frames: list[bytes], *, split: int | None = None) -> list[dict[str, Any]]:
    """Run the frames through the decoder, optionally cut into pieces of `split` bytes."""
    decoder = ResponsesStreamDecoder("m")
    data = b"".join(frames)
    pieces = [data[i : i + split] for i in range(0, len(data), split)] if split else [data]
    chunks = [c for piece in pieces for c in decoder.feed(piece)]
    return chunks + decoder.finish()


def deltas(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["choices"][0]["delta"] for c in chunks if c["choices"]]


RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1700000000, "model": "gpt-5", "status": "in_progress"}
USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 3},
    "total_tokens": 17,
}


def stream_frames() -> list[bytes]:
    """Reasoning with encrypted content, text, and a function call whose arguments come in pieces."""
    call = {
        "id": "fc_1",
        "type": "function_call",
        "status": "in_progress",
        "arguments": "",
        "call_id": "call_1",
        "name": "f",
    }
    done_call = {**call, "status": "completed", "arguments": '{"city":"Paris"}'}
    reasoning = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "ENC"}
    return [
        frame("response.created", 0, response=RESPONSE),
        frame("response.in_progress", 1, response=RESPONSE),
        frame("response.output_item.added", 2, output_index=0, item={"id": "rs_1", "type": "reasoning", "summary": []}),
        frame(
            "response.reasoning_summary_text.delta", 3, item_id="rs_1", output_index=0, summary_index=0, delta="One."
        ),
        frame(
            "response.reasoning_summary_text.delta", 4, item_id="rs_1", output_index=0, summary_index=1, delta="Two."
        ),
        frame("response.output_item.done", 5, output_index=0, item=reasoning),
        frame("response.output_item.added", 6, output_index=1, item={"id": "msg_1", "type": "message", "content": []}),
        frame("response.output_text.delta", 7, item_id="msg_1", output_index=1, content_index=0, delta="Hi"),
        frame("response.output_item.added", 8, output_index=2, item=call),
        frame("response.function_call_arguments.delta", 9, item_id="fc_1", output_index=2, delta='{"city":'),
        frame("response.function_call_arguments.delta", 10, item_id="fc_1", output_index=2, delta='"Par'),
        frame(
            "response.function_call_arguments.done", 11, item_id="fc_1", output_index=2, arguments='{"city":"Paris"}'
        ),
        frame("response.output_item.done", 12, output_index=2, item=done_call),
        frame("response.completed", 13, response={**RESPONSE, "status": "completed", "usage": USAGE}),
    ]


# -- requests --------------------------------------------------------------------------------------


def test_canonical_request_becomes_input_items() -> None:
    signature = signature_of("rs_9", "ENC9")
    body = {
        "model": "x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {"url": "data:x"}}],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "Hmm.", "signature": signature},
                    {"type": "thinking", "thinking": "Other.", "signature": "anthropic-signature"},
                ],
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
        "max_tokens": 99,
        "temperature": 0.5,
        "reasoning_effort": "low",
    }
    upstream = responses_body(body, "gpt-5", stream=True)

    assert upstream["input"] == [
        {"type": "message", "role": "system", "content": "Be brief."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Hi"},
                {"type": "input_image", "image_url": "data:x", "detail": "auto"},
            ],
        },
        # Our own OpenAI reasoning goes back; another provider's thinking cannot be replayed here.
        {
            "type": "reasoning",
            "id": "rs_9",
            "summary": [{"type": "summary_text", "text": "Hmm."}],
            "encrypted_content": "ENC9",
        },
        {"type": "message", "role": "assistant", "content": "Checking."},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
    ]
    assert upstream["tools"] == [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    assert upstream["tool_choice"] == {"type": "function", "name": "f"}
    assert upstream["text"] == {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}}
    assert (upstream["max_output_tokens"], upstream["temperature"], upstream["stream"], upstream["store"]) == (
        99,
        0.5,
        True,
        False,
    )
    assert upstream["reasoning"] == {"effort": "low", "summary": "auto"}
    assert upstream["include"] == ["reasoning.encrypted_content"]


def test_non_reasoning_model_gets_no_encrypted_content() -> None:
    upstream = responses_body({"messages": [{"role": "user", "content": "x"}]}, "gpt-4.1", stream=False)
    assert "include" not in upstream and "reasoning" not in upstream and "stream" not in upstream


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"stop": ["\n"]}, "stop sequences"),
        ({"seed": 7}, "seed"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"n": 2}, "n > 1"),
        ({"logprobs": True}, "logprobs"),
    ],
)
def test_what_responses_cannot_express_is_a_400(extra: dict[str, Any], needle: str) -> None:
    with pytest.raises(GatewayError) as info:
        responses_body({"messages": [{"role": "user", "content": "x"}], **extra}, "gpt-5", stream=False)
    assert info.value.status == 400 and needle in info.value.message


def test_thinking_budget_maps_to_the_nearest_effort() -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "thinking_budget": 10000}
    assert responses_body(body, "o3", stream=False)["reasoning"]["effort"] == "medium"


def test_request_url_headers_and_passthrough_body() -> None:
    provider = get_catalog().providers["openai-responses"]
    cred = Credential.build(connection_id=1, provider=provider, api_key="sk-1", base_url="https://h/v1/", data={})
    request = ADAPTER.passthrough_request(cred, "gpt-5", {"model": "openai-responses/gpt-5", "input": "x"}, stream=True)

    assert request.url == "https://h/v1/responses"
    assert request.headers["Authorization"] == "Bearer sk-1" and request.headers["Accept"] == "text/event-stream"
    assert orjson.loads(request.body or b"") == {"model": "gpt-5", "input": "x", "stream": True}


# -- responses -------------------------------------------------------------------------------------


def test_response_object_becomes_canonical() -> None:
    obj = {
        **RESPONSE,
        "status": "completed",
        "output": [
            {
                "id": "rs_1",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "Hmm."}],
                "encrypted_content": "E",
            },
            {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi"}]},
            {"id": "fc_1", "type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        ],
        "usage": USAGE,
    }
    canonical = ADAPTER.to_canonical_response(obj, model="gpt-5")
    message = canonical["choices"][0]["message"]

    assert canonical["choices"][0]["finish_reason"] == "tool_calls"
    assert (message["content"], message["reasoning_content"]) == ("Hi", "Hmm.")
    assert message["thinking_blocks"] == [
        {"type": "thinking", "thinking": "Hmm.", "signature": signature_of("rs_1", "E")}
    ]
    assert message["tool_calls"] == [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    assert canonical["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 7,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 3},
    }


def test_incomplete_and_failed_responses() -> None:
    incomplete = {
        **RESPONSE,
        "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"},
        "output": [],
    }
    assert ADAPTER.to_canonical_response(incomplete, model="m")["choices"][0]["finish_reason"] == "length"
    failed = {**RESPONSE, "status": "failed", "error": {"code": "server_error", "message": "boom"}, "output": []}
    assert ADAPTER.response_error(failed) == "boom"
    assert ADAPTER.response_error({**RESPONSE, "status": "completed", "output": []}) is None


def test_error_body_and_retry_hints() -> None:
    error = {"message": "Rate limit reached. Try again in 20s.", "type": "requests", "code": "rate_limit_exceeded"}
    body = orjson.dumps({"error": error})
    err = ADAPTER.error_from_response(429, {}, body)
    assert (err.status, err.retryable, err.retry_after, err.code) == (429, True, 20.0, "rate_limit_exceeded")


# -- stream decoding -------------------------------------------------------------------------------


@pytest.mark.parametrize("split", [None, 1, 7, 64])
def test_stream_decodes_whatever_the_chunking(split: int | None) -> None:
    chunks = decode(stream_frames(), split=split)
    ds = deltas(chunks)

    assert ds[0] == {"role": "assistant"}
    assert "".join(d.get("reasoning_content", "") for d in ds) == "One.\n\nTwo."
    assert {"thinking_signature": signature_of("rs_1", "ENC")} in ds
    assert "".join(d.get("content", "") for d in ds) == "Hi"
    calls = [call for d in ds for call in d.get("tool_calls", [])]
    assert calls[0] == {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    # The deltas lacked the end of the arguments; the .done event completes them exactly once.
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city":"Paris"}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}
    assert {c["id"] for c in chunks} == {"resp_1"}


def test_stream_failure_events_raise() -> None:
    failed = {**RESPONSE, "status": "failed", "error": {"code": "rate_limit_exceeded", "message": "Slow down"}}
    with pytest.raises(ProviderError) as info:
        decode([frame("response.created", 0, response=RESPONSE), frame("response.failed", 1, response=failed)])
    assert (info.value.status, info.value.retryable, info.value.message) == (429, True, "Slow down")

    with pytest.raises(ProviderError) as info:
        decode([frame("error", 0, code="invalid_prompt", message="Bad prompt", param=None)])
    assert (info.value.status, info.value.retryable) == (400, False)


def test_incomplete_stream_finishes_with_length() -> None:
    incomplete = {**RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    chunks = decode(
        [frame("response.created", 0, response=RESPONSE), frame("response.incomplete", 1, response=incomplete)]
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


# -- passthrough -----------------------------------------------------------------------------------


@pytest.mark.parametrize("split", [None, 1, 5, 300])
def test_passthrough_relays_bytes_and_reads_usage(split: int | None) -> None:
    data = b"".join(stream_frames())
    relay = ResponsesPassthrough()
    pieces = [data[i : i + split] for i in range(0, len(data), split)] if split else [data]

    out = b"".join(relay.feed(piece) for piece in pieces) + relay.finish()

    assert out == data
    assert relay.usage is not None
    assert (relay.usage.prompt_tokens, relay.usage.completion_tokens, relay.usage.cached_tokens) == (10, 7, 4)
    assert relay.usage.reasoning_tokens == 3
    assert relay.failure("late") == b""  # the stream already ended: nothing more to send


def test_passthrough_is_not_fooled_by_a_terminal_name_in_text() -> None:
    text = frame(
        "response.output_text.delta", 2, item_id="m", output_index=0, content_index=0, delta="response.completed"
    )
    relay = ResponsesPassthrough()
    relay.feed(frame("response.created", 0, response=RESPONSE) + text)
    assert relay.usage is None
    relay.feed(frame("response.completed", 3, response={**RESPONSE, "usage": USAGE}))
    assert relay.usage is not None and relay.usage.prompt_tokens == 10


def test_passthrough_failure_continues_the_stream_it_relayed() -> None:
    relay = ResponsesPassthrough()
    relay.feed(frame("response.created", 0, response=RESPONSE) + frame("response.in_progress", 1, response=RESPONSE))
    ending = relay.failure("upstream went away")

    assert ending is not None and ending.startswith(b"event: response.failed\ndata: ")
    event = orjson.loads(ending.split(b"data: ", 1)[1])
    assert (event["sequence_number"], event["response"]["id"], event["response"]["status"]) == (2, "resp_1", "failed")
    assert event["response"]["error"]["message"] == "upstream went away"


def test_passthrough_failure_before_any_event_leaves_it_to_the_format() -> None:
    assert ResponsesPassthrough().failure("x") is None


def test_passthrough_is_not_fooled_by_a_terminal_name_in_the_created_event() -> None:
    created = {**RESPONSE, "instructions": "Say response.completed when done."}
    relay = ResponsesPassthrough()
    relay.feed(frame("response.created", 0, response=created))
    assert relay.usage is None and not relay.ended and relay.response_id == "resp_1"
    relay.feed(frame("response.completed", 1, response={**RESPONSE, "usage": USAGE}))
    assert relay.usage is not None and relay.usage.completion_tokens == 7


def test_custom_node_path() -> None:
    node = ProviderInfo(id="corp", name="Corp", format="responses", base_url="https://llm.corp/api", auth="bearer")
    cred = Credential.build(
        connection_id=2, provider=replace(node, chat_path="/v2/responses"), api_key="k", base_url=node.base_url, data={}
    )
    body = {"messages": [{"role": "user", "content": "x"}]}
    assert ADAPTER.chat_request(cred, "m", body, stream=False).url == "https://llm.corp/api/v2/responses"
