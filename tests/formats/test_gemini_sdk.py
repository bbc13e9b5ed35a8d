"""The official google-genai SDK against the running gateway.

Each test runs against (a) the Gemini-format fake provider, where the gateway passes the
SDK's body and the provider's bytes through, and (b) the OpenAI-format fake provider, where
both directions are translated. Both API versions the SDK can use are exercised: v1beta and
its default v1 (`/v1/models/openai/gpt-4o:generateContent`: the SDK does not escape the slash).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from providers.models import ProviderConnection
from tests.e2e.test_openai_chat import make_key, records
from tests.fakes.anthropic_format import signature_of as anthropic_signature
from tests.fakes.gemini_format import signature_of
from tests.fakes.provider import Behaviour, FakeProvider
from tests.fakes.responses_format import encrypted_of
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather of a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


def connect(provider: str, base_url: str, *, api_key: str = "up-key", priority: int = 1) -> None:
    conn = ProviderConnection(provider=provider, name=f"{provider} {priority}", priority=priority, base_url=base_url)
    conn.set_api_key(api_key)
    conn.save()


@dataclass
class Upstream:
    kind: str  # "gemini" (passthrough) or "openai" (translated)
    model: str
    fake: FakeProvider
    key: str

    @property
    def passthrough(self) -> bool:
        return self.kind == "gemini"

    def sent(self, index: int = -1) -> dict[str, Any]:
        body = self.fake.requests[index].json
        assert isinstance(body, dict)
        return body


@pytest.fixture(params=["gemini", "openai"])
def upstream(request: pytest.FixtureRequest, gateway: LiveGateway, fake_provider: FakeProvider) -> Upstream:
    if request.param == "gemini":
        connect("gemini", fake_provider.url + "/v1beta")
        return Upstream("gemini", "gemini/gemini-2.5-flash", fake_provider, make_key())
    connect("openai", fake_provider.openai_base_url)
    return Upstream("openai", "openai/gpt-4o", fake_provider, make_key())


# A genai.Client closes its HTTP client when it is garbage collected, even while a call made
# through `client.models` is still running: keep every client of the test session alive.
_clients: list[genai.Client] = []


def client(gateway: LiveGateway, key: str, api_version: str | None = "v1beta") -> genai.Client:
    if api_version is None:  # the SDK's default: v1
        options = types.HttpOptions(base_url=gateway.url)
    else:
        options = types.HttpOptions(base_url=gateway.url, api_version=api_version)
    _clients.append(genai.Client(api_key=key, http_options=options))
    return _clients[-1]


def openai_completion(message: dict[str, Any], finish: str = "stop", **usage: int) -> bytes:
    body = {
        "id": "chatcmpl-raw1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14, **usage},
    }
    return json.dumps(body).encode()


def openai_stream(*deltas: dict[str, Any], finish: str = "stop") -> bytes:
    def chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        body = {"id": "chatcmpl-raw2", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
        body |= {"choices": choices, "usage": usage}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    events = [chunk([{"index": 0, "delta": d, "finish_reason": None}]) for d in deltas]
    events.append(chunk([{"index": 0, "delta": {}, "finish_reason": finish}]))
    events.append(chunk([], {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}))
    return b"".join(events) + b"data: [DONE]\n\n"


# -- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", ["v1beta", None])
def test_generate_content(gateway: LiveGateway, upstream: Upstream, api_version: str | None) -> None:
    upstream.fake.behave(Behaviour(reply="Hello there", prompt_tokens=11, completion_tokens=3, cached_tokens=4))
    config = types.GenerateContentConfig(
        system_instruction="Be brief.", max_output_tokens=50, temperature=0.2, stop_sequences=["END"]
    )

    response = client(gateway, upstream.key, api_version).models.generate_content(
        model=upstream.model, contents="Hi", config=config
    )

    assert response.text == "Hello there"
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.cached_content_token_count) == (11, 3, 4)
    assert usage.total_token_count == 14
    assert response.sdk_http_response and response.sdk_http_response.headers
    assert response.sdk_http_response.headers["x-omniroute-provider"] == upstream.kind
    sent, request = upstream.sent(), upstream.fake.requests[-1]
    if upstream.passthrough:
        assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert request.headers["x-goog-api-key"] == "up-key"
        assert sent == {
            "contents": [{"parts": [{"text": "Hi"}], "role": "user"}],
            "systemInstruction": {"parts": [{"text": "Be brief."}], "role": "user"},
            "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2, "stopSequences": ["END"]},
        }
    else:
        assert request.headers["authorization"] == "Bearer up-key"
        assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
        assert (sent["max_tokens"], sent["temperature"], sent["stop"]) == (50, 0.2, ["END"])
    [rec] = records(gateway)
    assert (rec.provider, rec.status_code, rec.stream) == (upstream.kind, 200, False)
    assert (rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens) == (11, 3, 4)


@pytest.mark.parametrize("api_version", ["v1beta", None])
def test_generate_content_stream(gateway: LiveGateway, upstream: Upstream, api_version: str | None) -> None:
    upstream.fake.behave(Behaviour(reply="one two three four", prompt_tokens=5, completion_tokens=4))

    chunks = list(
        client(gateway, upstream.key, api_version).models.generate_content_stream(
            model=upstream.model, contents="Count"
        )
    )

    assert "".join(c.text or "" for c in chunks) == "one two three four"
    assert len(chunks) >= 4  # streamed piece by piece, not buffered into one answer
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata and last.usage_metadata.prompt_token_count == 5
    assert last.usage_metadata.candidates_token_count == 4
    request = upstream.fake.requests[-1]
    if upstream.passthrough:
        assert request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
        assert request.query == {"alt": "sse"}
    else:
        assert upstream.sent()["stream"] is True
    [rec] = records(gateway)
    assert rec.stream and (rec.prompt_tokens, rec.completion_tokens) == (5, 4)


# -- tools -------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_function_calling_round_trip(gateway: LiveGateway, upstream: Upstream, stream: bool) -> None:
    genai_client = client(gateway, upstream.key)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], automatic_function_calling=NO_AFC
    )
    upstream.fake.behave(Behaviour(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]), times=1)
    question = types.Content(role="user", parts=[types.Part.from_text(text="Weather in Paris?")])

    if stream:
        chunks = list(
            genai_client.models.generate_content_stream(model=upstream.model, contents=[question], config=config)
        )
        parts = [
            p for c in chunks if c.candidates and c.candidates[0].content for p in c.candidates[0].content.parts or []
        ]
        calls = [p.function_call for p in parts if p.function_call]
        model_turn = types.Content(role="model", parts=[p for p in parts if p.function_call])
    else:
        first = genai_client.models.generate_content(model=upstream.model, contents=[question], config=config)
        calls = first.function_calls or []
        assert first.candidates and first.candidates[0].content
        model_turn = first.candidates[0].content

    # Gemini sends a function call whole: the streamed argument pieces were put back together.
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"})]
    answer = types.Part.from_function_response(name="get_weather", response={"temp": 21})
    upstream.fake.behave(Behaviour(reply="It is 21 degrees."))
    second = genai_client.models.generate_content(
        model=upstream.model,
        contents=[question, model_turn, types.Content(role="user", parts=[answer])],
        config=config,
    )

    assert second.text == "It is 21 degrees."
    sent = upstream.sent()
    if upstream.passthrough:
        assert sent["contents"][1]["parts"][0]["functionCall"] == {"name": "get_weather", "args": {"city": "Paris"}}
        assert sent["contents"][2]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]
        assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    else:
        assistant, tool = sent["messages"][1], sent["messages"][2]
        assert assistant["tool_calls"] == [
            {
                "id": "call_fake0",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ]
        assert tool == {"role": "tool", "tool_call_id": "call_fake0", "content": '{"temp":21}'}
        assert sent["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather of a city",
                    "parameters": WEATHER.parameters_json_schema,
                },
            }
        ]


def test_automatic_function_calling(gateway: LiveGateway, upstream: Upstream) -> None:
    """The SDK's own loop: it calls the Python function and sends its result back."""
    calls: list[str] = []

    def get_weather(city: str) -> str:
        """Current weather of a city."""
        calls.append(city)
        return f"sunny in {city}"

    upstream.fake.behave(Behaviour(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}]), times=1)
    upstream.fake.behave(Behaviour(reply="Rome is sunny."))

    response = client(gateway, upstream.key).models.generate_content(
        model=upstream.model, contents="Weather in Rome?", config=types.GenerateContentConfig(tools=[get_weather])
    )

    assert response.text == "Rome is sunny." and calls == ["Rome"]
    sent = upstream.sent()
    if upstream.passthrough:
        assert sent["contents"][-1]["parts"][0]["functionResponse"]["response"] == {"result": "sunny in Rome"}
    else:
        assert sent["messages"][-1] == {
            "role": "tool",
            "tool_call_id": "call_fake0",
            "content": '{"result":"sunny in Rome"}',
        }


def test_thought_signatures_survive_the_next_turn_passthrough(
    gateway: LiveGateway, fake_provider: FakeProvider
) -> None:
    connect("gemini", fake_provider.url + "/v1beta")
    chat = client(gateway, make_key()).chats.create(
        model="gemini/gemini-2.5-flash",
        config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[WEATHER])],
            automatic_function_calling=NO_AFC,
            thinking_config=types.ThinkingConfig(include_thoughts=True),
        ),
    )
    thinking = "The user wants weather; call the tool."
    fake_provider.behave(
        Behaviour(thinking=thinking, tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]), times=1
    )

    first = chat.send_message("Weather in Oslo?")

    assert first.candidates and first.candidates[0].content and first.candidates[0].content.parts
    thought, call = first.candidates[0].content.parts
    assert thought.thought is True and thought.text == thinking
    signature = signature_of(thinking + 'get_weather{"city":"Oslo"}')
    assert call.function_call and call.thought_signature == base64.urlsafe_b64decode(signature)
    fake_provider.behave(Behaviour(reply="Cold."))
    chat.send_message(types.Part.from_function_response(name="get_weather", response={"temp": -3}))

    model_turn = fake_provider.requests[-1].json["contents"][1]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][1]["thoughtSignature"] == signature
    assert model_turn["parts"][1]["functionCall"]["name"] == "get_weather"


def test_thought_signatures_survive_the_next_turn_translated(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect("openai", fake_provider.openai_base_url)
    genai_client = client(gateway, make_key())
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], automatic_function_calling=NO_AFC
    )
    tool_call = {
        "id": "call_sig1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        "extra_content": {"google": {"thought_signature": "c2lnLWZyb20tZ2VtaW5p"}},
    }
    fake_provider.behave(
        Behaviour(
            body=openai_completion(
                {"content": None, "reasoning_content": "Use the tool.", "tool_calls": [tool_call]}, "tool_calls"
            )
        ),
        times=1,
    )

    first = genai_client.models.generate_content(model="openai/gpt-4o", contents="Weather in Oslo?", config=config)

    assert first.candidates and first.candidates[0].content and first.candidates[0].content.parts
    thought, call = first.candidates[0].content.parts
    assert thought.thought and thought.text == "Use the tool."
    assert call.function_call and call.function_call.id == "call_sig1"
    assert call.thought_signature == b"sig-from-gemini"
    fake_provider.behave(Behaviour(reply="Cold."))
    genai_client.models.generate_content(
        model="openai/gpt-4o",
        contents=[
            types.Content(role="user", parts=[types.Part.from_text(text="Weather in Oslo?")]),
            first.candidates[0].content,
            types.Content(
                role="user", parts=[types.Part.from_function_response(name="get_weather", response={"t": -3})]
            ),
        ],
        config=config,
    )

    assistant = fake_provider.requests[-1].json["messages"][1]
    assert assistant["tool_calls"][0]["id"] == "call_sig1"
    assert assistant["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "c2lnLWZyb20tZ2VtaW5p"}}
    assert assistant["reasoning_content"] == "Use the tool."


# -- images, JSON, reasoning -------------------------------------------------------------------


def test_image_input_inline_bytes(gateway: LiveGateway, upstream: Upstream) -> None:
    upstream.fake.behave(Behaviour(reply="A red pixel."))

    response = client(gateway, upstream.key).models.generate_content(
        model=upstream.model, contents=[types.Part.from_bytes(data=PNG, mime_type="image/png"), "What is this?"]
    )

    assert response.text == "A red pixel."
    data = base64.b64encode(PNG).decode()
    if upstream.passthrough:
        parts = upstream.sent()["contents"][0]["parts"]
        # The SDK sends URL-safe base64; the Gemini provider gets it untouched.
        urlsafe = base64.urlsafe_b64encode(PNG).decode()
        assert parts == [{"inlineData": {"data": urlsafe, "mime_type": "image/png"}}, {"text": "What is this?"}]
    else:
        assert upstream.sent()["messages"] == [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ]


class Recipe(BaseModel):
    name: str
    minutes: int


def test_json_response_schema(gateway: LiveGateway, upstream: Upstream) -> None:
    upstream.fake.behave(Behaviour(reply='{"name": "Soup", "minutes": 20}'))
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=Recipe)

    response = client(gateway, upstream.key).models.generate_content(
        model=upstream.model, contents="A quick recipe", config=config
    )

    assert isinstance(response.parsed, Recipe) and response.parsed == Recipe(name="Soup", minutes=20)
    if upstream.passthrough:
        generation = upstream.sent()["generationConfig"]
        assert generation["responseMimeType"] == "application/json"
        assert "responseSchema" in generation or "responseJsonSchema" in generation
    else:
        fmt = upstream.sent()["response_format"]
        assert fmt["type"] == "json_schema"
        schema = fmt["json_schema"]["schema"]
        assert schema["type"] == "object" and set(schema["properties"]) == {"name", "minutes"}
        assert schema["properties"]["minutes"]["type"] == "integer"


def test_reasoning_passthrough(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect("gemini", fake_provider.url + "/v1beta")
    fake_provider.behave(Behaviour(thinking="Six times seven.", reply="42", reasoning_tokens=7))
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
    )

    response = client(gateway, make_key()).models.generate_content(
        model="gemini/gemini-2.5-flash", contents="6*7?", config=config
    )

    assert response.candidates and response.candidates[0].content and response.candidates[0].content.parts
    thought, answer = response.candidates[0].content.parts
    assert (thought.thought, thought.text, answer.text) == (True, "Six times seven.", "42")
    assert answer.thought_signature and response.text == "42"
    assert response.usage_metadata and response.usage_metadata.thoughts_token_count == 7
    assert fake_provider.requests[-1].json["generationConfig"]["thinkingConfig"] == {
        "include_thoughts": True,
        "thinking_budget": 1024,
    }
    [rec] = records(gateway)
    assert rec.reasoning_tokens == 7


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_translated(gateway: LiveGateway, fake_provider: FakeProvider, stream: bool) -> None:
    connect("openai", fake_provider.openai_base_url)
    if stream:
        body = openai_stream(
            {"role": "assistant", "reasoning_content": "Six "}, {"reasoning_content": "sevens."}, {"content": "42"}
        )
    else:
        details = {"completion_tokens_details": {"reasoning_tokens": 3}}
        body = openai_completion({"content": "42", "reasoning_content": "Six sevens."}, **{})
        body = body.replace(b'"total_tokens": 14', b'"total_tokens": 14, ' + json.dumps(details)[1:-1].encode())
    fake_provider.behave(Behaviour(body=body))
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW))
    genai_client = client(gateway, make_key())

    if stream:
        chunks = list(
            genai_client.models.generate_content_stream(model="openai/gpt-4o", contents="6*7?", config=config)
        )
        parts = [
            p for c in chunks if c.candidates and c.candidates[0].content for p in c.candidates[0].content.parts or []
        ]
    else:
        response = genai_client.models.generate_content(model="openai/gpt-4o", contents="6*7?", config=config)
        assert response.candidates and response.candidates[0].content
        parts = response.candidates[0].content.parts or []
        assert response.usage_metadata and response.usage_metadata.thoughts_token_count == 3

    assert "".join(p.text or "" for p in parts if p.thought) == "Six sevens."
    assert "".join(p.text or "" for p in parts if not p.thought) == "42"
    assert fake_provider.requests[-1].json["reasoning_effort"] == "low"


# -- models ------------------------------------------------------------------------------------


@pytest.mark.parametrize("api_version", ["v1beta", None])
def test_models_list(gateway: LiveGateway, fake_provider: FakeProvider, api_version: str | None) -> None:
    connect("gemini", fake_provider.url + "/v1beta")
    connect("openai", fake_provider.openai_base_url)
    genai_client = client(gateway, make_key(), api_version)

    models = {m.name or "": m for m in genai_client.models.list()}

    assert "models/gemini/gemini-2.5-flash" in models and "models/openai/gpt-4o" in models
    assert not any(name.startswith("models/anthropic/") for name in models)  # no connection, not routable
    assert models["models/openai/gpt-4o"].supported_actions == ["generateContent", "streamGenerateContent"]
    # A listed name is a usable model name.
    fake_provider.behave(Behaviour(reply="ok"))
    assert genai_client.models.generate_content(model="models/openai/gpt-4o", contents="x").text == "ok"


# -- errors ------------------------------------------------------------------------------------


def test_upstream_429_keeps_retry_info(gateway: LiveGateway, upstream: Upstream) -> None:
    headers = {} if upstream.passthrough else {"retry-after": "20"}
    upstream.fake.behave(Behaviour(status=429, headers=headers))

    with pytest.raises(errors.ClientError) as info:
        client(gateway, upstream.key).models.generate_content(model=upstream.model, contents="x")

    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert info.value.details["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"}
    ]


def test_error_mid_stream_reaches_the_sdk(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect("gemini", fake_provider.url + "/v1beta")
    ok = {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}]}
    failed = {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in (ok, failed))
    fake_provider.behave(Behaviour(body=body))

    received = []
    with pytest.raises(errors.APIError) as info:
        for chunk in client(gateway, make_key()).models.generate_content_stream(
            model="gemini/gemini-2.5-flash", contents="x"
        ):
            received.append(chunk.text)

    assert received == ["Hel"]
    assert "Internal error encountered." in str(info.value.message)


def raw_post(gateway: LiveGateway, path: str, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(gateway.url + path, content=content, headers={"content-type": "application/json", **headers})


@pytest.mark.parametrize(
    ("body", "status", "name", "needle"),
    [
        (b"{nope", 400, "INVALID_ARGUMENT", "Invalid JSON"),
        ({"contents": []}, 400, "INVALID_ARGUMENT", "contents must be a non-empty array"),
        ({}, 400, "INVALID_ARGUMENT", "contents is not specified"),
        ({"contents": [{"parts": [{"text": 1}]}]}, 400, "INVALID_ARGUMENT", "text must be a string"),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": "x"}},
            400,
            "INVALID_ARGUMENT",
            "maxOutputTokens",
        ),
    ],
)
def test_bad_input_gets_gemini_errors(
    gateway: LiveGateway, upstream: Upstream, body: Any, status: int, name: str, needle: str
) -> None:
    response = raw_post(
        gateway, f"/v1beta/models/{upstream.model}:generateContent", body, **{"x-goog-api-key": upstream.key}
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (status, name) and needle in error["message"]
    assert upstream.fake.requests == []


def test_auth_and_model_errors(gateway: LiveGateway, upstream: Upstream) -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    bad_key = raw_post(gateway, f"/v1beta/models/{upstream.model}:generateContent", body, **{"x-goog-api-key": "nope"})
    assert bad_key.status_code == 401 and bad_key.json()["error"]["status"] == "UNAUTHENTICATED"
    unknown = raw_post(gateway, "/v1beta/models/nosuch/model:generateContent?key=" + upstream.key, body)
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == "NOT_FOUND"
    upstream.fake.behave(Behaviour(reply="by query key"))
    by_query = raw_post(gateway, f"/v1beta/models/{upstream.model}:generateContent?key={upstream.key}", body)
    assert (
        by_query.status_code == 200
        and by_query.json()["candidates"][0]["content"]["parts"][0]["text"] == "by query key"
    )


def test_gemini_only_features(gateway: LiveGateway, upstream: Upstream) -> None:
    config = types.GenerateContentConfig(
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT, threshold=types.HarmBlockThreshold.BLOCK_NONE
            )
        ]
    )
    upstream.fake.behave(Behaviour(reply="fine"))
    call = client(gateway, upstream.key).models.generate_content
    if upstream.passthrough:
        assert call(model=upstream.model, contents="x", config=config).text == "fine"
        assert upstream.sent()["safetySettings"] == [
            {"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}
        ]
        return
    with pytest.raises(errors.ClientError) as info:
        call(model=upstream.model, contents="x", config=config)
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert "safetySettings" in str(info.value.message)
    assert upstream.fake.requests == []


# -- stream framing ----------------------------------------------------------------------------


def strict_sse(data: bytes) -> list[dict[str, Any]]:
    """Only `data: <json>` events closed by CRLF CRLF: no comments, no event names, no [DONE]."""
    assert data.endswith(b"\r\n\r\n"), data[-20:]
    events = []
    for raw in data[:-4].split(b"\r\n\r\n"):
        assert raw.startswith(b"data: ") and b"\n" not in raw, raw
        events.append(json.loads(raw[6:]))
    return events


def test_sse_framing_is_strict(gateway: LiveGateway, upstream: Upstream) -> None:
    upstream.fake.behave(Behaviour(reply="a b c", tool_calls=[{"name": "f", "arguments": {"x": 1}}]))
    body = {"contents": [{"role": "user", "parts": [{"text": "go"}]}]}
    headers = {"x-goog-api-key": upstream.key, "content-type": "application/json"}
    url = f"{gateway.url}/v1beta/models/{upstream.model}:streamGenerateContent?alt=sse"

    with httpx.stream("POST", url, json=body, headers=headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        data = response.read()

    events = strict_sse(data)
    parts = [p for e in events for p in e["candidates"][0]["content"]["parts"]]
    assert "".join(p.get("text", "") for p in parts) == "a b c"
    assert [p["functionCall"]["args"] for p in parts if "functionCall" in p] == [{"x": 1}]
    assert [e["candidates"][0].get("finishReason") for e in events].count("STOP") == 1
    assert events[-1]["candidates"][0]["finishReason"] == "STOP" and events[-1]["usageMetadata"]


def test_stream_without_alt_sse_is_a_json_array(gateway: LiveGateway, upstream: Upstream) -> None:
    upstream.fake.behave(Behaviour(reply="x y z"))
    body = {"contents": [{"role": "user", "parts": [{"text": "go"}]}]}
    url = f"{gateway.url}/v1beta/models/{upstream.model}:streamGenerateContent"

    response = httpx.post(url, json=body, headers={"x-goog-api-key": upstream.key})

    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    elements = response.json()
    assert isinstance(elements, list) and len(elements) >= 3
    assert "".join(p.get("text", "") for e in elements for p in e["candidates"][0]["content"]["parts"]) == "x y z"
    assert elements[-1]["candidates"][0]["finishReason"] == "STOP" and "usageMetadata" in elements[-1]
    assert upstream.fake.requests[-1].query.get("alt") == ("sse" if upstream.passthrough else None)


# -- other provider formats --------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["anthropic", "openai-responses"])
def test_reasoning_state_of_other_providers_survives_a_gemini_client(
    gateway: LiveGateway, fake_provider: FakeProvider, kind: str, stream: bool
) -> None:
    """An Anthropic thinking signature or a Responses encrypted reasoning item travels to the
    Gemini client as a thoughtSignature (the SDK keeps it as bytes and re-encodes it URL-safe)
    and comes back to its provider exactly as issued."""
    connect(kind, fake_provider.url + "/v1")
    model = "anthropic/claude-sonnet-4-5" if kind == "anthropic" else "openai-responses/gpt-5"
    genai_client = client(gateway, make_key())
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])],
        automatic_function_calling=NO_AFC,
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=2048),
    )
    thinking = "Need the weather."
    fake_provider.behave(
        Behaviour(thinking=thinking, tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]), times=1
    )
    question = types.Content(role="user", parts=[types.Part.from_text(text="Weather?")])

    if stream:
        chunks = list(genai_client.models.generate_content_stream(model=model, contents=[question], config=config))
        parts = [
            p for c in chunks if c.candidates and c.candidates[0].content for p in c.candidates[0].content.parts or []
        ]
    else:
        first = genai_client.models.generate_content(model=model, contents=[question], config=config)
        assert first.candidates and first.candidates[0].content
        parts = first.candidates[0].content.parts or []
    assert "".join(p.text or "" for p in parts if p.thought) == thinking
    assert any(p.thought_signature for p in parts)
    fake_provider.behave(Behaviour(reply="Cold."))
    answer = types.Part.from_function_response(name="get_weather", response={"t": -3})
    second = genai_client.models.generate_content(
        model=model,
        contents=[question, types.Content(role="model", parts=parts), types.Content(role="user", parts=[answer])],
        config=config,
    )

    assert second.text == "Cold."
    sent = fake_provider.requests[-1].json
    if kind == "anthropic":
        assert sent["messages"][1]["content"][0] == {
            "type": "thinking",
            "thinking": thinking,
            "signature": anthropic_signature(thinking),
        }
    else:
        reasoning = next(item for item in sent["input"] if item["type"] == "reasoning")
        assert reasoning["encrypted_content"] == encrypted_of(thinking)
        assert reasoning["summary"] == [{"type": "summary_text", "text": thinking}]
