"""The Gemini client format without a server: request -> canonical, canonical -> Gemini answers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.formats.gemini import ARRAY_FORMAT, FORMAT, models_body
from gateway.formats.gemini.response import GeminiArrayEncoder, GeminiStreamEncoder
from gateway.snapshot import ComboEntry, ComboMember, Snapshot
from providers.adapters.base import Credential
from providers.catalog import get_catalog


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def canonical(payload: dict[str, Any]) -> dict[str, Any]:
    return FORMAT.to_canonical(payload)


def rejected(payload: dict[str, Any]) -> str:
    with pytest.raises(GatewayError) as info:
        FORMAT.check_translatable(payload)
    assert info.value.status == 400
    return info.value.message


# -- request -> canonical ----------------------------------------------------------------------


def test_text_system_and_generation_config() -> None:
    body = canonical(
        {
            "contents": [user("Hi"), {"role": "model", "parts": [{"text": "Hello"}]}, user("More")],
            "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
            "generationConfig": {
                "maxOutputTokens": 50,
                "temperature": 0.2,
                "topP": 0.9,
                "topK": 3.0,
                "stopSequences": ["END"],
                "seed": 7,
                "presencePenalty": 0.5,
                "frequencyPenalty": 0.1,
                "candidateCount": 1,
            },
        }
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be brief.\nBe kind."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "More"},
    ]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["top_k"]) == (50, 0.2, 0.9, 3)
    assert (body["stop"], body["seed"], body["presence_penalty"], body["frequency_penalty"]) == (["END"], 7, 0.5, 0.1)
    FORMAT.check_translatable({"contents": [user("Hi")], "generationConfig": {"candidateCount": 1}})


def test_snake_case_fields_are_read_like_camel_case() -> None:
    """The google-genai SDK sends snake_case inside some objects (proto3 JSON allows both)."""
    body = canonical(
        {
            "contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "iVBORw=="}}]}],
            "system_instruction": {"parts": [{"text": "sys"}]},
            "generation_config": {"max_output_tokens": 9, "thinking_config": {"thinking_budget": 100}},
        }
    )
    assert body["messages"][0] == {"role": "system", "content": "sys"}
    assert body["messages"][1]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}}
    ]
    assert body["max_tokens"] == 9 and body["thinking_budget"] == 100


def test_media_parts() -> None:
    body = canonical(
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "Look"},
                        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}},
                        {"fileData": {"fileUri": "https://example.com/cat.png", "mimeType": "image/png"}},
                        {"fileData": {"fileUri": "https://example.com/doc.pdf", "mimeType": "application/pdf"}},
                    ],
                }
            ]
        }
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Look"},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg=="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "file", "file": {"file_url": "https://example.com/doc.pdf"}},
    ]


def test_function_call_round_trip_matches_responses_to_calls() -> None:
    body = canonical(
        {
            "contents": [
                user("Weather in Paris and Rome?"),
                {
                    "role": "model",
                    "parts": [
                        {"text": "thinking...", "thought": True},
                        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
                        {"functionCall": {"name": "weather", "args": {"city": "Rome"}, "id": "given-2"}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "weather", "id": "given-2", "response": {"temp": 25}}},
                        {"functionResponse": {"name": "weather", "response": {"output": "rainy"}}},
                        {"text": "Thanks"},
                    ],
                },
            ],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "weather",
                            "description": "Weather now",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {"city": {"type": "STRING", "nullable": True}},
                                "required": ["city"],
                                "propertyOrdering": ["city"],
                            },
                        }
                    ]
                }
            ],
        }
    )
    assistant = body["messages"][1]
    assert assistant["reasoning_content"] == "thinking..."
    first, second = assistant["tool_calls"]
    assert first["function"] == {"name": "weather", "arguments": '{"city":"Paris"}'}
    assert first["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert second["id"] == "given-2" and "extra_content" not in second
    # The response with an id goes to that call; the other one to the first unanswered call of that name.
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "given-2", "content": '{"temp":25}'}
    assert body["messages"][3] == {"role": "tool", "tool_call_id": first["id"], "content": '{"output":"rainy"}'}
    assert body["messages"][4] == {"role": "user", "content": "Thanks"}
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather now",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": ["string", "null"]}},
                    "required": ["city"],
                },
            },
        }
    ]


def test_signatures_on_text_close_thinking_blocks() -> None:
    body = canonical(
        {
            "contents": [
                user("Hi"),
                {
                    "role": "model",
                    "parts": [
                        {"text": "Let me think.", "thought": True},
                        {"text": "Hello!", "thoughtSignature": "c2lnLTE="},
                    ],
                },
                user("Again"),
            ]
        }
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "Hello!",
        "reasoning_content": "Let me think.",
        "thinking_blocks": [{"type": "thinking", "thinking": "Let me think.", "signature": "c2lnLTE="}],
    }


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"mode": "AUTO"}, ("auto", ["a", "b", "c"])),
        ({"mode": "NONE"}, ("none", ["a", "b", "c"])),
        ({"mode": "ANY"}, ("required", ["a", "b", "c"])),
        ({"mode": "ANY", "allowedFunctionNames": ["b"]}, ({"type": "function", "function": {"name": "b"}}, None)),
        ({"mode": "ANY", "allowedFunctionNames": ["a", "c"]}, ("required", ["a", "c"])),
        ({"mode": "VALIDATED"}, ("auto", ["a", "b", "c"])),
    ],
)
def test_tool_config(config: dict[str, Any], expected: tuple[Any, list[str] | None]) -> None:
    body = canonical(
        {
            "contents": [user("x")],
            "tools": [{"functionDeclarations": [{"name": n} for n in ("a", "b", "c")]}],
            "toolConfig": {"functionCallingConfig": config},
        }
    )
    choice, names = expected
    assert body["tool_choice"] == choice
    if names is not None:
        assert [t["function"]["name"] for t in body["tools"]] == names


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"responseMimeType": "application/json"}, {"type": "json_object"}),
        (
            {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}},
            {"type": "json_schema", "json_schema": {"name": "response", "schema": {"type": "object"}}},
        ),
        (
            {"responseMimeType": "application/json", "responseSchema": {"type": "ARRAY", "items": {"type": "INTEGER"}}},
            {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": {"type": "array", "items": {"type": "integer"}}},
            },
        ),
        ({"responseMimeType": "text/plain"}, None),
    ],
)
def test_response_format(config: dict[str, Any], expected: dict[str, Any] | None) -> None:
    assert canonical({"contents": [user("x")], "generationConfig": config}).get("response_format") == expected


@pytest.mark.parametrize(
    ("thinking", "expected"),
    [
        ({"thinkingBudget": 2048, "includeThoughts": True}, {"thinking_budget": 2048}),
        ({"thinkingBudget": 0}, {"thinking_budget": 0}),
        ({"thinkingBudget": -1, "includeThoughts": True}, {}),
        ({"thinkingLevel": "LOW"}, {"reasoning_effort": "low"}),
        ({"thinking_level": "high"}, {"reasoning_effort": "high"}),
    ],
)
def test_thinking_config(thinking: dict[str, Any], expected: dict[str, Any]) -> None:
    body = canonical({"contents": [user("x")], "generationConfig": {"thinkingConfig": thinking}})
    assert {k: body[k] for k in ("thinking_budget", "reasoning_effort") if k in body} == expected


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ({}, "contents is not specified"),
        ({"contents": []}, "non-empty array"),
        ({"contents": "hi"}, "non-empty array"),
        ({"contents": [5]}, "contents[0] must be an object"),
        ({"contents": [{"role": "user"}]}, "contents[0].parts"),
        ({"contents": [{"role": "bot", "parts": [{"text": "x"}]}]}, "role must be 'user' or 'model'"),
        ({"contents": [{"parts": [{}]}]}, "exactly one data field"),
        ({"contents": [{"parts": [{"text": 5}]}]}, "text must be a string"),
        ({"contents": [{"parts": [{"functionCall": {"args": {}}}]}]}, "functionCall.name"),
        ({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png"}}]}]}, "inlineData.data"),
        (
            {"contents": [user("x")], "generationConfig": {"maxOutputTokens": "many"}},
            "maxOutputTokens must be a number",
        ),
        ({"contents": [user("x")], "generationConfig": {"maxOutputTokens": 0}}, "at least 1"),
        ({"contents": [user("x")], "generationConfig": {"temperature": True}}, "temperature must be a number"),
        ({"contents": [user("x")], "generationConfig": {"stopSequences": "END"}}, "stopSequences"),
        ({"contents": [user("x")], "tools": {}}, "tools must be an array"),
        ({"contents": [user("x")], "tools": [{"functionDeclarations": [{"description": "x"}]}]}, ".name"),
        ({"contents": [user("x")], "systemInstruction": 5}, "systemInstruction"),
        (
            {
                "contents": [user("x")],
                "tools": [{"functionDeclarations": [{"name": "a"}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}},
            },
            "mode 'SOMETIMES' is not valid",
        ),
        (
            {
                "contents": [user("x")],
                "tools": [{"functionDeclarations": [{"name": "a"}]}],
                "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["zzz"]}},
            },
            "undeclared functions: zzz",
        ),
        ({"contents": [user("x")], "generationConfig": {"thinkingConfig": {"thinkingLevel": "max"}}}, "thinkingLevel"),
    ],
)
def test_invalid_bodies_are_400(payload: dict[str, Any], needle: str) -> None:
    # validate (every call, before routing) and to_canonical (translated calls) agree.
    for step in (FORMAT.validate, FORMAT.to_canonical):
        with pytest.raises(GatewayError) as info:
            step(payload)
        assert info.value.status == 400
        assert needle in info.value.message


def test_validate_defers_the_conversion_and_the_check_hands_it_over() -> None:
    payload = {"contents": [user("x")], "generationConfig": {"maxOutputTokens": 5}}
    assert FORMAT.validate(payload) is None  # a passthrough never converts
    FORMAT.check_translatable(payload)
    converted = FORMAT.to_canonical(payload)
    assert converted["messages"] == [{"role": "user", "content": "x"}] and converted["max_tokens"] == 5
    other = {"contents": [user("y")]}
    assert FORMAT.to_canonical(other)["messages"] == [{"role": "user", "content": "y"}]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]}, "safetySettings"),
        ({"cachedContent": "cachedContents/abc"}, "cachedContent"),
        ({"tools": [{"googleSearch": {}}]}, "tools[0].googleSearch"),
        ({"tools": [{"code_execution": {}}]}, "tools[0].codeExecution"),
        ({"generationConfig": {"candidateCount": 2}}, "candidateCount > 1"),
        ({"generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}, "responseModalities"),
        ({"generationConfig": {"responseLogprobs": True}}, "generationConfig.responseLogprobs"),
        ({"generationConfig": {"responseMimeType": "text/x.enum"}}, "text/x.enum"),
        ({"someFutureField": 1}, "someFutureField"),
    ],
)
def test_gemini_only_features_pass_validation_but_not_translation(extra: dict[str, Any], needle: str) -> None:
    payload = {"contents": [user("x")], **extra}
    FORMAT.to_canonical(payload)  # fine for a Gemini provider, which gets the body unchanged
    assert needle in rejected(payload)


def test_orphan_function_response_is_gemini_only() -> None:
    payload = {"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]}
    assert "functionResponse 'f' without a matching functionCall" in rejected(payload)


def test_model_media_parts_are_gemini_only() -> None:
    payload = {
        "contents": [
            user("draw"),
            {"role": "model", "parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]},
        ]
    }
    assert "inlineData parts in model turns" in rejected(payload)


# -- canonical -> response ---------------------------------------------------------------------


def completion(message: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage
        or {
            "prompt_tokens": 10,
            "completion_tokens": 7,
            "total_tokens": 17,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }


def test_render_text_response_with_usage() -> None:
    body = json.loads(FORMAT.render_response(completion({"role": "assistant", "content": "Hi"})))
    assert body == {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {
            "promptTokenCount": 10,
            "candidatesTokenCount": 4,
            "totalTokenCount": 17,
            "cachedContentTokenCount": 4,
            "thoughtsTokenCount": 3,
        },
        "modelVersion": "gpt-4o",
        "responseId": "abc123",
    }


def test_render_reasoning_and_tool_calls() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Thinking",
        "thinking_blocks": [{"type": "thinking", "thinking": "Thinking", "signature": "YW50aHJvcGlj"}],
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "g", "arguments": "{}"},
                "extra_content": {"google": {"thought_signature": "c2ln"}},
            },
        ],
    }
    body = json.loads(FORMAT.render_response(completion(message, "tool_calls")))
    assert body["candidates"][0]["content"]["parts"] == [
        {"text": "Thinking", "thought": True, "thoughtSignature": "YW50aHJvcGlj"},
        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "call_1"}},
        {"functionCall": {"name": "g", "args": {}, "id": "call_2"}, "thoughtSignature": "c2ln"},
    ]
    assert body["candidates"][0]["finishReason"] == "STOP"
    # Sent back by a Gemini client, the same parts give the same canonical message.
    again = canonical({"contents": [user("x"), body["candidates"][0]["content"]]})["messages"][1]
    assert again["thinking_blocks"] == message["thinking_blocks"]
    assert [c["id"] for c in again["tool_calls"]] == ["call_1", "call_2"]
    assert again["tool_calls"][1]["extra_content"] == {"google": {"thought_signature": "c2ln"}}


@pytest.mark.parametrize(
    ("finish", "expected"), [("length", "MAX_TOKENS"), ("content_filter", "SAFETY"), ("weird", "OTHER")]
)
def test_finish_reasons(finish: str, expected: str) -> None:
    body = json.loads(FORMAT.render_response(completion({"role": "assistant", "content": "x"}, finish)))
    assert body["candidates"][0]["finishReason"] == expected


# -- streams -----------------------------------------------------------------------------------


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


USAGE_CHUNK = {
    "id": "chatcmpl-s1",
    "object": "chat.completion.chunk",
    "model": "gpt-4o",
    "choices": [],
    "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
}


def strict_sse(data: bytes) -> list[dict[str, Any]]:
    """A strict parser: only `data: <json>` events, each closed by CRLF CRLF; no other lines."""
    assert data.endswith(b"\r\n\r\n")
    events = []
    for raw in data[:-4].split(b"\r\n\r\n"):
        assert raw.startswith(b"data: ") and b"\n" not in raw, raw
        events.append(json.loads(raw[6:]))
    return events


def run(encoder: GeminiStreamEncoder, chunks: list[dict[str, Any]]) -> tuple[list[bytes], bytes]:
    return [encoder.feed(c) for c in chunks], encoder.finish()


def test_stream_text_events_and_final_usage() -> None:
    pieces, tail = run(
        FORMAT.stream_encoder(model="m", request_id="r", include_usage=True),  # type: ignore[arg-type]
        [
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hel"}),
            chunk({"content": "lo"}),
            chunk({}, "stop"),
            USAGE_CHUNK,
        ],
    )
    # Nothing for the empty role chunk; each piece of text at once; the last event on usage.
    assert pieces[0] == b"" and pieces[1] and pieces[2] and pieces[3] == b"" and pieces[4]
    assert tail == b""
    events = strict_sse(b"".join(pieces))
    assert [e["candidates"][0]["content"]["parts"] for e in events] == [
        [{"text": "Hel"}],
        [{"text": "lo"}],
        [{"text": ""}],
    ]
    assert events[-1]["candidates"][0]["finishReason"] == "STOP"
    assert events[-1]["usageMetadata"] == {"promptTokenCount": 5, "candidatesTokenCount": 6, "totalTokenCount": 11}
    assert all(e["responseId"] == "s1" and e["modelVersion"] == "gpt-4o" for e in events)


def test_stream_buffers_tool_call_arguments_until_complete() -> None:
    encoder = GeminiStreamEncoder(model="m")
    first = {"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}
    second = {"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": '{"x'}}
    out = [
        encoder.feed(chunk({"tool_calls": [first]})),
        encoder.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]})),
        encoder.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Paris"}'}}]})),
        encoder.feed(chunk({"tool_calls": [second]})),
        encoder.feed(chunk({"tool_calls": [{"index": 1, "function": {"arguments": '":[1,2]}'}}]})),
        encoder.feed(chunk({}, "tool_calls")),
    ]
    assert out[:3] == [b"", b"", b""]
    assert strict_sse(out[3])[0]["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "f", "args": {"city": "Paris"}, "id": "call_a"}}
    ]
    assert out[4] == out[5] == b""
    final = strict_sse(encoder.finish())[0]
    assert final["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "g", "args": {"x": [1, 2]}, "id": "call_b"}}
    ]
    assert final["candidates"][0]["finishReason"] == "STOP"


def test_stream_reasoning_and_signatures() -> None:
    encoder = GeminiStreamEncoder(model="m")
    out = b"".join(
        [
            encoder.feed(chunk({"reasoning_content": "Hmm"})),
            encoder.feed(chunk({"thinking_signature": "c2lnLTE="})),
            encoder.feed(chunk({"content": "Answer"})),
            encoder.feed(chunk({"reasoning_content": "More"})),
            encoder.feed(chunk({"thinking_signature": "c2lnLTI="})),
            encoder.feed(
                chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]})
            ),
            encoder.feed(chunk({}, "tool_calls")),
            encoder.feed(USAGE_CHUNK),
        ]
    )
    parts = [p for e in strict_sse(out) for p in e["candidates"][0]["content"]["parts"]]
    assert parts == [
        {"text": "Hmm", "thought": True},
        {"text": "Answer", "thoughtSignature": "c2lnLTE="},
        {"text": "More", "thought": True},
        {"text": "", "thought": True, "thoughtSignature": "c2lnLTI="},
        {"functionCall": {"name": "f", "args": {}, "id": "c"}},
    ]
    assert encoder.finish() == b""


def test_stream_without_usage_finishes_on_finish() -> None:
    encoder = GeminiStreamEncoder(model="m")
    assert encoder.feed(chunk({"content": "x"}, "length"))
    final = strict_sse(encoder.finish())[0]
    assert final["candidates"][0]["finishReason"] == "MAX_TOKENS" and "usageMetadata" not in final


def test_stream_error_event_is_gemini_shaped() -> None:
    err = GatewayError(429, "slow down", retry_after=20)
    [event] = strict_sse(FORMAT.stream_error(err))
    assert event == {
        "error": {
            "code": 429,
            "message": "slow down",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"}],
        }
    }


def test_array_stream_is_one_json_array() -> None:
    encoder = ARRAY_FORMAT.stream_encoder(model="m", request_id="r", include_usage=True)
    assert isinstance(encoder, GeminiArrayEncoder)
    out = b"".join(
        [encoder.feed(chunk({"content": "a"})), encoder.feed(chunk({"content": "b"}, "stop")), encoder.finish()]
    )
    assert out.startswith(b"[{") and out.endswith(b"}]") and b",\r\n{" in out
    elements = json.loads(out)
    assert [e["candidates"][0]["content"]["parts"][0]["text"] for e in elements] == ["a", "b", ""]
    assert ARRAY_FORMAT.stream_content_type.startswith(b"application/json")


@pytest.mark.parametrize("sent", [0, 1])
def test_array_stream_failure_closes_the_array(sent: int) -> None:
    encoder = GeminiArrayEncoder(model="m")
    out = b"".join(encoder.feed(chunk({"content": "a"})) for _ in range(sent))
    out += encoder.failure("upstream died") or b""
    elements = json.loads(out)
    assert len(elements) == sent + 1
    assert elements[-1]["error"]["status"] == "UNAVAILABLE" and elements[-1]["error"]["message"] == "upstream died"


# -- errors and the model list -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ],
)
def test_error_body_status_names(status: int, name: str) -> None:
    body = json.loads(FORMAT.error_body(GatewayError(status, "boom")))
    assert body == {"error": {"code": status, "message": "boom", "status": name}}


def test_models_body_lists_routable_models() -> None:
    catalog = get_catalog()
    provider = catalog.providers["gemini"]
    cred = Credential.build(connection_id=1, provider=provider, api_key="k", base_url=provider.base_url, data={})
    members = (ComboMember(model="gemini/gemini-2.5-flash", weight=None, is_combo=False),)
    combos = {
        name: ComboEntry(id=n, name=name, strategy="priority", config={}, members=members, is_active=name == "fast")
        for n, name in enumerate(("fast", "retired"))
    }
    snap = Snapshot(version=1, catalog=catalog, keys_by_hash={}, credentials={"gemini": (cred,)}, combos=combos)
    body = json.loads(models_body(snap))
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {f"models/gemini/{m.id}" for m in provider.models} | {"models/fast"}
    assert by_name["models/fast"]["supportedGenerationMethods"] == ["generateContent", "streamGenerateContent"]
    flash = by_name["models/gemini/gemini-2.5-flash"]
    assert flash["supportedGenerationMethods"] == ["generateContent", "streamGenerateContent"]
    assert flash["inputTokenLimit"] == 1048576 and flash["baseModelId"] == "gemini/gemini-2.5-flash"
    assert by_name["models/gemini/gemini-embedding-001"]["supportedGenerationMethods"] == ["embedContent"]
    assert models_body(snap) is models_body(snap)  # built once per snapshot


def test_url_safe_inline_data_becomes_a_standard_data_url() -> None:
    """The google-genai SDK base64-encodes bytes with the URL-safe alphabet."""
    body = canonical({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "ab-_cw=="}}]}]})
    assert body["messages"][0]["content"][0]["image_url"]["url"] == "data:image/png;base64,ab+/cw=="


def test_signatures_a_gemini_client_cannot_hold_are_wrapped_and_unwrapped() -> None:
    """The SDK only takes base64 signatures and sends them back URL-safe."""
    message = {
        "role": "assistant",
        "content": "Done",
        "thinking_blocks": [{"type": "thinking", "thinking": "T", "signature": "openai-responses:eyJ4IjoxfQ=="}],
    }
    parts = json.loads(FORMAT.render_response(completion(message)))["candidates"][0]["content"]["parts"]
    wrapped = parts[1]["thoughtSignature"]
    assert wrapped != "openai-responses:eyJ4IjoxfQ==" and base64.b64decode(wrapped, validate=True)
    as_sent_back = wrapped.replace("+", "-").replace("/", "_")
    again = canonical(
        {
            "contents": [
                user("x"),
                {"role": "model", "parts": [{**parts[0]}, {**parts[1], "thoughtSignature": as_sent_back}]},
            ]
        }
    )
    assert again["messages"][1]["thinking_blocks"][0]["signature"] == "openai-responses:eyJ4IjoxfQ=="


def test_url_safe_signatures_come_back_in_the_standard_alphabet() -> None:
    body = canonical(
        {"contents": [user("x"), {"role": "model", "parts": [{"text": "a", "thoughtSignature": "ab-_cw=="}]}]}
    )
    assert body["messages"][1]["thinking_blocks"][0]["signature"] == "ab+/cw=="
