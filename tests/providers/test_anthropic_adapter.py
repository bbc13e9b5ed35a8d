"""The Anthropic Messages adapter without a server: canonical -> Messages request, Messages
answers -> canonical, the stream decoder, the passthrough relay and error parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from gateway.errors import GatewayError
from providers.adapters.anthropic import (
    ADAPTER,
    DEFAULT_MAX_TOKENS,
    AnthropicPassthrough,
    AnthropicStreamDecoder,
    messages_body,
)
from providers.adapters.base import Credential, ProviderError
from providers.catalog import get_catalog

SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pk"


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "anthropic/claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}], **fields}


def translate(**fields: Any) -> dict[str, Any]:
    return messages_body(body(**fields), "claude-sonnet-4-5", stream=False)


def rejected(**fields: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        translate(**fields)
    assert info.value.status == 400
    return info.value


# -- canonical -> Messages request ------------------------------------------------------------------


def test_conversation_with_system_tools_and_results() -> None:
    out = translate(
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "French only."}]},
            {"role": "user", "content": "Weather in Paris and Lyon?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "reasoning_content": "Two calls.",
                "thinking_blocks": [{"type": "thinking", "thinking": "Two calls.", "signature": SIGNATURE}],
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "w", "arguments": '{"city":"Paris"}'}},
                    {"id": "call_2", "type": "function", "function": {"name": "w", "arguments": ""}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "20C"}]},
            {"role": "user", "content": "Thanks"},
            {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "Bye"}]},
        ]
    )
    assert out["system"] == [{"type": "text", "text": "Be terse."}, {"type": "text", "text": "French only."}]
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Lyon?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Two calls.", "signature": SIGNATURE},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "w", "input": {}},
            ],
        },
        {
            # Tool results first, in one user turn with the following user text (consecutive roles merge).
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "20C"}]},
                {"type": "text", "text": "Thanks"},
                {"type": "text", "text": "Bye"},
            ],
        },
    ]
    assert out["max_tokens"] == DEFAULT_MAX_TOKENS
    assert out["model"] == "claude-sonnet-4-5" and "stream" not in out


def test_unsigned_reasoning_is_not_sent() -> None:
    out = translate(
        messages=[
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "simple sum"},
            {"role": "user", "content": "and 3+3?"},
        ]
    )
    assert out["messages"][1] == {"role": "assistant", "content": [{"type": "text", "text": "4"}]}


def test_images_and_pdf() -> None:
    parts = [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0", "filename": "r.pdf"}},
    ]
    out = translate(messages=[{"role": "user", "content": parts}])
    assert out["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0"},
            "title": "r.pdf",
        },
    ]


@pytest.mark.parametrize(
    ("part", "needle"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}, "image type 'image/bmp'"),
        ({"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}, "base64 data URL"),
        ({"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}, "'input_audio'"),
        ({"type": "file", "file": {"file_id": "file-1"}}, "inline PDF"),
    ],
)
def test_unsendable_parts_are_400(part: dict[str, Any], needle: str) -> None:
    assert needle in rejected(messages=[{"role": "user", "content": [part]}]).message


def test_tools_choice_stop_user_and_schema() -> None:
    params = {"type": "object", "properties": {"q": {"type": "string"}}}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    out = translate(
        tools=[
            {
                "type": "function",
                "function": {"name": "search", "description": "Find", "parameters": params, "strict": True},
            },
            {"type": "function", "function": {"name": "noop"}},
        ],
        tool_choice="required",
        parallel_tool_calls=False,
        stop="END",
        temperature=0.3,
        top_p=0.8,
        user="u-1",
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    assert out["tools"] == [
        {"name": "search", "input_schema": params, "description": "Find", "strict": True},
        {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["stop_sequences"] == ["END"]
    assert (out["temperature"], out["top_p"]) == (0.3, 0.8)
    assert out["metadata"] == {"user_id": "u-1"}
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert translate(tools=tools, tool_choice=choice)["tool_choice"] == expected


@pytest.mark.parametrize(
    ("fields", "thinking", "max_tokens"),
    [
        ({"reasoning_effort": "low"}, {"type": "enabled", "budget_tokens": 2048}, 2048 + DEFAULT_MAX_TOKENS),
        ({"reasoning_effort": "high", "max_tokens": 4000}, {"type": "enabled", "budget_tokens": 3999}, 4000),
        ({"thinking_budget": 500}, {"type": "enabled", "budget_tokens": 1024}, 1024 + DEFAULT_MAX_TOKENS),
        (
            {"thinking_budget": 3000, "reasoning_effort": "high", "max_completion_tokens": 9000},
            {"type": "enabled", "budget_tokens": 3000},
            9000,
        ),
        ({"reasoning_effort": "none"}, None, DEFAULT_MAX_TOKENS),
        ({"thinking_budget": 0, "reasoning_effort": "high"}, None, DEFAULT_MAX_TOKENS),
    ],
)
def test_reasoning_becomes_thinking(fields: dict[str, Any], thinking: dict[str, Any] | None, max_tokens: int) -> None:
    out = translate(**fields)
    assert out.get("thinking") == thinking
    assert out["max_tokens"] == max_tokens


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"n": 2}, "'n'"),
        ({"logprobs": True}, "'logprobs'"),
        ({"presence_penalty": 0.5}, "'presence_penalty'"),
        ({"response_format": {"type": "json_object"}}, "json_object"),
        ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "tools[0] of type 'custom'"),
        ({"reasoning_effort": "low", "max_tokens": 1000}, "max_tokens must be above 1024"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort 'extreme'"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"messages": [{"role": "function", "content": "x"}]}, "role 'function'"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{x"}}]}
                ]
            },
            "not valid JSON",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}
                ]
            },
            "must be a JSON object",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "only text",
        ),
    ],
)
def test_inexpressible_requests_are_400(fields: dict[str, Any], needle: str) -> None:
    assert needle in rejected(**fields).message


def cred(provider: str = "anthropic", base_url: str = "http://up.test/v1") -> Credential:
    info = get_catalog().providers[provider]
    return Credential.build(connection_id=1, provider=info, api_key="sk-ant-1", base_url=base_url, data={})


def test_upstream_requests_carry_auth_version_and_stream() -> None:
    request = ADAPTER.chat_request(cred(), "claude-sonnet-4-5", body(), stream=True)
    assert request.url == "http://up.test/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-1"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["Accept"] == "text/event-stream"
    assert orjson.loads(request.body or b"")["stream"] is True
    # Claude Code accounts authenticate with Bearer and send the catalog's beta header.
    claude = ADAPTER.chat_request(cred("claude"), "claude-sonnet-4-5", body(), stream=False)
    assert claude.headers["Authorization"] == "Bearer sk-ant-1" and "x-api-key" not in claude.headers
    assert "oauth-2025-04-20" in claude.headers["anthropic-beta"]


def test_passthrough_keeps_the_body_and_sets_model_and_stream() -> None:
    payload = {"model": "anthropic/claude-sonnet-4-5", "max_tokens": 5, "top_k": 3, "messages": [], "stream": True}
    sent = orjson.loads(ADAPTER.passthrough_request(cred(), "claude-sonnet-4-5", payload, stream=False).body or b"")
    assert sent == {"model": "claude-sonnet-4-5", "max_tokens": 5, "top_k": 3, "messages": []}


def test_count_tokens_request_drops_generation_fields() -> None:
    payload = {"model": "x", "max_tokens": 5, "stream": True, "temperature": 1, "messages": [], "system": "s"}
    request = ADAPTER.count_tokens_request(cred(), "claude-sonnet-4-5", payload)
    assert request.url == "http://up.test/v1/messages/count_tokens"
    assert orjson.loads(request.body or b"") == {"model": "claude-sonnet-4-5", "messages": [], "system": "s"}


# -- Messages response -> canonical ----------------------------------------------------------------


def test_message_to_canonical() -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 5,
            "output_tokens": 40,
            "output_tokens_details": {"thinking_tokens": 12},
        },
    }
    canonical = ADAPTER.to_canonical_response(message, model="claude-sonnet-4-5")
    choice = canonical["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "Calling.",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "w", "arguments": '{"city":"Paris"}'}}
        ],
        "reasoning_content": "Hmm.",
        "thinking_blocks": [
            {"type": "thinking", "thinking": "Hmm.", "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": "opaque"},
        ],
    }
    assert canonical["usage"] == {
        "prompt_tokens": 115,
        "completion_tokens": 40,
        "total_tokens": 155,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 12},
        "cache_creation_input_tokens": 5,
    }
    usage = ADAPTER.usage_from_response(message)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.reasoning_tokens) == (
        115,
        40,
        100,
        12,
    )


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"), ("refusal", "content_filter")],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    message = {"content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason, "usage": {}}
    assert ADAPTER.to_canonical_response(message, model="m")["choices"][0]["finish_reason"] == finish


def test_error_body_with_200_is_an_error() -> None:
    assert ADAPTER.response_error({"type": "error", "error": {"type": "api_error", "message": "bad"}}) == "bad"
    assert ADAPTER.response_error({"type": "message", "content": []}) is None


# -- the stream decoder -----------------------------------------------------------------------------


def sse(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


ARGUMENTS = '{"city": "Paris", "days": [1, 2]}'
STREAM = b"".join(
    [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_9",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": 20, "cache_read_input_tokens": 30, "output_tokens": 1},
                },
            }
        ),
        sse({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        sse({"type": "ping"}),
        sse({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
        sse({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "see."}}),
        sse({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": SIGNATURE}}),
        sse({"type": "content_block_stop", "index": 0}),
        sse({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        sse({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Sure."}}),
        sse({"type": "content_block_stop", "index": 1}),
        sse(
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {"type": "tool_use", "id": "toolu_7", "name": "w", "input": {}},
            }
        ),
        *(
            sse({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": p}})
            for p in ["", ARGUMENTS[:7], ARGUMENTS[7:19], ARGUMENTS[19:]]
        ),
        sse({"type": "content_block_stop", "index": 2}),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 33},
            }
        ),
        sse({"type": "message_stop"}),
    ]
)


def decode(data: bytes, step: int) -> list[dict[str, Any]]:
    decoder = ADAPTER.stream_decoder(model="claude-sonnet-4-5")
    chunks = []
    for start in range(0, len(data), step):
        chunks.extend(decoder.feed(data[start : start + step]))
    return chunks + decoder.finish()


def test_decoder_produces_canonical_chunks() -> None:
    chunks = decode(STREAM, len(STREAM))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Let me see."
    assert [d["thinking_signature"] for d in deltas if "thinking_signature" in d] == [SIGNATURE]
    assert "".join(d.get("content") or "" for d in deltas) == "Sure."
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    assert calls[0] == {"index": 0, "id": "toolu_7", "type": "function", "function": {"name": "w", "arguments": ""}}
    assert "".join(c["function"]["arguments"] for c in calls) == ARGUMENTS
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 50
    assert chunks[-1]["usage"]["completion_tokens"] == 33
    assert chunks[-1]["usage"]["prompt_tokens_details"] == {"cached_tokens": 30}
    assert all(c["id"] == "msg_9" for c in chunks)


@pytest.mark.parametrize("step", [1, 3, 17, 64])
def test_decoder_is_independent_of_chunking(step: int) -> None:
    assert decode(STREAM, step) == decode(STREAM, len(STREAM))


def test_decoder_raises_on_error_events_and_truncation() -> None:
    decoder = AnthropicStreamDecoder("m")
    overloaded = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    with pytest.raises(ProviderError) as info:
        decoder.feed(STREAM[: STREAM.index(b"event: ping")] + overloaded)
    assert info.value.status == 529 and info.value.retryable and "Overloaded" in info.value.message
    truncated = AnthropicStreamDecoder("m")
    truncated.feed(STREAM[: STREAM.index(b"event: message_delta")])
    with pytest.raises(ProviderError, match="before message_stop"):
        truncated.finish()


# -- the passthrough relay ---------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 5, 50, len(STREAM)])
def test_passthrough_relays_bytes_unchanged_and_reads_usage(step: int) -> None:
    relay = ADAPTER.passthrough_relay(client_wants_usage=False)
    out = b"".join(relay.feed(STREAM[i : i + step]) for i in range(0, len(STREAM), step)) + relay.finish()
    assert out == STREAM
    assert relay.usage is not None
    assert (relay.usage.prompt_tokens, relay.usage.completion_tokens, relay.usage.cached_tokens) == (50, 33, 30)


def test_passthrough_flushes_complete_events_only() -> None:
    relay = AnthropicPassthrough()
    first_event_end = STREAM.index(b"\n\n") + 2
    assert relay.feed(STREAM[: first_event_end + 10]) == STREAM[:first_event_end]


def test_passthrough_error_first_raises_for_fallback_later_passes_through() -> None:
    error = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    with pytest.raises(ProviderError) as info:
        AnthropicPassthrough().feed(error)
    assert info.value.status == 529 and info.value.retryable
    relay = AnthropicPassthrough()
    head = STREAM[: STREAM.index(b"event: content_block_stop")]
    assert relay.feed(head) == head
    assert relay.feed(error) == error


def test_passthrough_normalises_crlf() -> None:
    relay = AnthropicPassthrough()
    assert relay.feed(STREAM.replace(b"\n", b"\r\n")) == STREAM


# -- errors ------------------------------------------------------------------------------------------


def error_body(kind: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"})


def test_rate_limit_with_retry_after() -> None:
    err = ADAPTER.error_from_response(429, {"retry-after": "17"}, error_body("rate_limit_error", "slow down"))
    assert (err.status, err.message, err.code, err.retryable, err.retry_after) == (
        429,
        "slow down",
        "rate_limit_error",
        True,
        17.0,
    )


def test_rate_limit_reset_headers_when_no_retry_after() -> None:
    now = datetime.now(UTC)
    headers = {
        "anthropic-ratelimit-requests-remaining": "40",
        "anthropic-ratelimit-requests-reset": (now + timedelta(seconds=5)).isoformat().replace("+00:00", "Z"),
        "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": (now + timedelta(seconds=42)).isoformat().replace("+00:00", "Z"),
    }
    err = ADAPTER.error_from_response(429, headers, error_body("rate_limit_error", "tokens"))
    # The exhausted limit (input tokens) decides, not the earlier requests reset.
    assert err.retry_after is not None and 40 < err.retry_after <= 42


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (529, "overloaded_error", True),
        (500, "api_error", True),
        (400, "invalid_request_error", False),
        (404, "not_found_error", False),
    ],
)
def test_error_statuses(status: int, kind: str, retryable: bool) -> None:
    err = ADAPTER.error_from_response(status, {}, error_body(kind, "why"))
    assert (err.status, err.code, err.message, err.retryable) == (status, kind, "why", retryable)
