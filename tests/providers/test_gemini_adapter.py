"""The Gemini provider adapter without a server: requests, answers, streams, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.errors import GatewayError
from providers.adapters.base import Credential
from providers.adapters.gemini import ADAPTER, GeminiPassthrough
from providers.adapters.gemini.wire import SKIP_SIGNATURE
from providers.catalog import get_catalog

BASE = "https://generativelanguage.googleapis.com/v1beta"


def cred() -> Credential:
    provider = get_catalog().providers["gemini"]
    return Credential.build(connection_id=1, provider=provider, api_key="AIza-test", base_url=BASE, data={})


def build(body: dict[str, Any], model: str = "gemini-2.5-flash", *, stream: bool = False) -> dict[str, Any]:
    request = ADAPTER.chat_request(cred(), model, body, stream=stream)
    assert request.body is not None
    result: dict[str, Any] = json.loads(request.body)
    return result


def refused(body: dict[str, Any]) -> str:
    with pytest.raises(GatewayError) as info:
        build(body)
    assert info.value.status == 400
    return info.value.message


# -- requests ----------------------------------------------------------------------------------


def test_urls_and_headers() -> None:
    plain = ADAPTER.chat_request(
        cred(), "gemini-2.5-flash", {"messages": [{"role": "user", "content": "x"}]}, stream=False
    )
    assert plain.url == f"{BASE}/models/gemini-2.5-flash:generateContent"
    assert plain.headers["x-goog-api-key"] == "AIza-test" and "Authorization" not in plain.headers
    streamed = ADAPTER.passthrough_request(cred(), "tunedModels/mine", {"contents": []}, stream=True)
    assert streamed.url == f"{BASE}/tunedModels/mine:streamGenerateContent?alt=sse"
    assert streamed.body == b'{"contents":[]}'


def test_messages_become_contents() -> None:
    body = build(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
                {"role": "user", "content": "Hi"},
                {"role": "user", "content": [{"type": "text", "text": "there"}]},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Weather?"},
            ],
            "max_tokens": 100,
            "temperature": 0.3,
            "top_p": 0.8,
            "top_k": 5,
            "stop": "END",
            "seed": 3,
            "n": 2,
        }
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]}
    # Consecutive turns of one role are merged: Gemini wants alternating user/model turns.
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}, {"text": "there"}]},
        {"role": "model", "parts": [{"text": "Hello"}]},
        {"role": "user", "parts": [{"text": "Weather?"}]},
    ]
    assert body["generationConfig"] == {
        "maxOutputTokens": 100,
        "temperature": 0.3,
        "topP": 0.8,
        "topK": 5,
        "seed": 3,
        "stopSequences": ["END"],
        "candidateCount": 2,
    }


def test_tool_round_trip_uses_function_names_and_signatures() -> None:
    body = build(
        {
            "messages": [
                {"role": "user", "content": "Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                            "extra_content": {"google": {"thought_signature": "c2lnLTE="}},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_2", "content": '{"temp": 25}'},
                {"role": "tool", "tool_call_id": "call_1", "content": "rainy"},
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {"name": "weather", "description": "Now", "parameters": {"type": "object"}},
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
        }
    )
    assert body["contents"][1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "weather", "args": {"city": "Paris"}, "id": "call_1"},
                "thoughtSignature": "c2lnLTE=",
            },
            {"functionCall": {"name": "weather", "args": {"city": "Rome"}, "id": "call_2"}},
        ],
    }
    # Tool results and the user's text after them form one user turn.
    assert body["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "weather", "response": {"temp": 25}, "id": "call_2"}},
            {"functionResponse": {"name": "weather", "response": {"output": "rainy"}, "id": "call_1"}},
            {"text": "Thanks"},
        ],
    }
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {"name": "weather", "description": "Now", "parametersJsonSchema": {"type": "object"}}
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "a"}}]},
            },
            {"mode": "AUTO", "allowedFunctionNames": ["a"]},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any]) -> None:
    body = build({"messages": [{"role": "user", "content": "x"}], "tool_choice": choice})
    assert body["toolConfig"]["functionCallingConfig"] == expected


def test_gemini_3_gets_the_skip_signature_for_unsigned_calls() -> None:
    messages = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    parts = build({"messages": messages}, "gemini-3-flash-preview")["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == SKIP_SIGNATURE
    assert "thoughtSignature" not in build({"messages": messages}, "gemini-2.5-flash")["contents"][1]["parts"][0]


def test_thinking_blocks_and_reasoning_in_history() -> None:
    body = build(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": "Answer",
                    "reasoning_content": "Thought",
                    "thinking_blocks": [{"type": "thinking", "thinking": "Thought", "signature": "c2ln"}],
                },
                {"role": "assistant", "content": "Plain", "reasoning_content": "unsigned musing"},
                {
                    "role": "assistant",
                    "content": "Also plain",
                    "thinking_blocks": [{"type": "thinking", "thinking": "no signature", "signature": ""}],
                },
                {"role": "user", "content": "y"},
            ]
        }
    )
    assert body["contents"][1]["parts"] == [
        {"text": "Thought", "thought": True},
        {"text": "Answer", "thoughtSignature": "c2ln"},
        # Reasoning without a signature is not sent: Gemini ignores thoughts it did not sign.
        {"text": "Plain"},
        {"text": "Also plain"},
    ]


def test_media_parts() -> None:
    body = build(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?size=2"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat"}},
                        {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
                        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg=="}},
                    ],
                }
            ]
        }
    )
    assert body["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}},
        {"fileData": {"fileUri": "https://example.com/cat.jpg?size=2", "mimeType": "image/jpeg"}},
        {"fileData": {"fileUri": "https://example.com/cat"}},
        {"inlineData": {"mimeType": "audio/mpeg", "data": "SUQz"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}},
    ]


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"type": "json_object"}, {"responseMimeType": "application/json"}),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {}}}},
            {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object", "properties": {}}},
        ),
        ({"type": "text"}, None),
    ],
)
def test_response_format(fmt: dict[str, Any], expected: dict[str, Any] | None) -> None:
    body = build({"messages": [{"role": "user", "content": "x"}], "response_format": fmt})
    assert body.get("generationConfig") == expected


@pytest.mark.parametrize(
    ("fields", "model", "expected"),
    [
        ({"thinking_budget": 2048}, "gemini-2.5-flash", {"thinkingBudget": 2048, "includeThoughts": True}),
        ({"thinking_budget": 0}, "gemini-2.5-flash", {"thinkingBudget": 0, "includeThoughts": False}),
        ({"reasoning_effort": "high"}, "gemini-2.5-flash", {"thinkingBudget": 24576, "includeThoughts": True}),
        ({"reasoning_effort": "low"}, "gemini-3-flash-preview", {"thinkingLevel": "low", "includeThoughts": True}),
        ({"reasoning_effort": "none"}, "gemini-2.5-flash", {"thinkingBudget": 0, "includeThoughts": False}),
    ],
)
def test_thinking(fields: dict[str, Any], model: str, expected: dict[str, Any]) -> None:
    body = build({"messages": [{"role": "user", "content": "x"}], **fields}, model)
    assert body["generationConfig"]["thinkingConfig"] == expected


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"logprobs": True}, "'logprobs'"),
        ({"logit_bias": {"1": 2}}, "'logit_bias'"),
        ({"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"tools": [{"type": "web_search"}]}, "tools of type 'web_search'"),
        ({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]}, "file ids"),
        ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "matches no earlier"),
        ({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, "system"),
    ],
)
def test_inexpressible_features_are_400(fields: dict[str, Any], needle: str) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], **fields}
    assert needle in refused(body)


# -- answers -----------------------------------------------------------------------------------

ANSWER = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Considering.", "thought": True},
                    {"text": "Let me check."},
                    {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 12,
        "candidatesTokenCount": 8,
        "thoughtsTokenCount": 5,
        "cachedContentTokenCount": 4,
        "totalTokenCount": 25,
    },
    "modelVersion": "gemini-2.5-flash",
    "responseId": "resp-1",
}


def test_response_to_canonical() -> None:
    out = ADAPTER.to_canonical_response(ANSWER, model="gemini-2.5-flash")
    assert out["id"] == "chatcmpl-resp-1" and out["model"] == "gemini-2.5-flash"
    [choice] = out["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "Let me check." and message["reasoning_content"] == "Considering."
    [call] = message["tool_calls"]
    assert call["id"].startswith("call_") and call["function"] == {"name": "weather", "arguments": '{"city":"Paris"}'}
    assert call["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert out["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 13,
        "total_tokens": 25,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 5},
    }
    usage = ADAPTER.usage_from_response(ANSWER)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.reasoning_tokens) == (12, 13, 4, 5)


@pytest.mark.parametrize(
    ("reason", "expected"), [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("OTHER", "stop")]
)
def test_finish_reasons(reason: str, expected: str) -> None:
    answer = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert ADAPTER.to_canonical_response(answer, model="m")["choices"][0]["finish_reason"] == expected


def test_blocked_prompt_is_content_filter() -> None:
    out = ADAPTER.to_canonical_response({"promptFeedback": {"blockReason": "SAFETY"}}, model="m")
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["message"]["content"] is None


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


def event(
    parts: list[dict[str, Any]], finish: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage or {"promptTokenCount": 3, "totalTokenCount": 3},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1",
    }


STREAM = sse(
    event([{"text": "Hmm", "thought": True}]),
    event([{"text": "Hello "}]),
    event([{"text": "world"}]),
    event(
        [
            {"functionCall": {"name": "f", "args": {"a": [1, 2]}}, "thoughtSignature": "c2ln"},
            {"functionCall": {"name": "g", "args": {}}},
        ],
        "STOP",
        {"promptTokenCount": 3, "candidatesTokenCount": 4, "thoughtsTokenCount": 2, "totalTokenCount": 9},
    ),
)


def decode(data: bytes, step: int) -> list[dict[str, Any]]:
    decoder = ADAPTER.stream_decoder(model="gemini-2.5-flash")
    chunks = [c for i in range(0, len(data), step) for c in decoder.feed(data[i : i + step])]
    return chunks + decoder.finish()


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_stream_decoder(step: int) -> None:
    chunks = decode(STREAM, step)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "reasoning_content": "Hmm"}
    assert deltas[1:3] == [{"content": "Hello "}, {"content": "world"}]
    first, second = deltas[3]["tool_calls"][0], deltas[4]["tool_calls"][0]
    assert (first["index"], first["function"]["arguments"], first["extra_content"]) == (
        0,
        '{"a":[1,2]}',
        {"google": {"thought_signature": "c2ln"}},
    )
    assert (second["index"], second["function"]["name"]) == (1, "g") and first["id"] != second["id"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6
    assert {c["id"] for c in chunks} == {"chatcmpl-r1"}


def test_stream_decoder_signature_on_empty_text_part() -> None:
    chunks = decode(
        sse(
            event([{"text": "Think", "thought": True}]),
            event([{"text": "Hi"}]),
            event([{"text": "", "thoughtSignature": "c2ln"}], "STOP"),
        ),
        10_000,
    )
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert {"thinking_signature": "c2ln"} in deltas
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"


def test_stream_error_event_raises_provider_error() -> None:
    decoder = ADAPTER.stream_decoder(model="m")
    error = {"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}
    with pytest.raises(Exception) as info:
        decoder.feed(sse(error))
    assert getattr(info.value, "status", None) == 503 and getattr(info.value, "retryable", None) is True


# -- passthrough -------------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 5, 10_000])
def test_passthrough_relays_bytes_and_reads_last_usage(step: int) -> None:
    relay = ADAPTER.passthrough_relay(client_wants_usage=True)
    out = b"".join(relay.feed(STREAM[i : i + step]) for i in range(0, len(STREAM), step)) + relay.finish()
    assert out == STREAM
    assert relay.usage is not None
    assert (relay.usage.prompt_tokens, relay.usage.completion_tokens, relay.usage.reasoning_tokens) == (3, 6, 2)


def test_passthrough_holds_only_an_incomplete_event() -> None:
    relay = GeminiPassthrough()
    half = len(STREAM) // 2
    first = relay.feed(STREAM[:half])
    assert STREAM.startswith(first) and first.endswith(b"\r\n\r\n")
    assert first + relay.feed(STREAM[half:]) == STREAM


def test_passthrough_raises_on_error_event() -> None:
    relay = GeminiPassthrough()
    with pytest.raises(Exception) as info:
        relay.feed(sse({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}))
    assert getattr(info.value, "status", None) == 429


# -- errors ------------------------------------------------------------------------------------


def error_bytes(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    body: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        body["details"] = list(details)
    return json.dumps({"error": body}).encode()


def test_429_retry_info_gives_retry_after() -> None:
    body = error_bytes(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded",
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"},
    )
    err = ADAPTER.error_from_response(429, {}, body)
    assert (err.status, err.retryable, err.retry_after, err.code) == (429, True, 20.0, "RESOURCE_EXHAUSTED")
    assert err.message == "Quota exceeded"


def test_retry_delay_fractions_and_header_fallback() -> None:
    detail = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}
    assert ADAPTER.error_from_response(429, {}, error_bytes(429, "RESOURCE_EXHAUSTED", "q", detail)).retry_after == 1.5
    plain = ADAPTER.error_from_response(429, {"retry-after": "7"}, error_bytes(429, "RESOURCE_EXHAUSTED", "q"))
    assert plain.retry_after == 7


def test_503_is_retryable_and_400_is_not() -> None:
    assert ADAPTER.error_from_response(503, {}, error_bytes(503, "UNAVAILABLE", "overloaded")).retryable
    bad = ADAPTER.error_from_response(400, {}, error_bytes(400, "INVALID_ARGUMENT", "bad schema"))
    assert (bad.status, bad.retryable, bad.code) == (400, False, "INVALID_ARGUMENT")


def test_invalid_key_is_an_account_error() -> None:
    detail = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    err = ADAPTER.error_from_response(400, {}, error_bytes(400, "INVALID_ARGUMENT", "API key not valid.", detail))
    assert (err.status, err.retryable) == (401, True)


def test_non_json_and_list_wrapped_errors() -> None:
    assert ADAPTER.error_from_response(502, {}, b"<html>bad gateway</html>").message == "<html>bad gateway</html>"
    wrapped = b"[" + error_bytes(404, "NOT_FOUND", "no such model") + b"]"
    assert ADAPTER.error_from_response(404, {}, wrapped).message == "no such model"
    assert ADAPTER.response_error({"error": {"message": "nope"}}) == "nope"
    assert ADAPTER.response_error(ANSWER) is None


ERROR_EVENT = {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}


def test_passthrough_relays_good_events_before_an_error_in_the_same_read() -> None:
    relay = GeminiPassthrough()
    good = sse(event([{"text": "Hel"}]))
    assert relay.feed(good + sse(ERROR_EVENT)) == good
    with pytest.raises(Exception) as info:
        relay.finish()
    assert getattr(info.value, "status", None) == 500


def test_decoder_emits_chunks_before_an_error_in_the_same_read() -> None:
    decoder = ADAPTER.stream_decoder(model="m")
    chunks = decoder.feed(sse(event([{"text": "Hel"}]), ERROR_EVENT))
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["Hel"]
    with pytest.raises(Exception) as info:
        decoder.feed(b"")
    assert getattr(info.value, "status", None) == 500


def test_decoder_survives_crlf_split_across_reads() -> None:
    data = sse(event([{"text": "a"}]), event([{"text": "b"}]))
    split = data.index(b"\r\n\r\n") + 1  # between CR and LF
    decoder = ADAPTER.stream_decoder(model="m")
    chunks = decoder.feed(data[:split]) + decoder.feed(data[split:]) + decoder.finish()
    assert [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]] == ["a", "b"]


def test_signatures_that_cannot_be_gemini_ones_are_left_out() -> None:
    body = build(
        {
            "messages": [
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": "Answer",
                    "thinking_blocks": [{"type": "thinking", "thinking": "T", "signature": "openai-responses:abc"}],
                },
                {"role": "user", "content": "y"},
            ]
        }
    )
    # Without a signature Gemini would vouch for, the thought is unsigned: not sent either.
    assert body["contents"][1]["parts"] == [{"text": "Answer"}]
