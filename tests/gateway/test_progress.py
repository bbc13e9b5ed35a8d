"""Progress events (X-OmniRoute-Progress: true) end to end: a raw SSE read sees the frames, and
the official SDKs parse the same streams without errors."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

from tests.e2e.test_openai_chat import make_connection, make_key
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e
REPLY = "one two three four five six seven eight nine ten eleven twelve"
PROGRESS = {"X-OmniRoute-Progress": "true"}


@pytest.fixture
def slow_stream(gateway: LiveGateway, fake_provider: FakeProvider, settings: Any) -> str:
    """A key, an OpenAI connection whose stream takes ~1 s, and progress every 0.1 s."""
    settings.PROGRESS_INTERVAL_MS = 100
    make_connection(fake_provider.openai_base_url)
    fake_provider.behave(Behaviour(reply=REPLY, chunk_delay=0.08))
    return make_key()


def raw_stream(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[httpx.Headers, bytes]:
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as response:
        assert response.status_code == 200, response.read()
        return response.headers, response.read()


def frames(raw: bytes) -> list[bytes]:
    return [f for f in re.split(rb"\r\n\r\n|\n\n", raw) if f]


def progress_of(frame: bytes) -> dict[str, Any] | None:
    """The progress data of a frame in any of the framings, else None."""
    if frame.startswith(b": progress "):
        return dict(json.loads(frame[len(b": progress ") :]))
    if frame.startswith(b"event: progress\ndata: "):
        return dict(json.loads(frame.split(b"data: ", 1)[1]))
    if frame.startswith(b'data: {"progress"'):
        return dict(json.loads(frame[6:])["progress"])
    return None


def check_progress(raw: bytes) -> list[dict[str, Any]]:
    """Every frame is a whole event or a progress frame; progress rises and ends with done."""
    found = []
    for frame in frames(raw):
        data = progress_of(frame)
        if data is None:
            payload = frame.split(b"data: ", 1)[1]
            if payload != b"[DONE]":
                json.loads(payload)  # a whole event, not cut by a progress frame
            continue
        found.append(data)
    assert len(found) >= 2, found
    assert [p.get("done") for p in found] == [None] * (len(found) - 1) + [True]
    elapsed = [p["elapsed_ms"] for p in found]
    tokens = [p["tokens_generated"] for p in found]
    assert elapsed == sorted(elapsed) and elapsed[0] < elapsed[-1]
    assert tokens == sorted(tokens)
    assert tokens[-1] == math.ceil(len(REPLY) / 4)
    return found


def test_openai_raw_stream_carries_progress_comments(gateway: LiveGateway, slow_stream: str) -> None:
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": True}
    headers, raw = raw_stream(
        f"{gateway.base_url}/chat/completions", body, {"Authorization": f"Bearer {slow_stream}", **PROGRESS}
    )
    assert headers["x-omniroute-progress"] == "enabled"
    check_progress(raw)
    assert raw.count(b": progress ") >= 2 and raw.endswith(b"\n\n")


def test_no_progress_without_the_header(gateway: LiveGateway, slow_stream: str) -> None:
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": True}
    headers, raw = raw_stream(f"{gateway.base_url}/chat/completions", body, {"Authorization": f"Bearer {slow_stream}"})
    assert "x-omniroute-progress" not in headers
    assert b"progress" not in raw


def test_openai_sdk_parses_a_stream_with_progress(gateway: LiveGateway, slow_stream: str) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=slow_stream, max_retries=0)
    stream = client.chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True, extra_headers=PROGRESS
    )
    chunks = list(stream)
    assert all(isinstance(c.choices, list) for c in chunks)  # no stray chunk from a progress frame
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    with client.chat.completions.stream(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "x"}], extra_headers=PROGRESS
    ) as helper:
        assert helper.get_final_completion().choices[0].message.content == REPLY


def test_responses_stream_with_progress(gateway: LiveGateway, slow_stream: str) -> None:
    client = openai.OpenAI(base_url=gateway.base_url, api_key=slow_stream, max_retries=0)
    with client.responses.stream(model="openai/gpt-4o", input="x", extra_headers=PROGRESS) as stream:
        assert all(event.type for event in stream)
        assert stream.get_final_response().output_text == REPLY
    body = {"model": "openai/gpt-4o", "input": "x", "stream": True}
    _, raw = raw_stream(f"{gateway.base_url}/responses", body, {"Authorization": f"Bearer {slow_stream}", **PROGRESS})
    assert progress_of(frames(raw)[-1]) is not None


def test_anthropic_sdk_parses_a_stream_with_progress(gateway: LiveGateway, slow_stream: str) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=slow_stream, max_retries=0)
    message = {"model": "openai/gpt-4o", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]}
    with client.messages.stream(**message, extra_headers=PROGRESS) as stream:  # type: ignore[arg-type]
        assert "".join(stream.text_stream) == REPLY
        assert stream.get_final_message().content[0].text == REPLY  # type: ignore[union-attr]
    events = list(client.messages.create(**message, stream=True, extra_headers=PROGRESS))  # type: ignore[call-overload]
    assert [e.type for e in events if e.type is not None][-1] == "message_stop"
    headers, raw = raw_stream(
        f"{gateway.url}/v1/messages", {**message, "stream": True}, {"x-api-key": slow_stream, **PROGRESS}
    )
    assert headers["x-omniroute-progress"] == "enabled"
    assert b"event: progress\ndata: " in raw
    check_progress(raw)


def test_google_genai_sdk_parses_a_stream_with_progress(gateway: LiveGateway, slow_stream: str) -> None:
    options = types.HttpOptions(base_url=gateway.url, api_version="v1beta", headers=PROGRESS)
    client = genai.Client(api_key=slow_stream, http_options=options)
    chunks = list(client.models.generate_content_stream(model="openai/gpt-4o", contents="x"))
    assert "".join(c.text or "" for c in chunks) == REPLY
    body = {"contents": [{"role": "user", "parts": [{"text": "x"}]}]}
    url = f"{gateway.url}/v1beta/models/openai/gpt-4o:streamGenerateContent?alt=sse"
    headers, raw = raw_stream(url, body, {"x-goog-api-key": slow_stream, **PROGRESS})
    assert headers["x-omniroute-progress"] == "enabled"
    check_progress(raw)


def test_ollama_stream_says_disabled(gateway: LiveGateway, slow_stream: str) -> None:
    body = {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "x"}]}
    headers, raw = raw_stream(
        f"{gateway.base_url}/api/chat", body, {"Authorization": f"Bearer {slow_stream}", **PROGRESS}
    )
    assert headers["x-omniroute-progress"] == "disabled"
    lines = [json.loads(line) for line in raw.splitlines() if line]
    assert "".join(line["message"]["content"] for line in lines) == REPLY
