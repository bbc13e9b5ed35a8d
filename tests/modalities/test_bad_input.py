"""Bad input on the non-chat endpoints: a 4xx in the OpenAI error shape naming the problem, never a 500,
and nothing sent upstream."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fakes.provider import FakeProvider
from tests.live_server import LiveGateway

from .helpers import connect, make_key, records, wav_bytes

pytestmark = pytest.mark.e2e


def check(resp: httpx.Response, status: int, needle: str) -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert needle in error["message"]
    assert error["type"] == "invalid_request_error"
    assert resp.headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"model": "openai/text-embedding-3-small"}, 400, "Missing required field 'input'"),
        ({"model": "openai/text-embedding-3-small", "input": ""}, 400, "must not be an empty string"),
        ({"model": "openai/text-embedding-3-small", "input": []}, 400, "non-empty string, array of strings"),
        ({"model": "openai/text-embedding-3-small", "input": ["a", ""]}, 400, "must not contain empty strings"),
        ({"model": "openai/text-embedding-3-small", "input": 5}, 400, "'input' must be a non-empty string"),
        ({"model": "openai/text-embedding-3-small", "input": ["a", 1]}, 400, "no mixing"),
        ({"model": "openai/text-embedding-3-small", "input": [[1], []]}, 400, "no mixing, no empty items"),
        ({"input": "x"}, 400, "Missing required field 'model'"),
        ({"model": 3, "input": "x"}, 400, "'model' must be a non-empty string"),
        ({"model": "openai/text-embedding-3-small", "input": "x", "dimensions": 0}, 400, "'dimensions' must be"),
        ({"model": "openai/text-embedding-3-small", "input": "x", "dimensions": "8"}, 400, "'dimensions' must be"),
        ({"model": "openai/text-embedding-3-small", "input": "x", "dimensions": 5000}, 400, "exceeds the 1536"),
        ({"model": "openai/text-embedding-3-small", "input": "x", "encoding_format": "hex"}, 400, "float, base64"),
        ({"model": "openai/gpt-4o", "input": "x"}, 400, "is a chat model; this endpoint needs an embedding model"),
        ({"model": "openai/dall-e-3", "input": "x"}, 400, "is a image model"),
        ({"model": "anthropic/claude-x", "input": "x"}, 400, "serves no embedding models"),
        ({"model": "no-such-embedder", "input": "x"}, 404, "Unknown model"),
        ({"model": "nosuch/model", "input": "x"}, 404, "Unknown provider 'nosuch'"),
        ({"model": "together/BAAI/bge-base-en-v1.5", "input": [1, 2]}, 400, "Token-array input is not supported"),
        (
            {"model": "together/BAAI/bge-base-en-v1.5", "input": "x", "dimensions": 8},
            400,
            "'dimensions' is not supported",
        ),
        ({"model": "gemini/gemini-embedding-001", "input": ["x"] * 101}, 400, "More than 100 inputs is not supported"),
    ],
)
def test_bad_embeddings(
    gateway: LiveGateway, fake_provider: FakeProvider, body: object, status: int, needle: str
) -> None:
    connect(fake_provider, "openai")
    connect(fake_provider, "together")
    connect(fake_provider, "gemini")
    key = make_key()
    resp = httpx.post(f"{gateway.base_url}/embeddings", json=body, headers={"Authorization": f"Bearer {key}"})
    check(resp, status, needle)
    assert fake_provider.requests == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": "openai/dall-e-3"}, "Missing required field 'prompt'"),
        ({"model": "openai/dall-e-3", "prompt": "  "}, "'prompt' must be a non-empty string"),
        ({"model": "openai/dall-e-3", "prompt": "p", "n": 0}, "'n' must be an integer from 1 to 10"),
        ({"model": "openai/dall-e-3", "prompt": "p", "n": True}, "'n' must be an integer"),
        ({"model": "openai/dall-e-3", "prompt": "p", "size": "big"}, "'size' must be WIDTHxHEIGHT"),
        ({"model": "openai/dall-e-3", "prompt": "p", "response_format": "png"}, "url, b64_json"),
        ({"model": "openai/dall-e-3", "prompt": "p", "quality": 1}, "'quality' must be a string"),
        ({"model": "openai/text-embedding-3-small", "prompt": "p"}, "needs an image model"),
    ],
)
def test_bad_images(gateway: LiveGateway, fake_provider: FakeProvider, body: object, needle: str) -> None:
    connect(fake_provider, "openai")
    key = make_key()
    resp = httpx.post(f"{gateway.base_url}/images/generations", json=body, headers={"Authorization": f"Bearer {key}"})
    check(resp, 400, needle)
    assert fake_provider.requests == []


def upload(gateway: LiveGateway, key: str, data: dict[str, str], files: dict[str, object] | None) -> httpx.Response:
    return httpx.post(
        f"{gateway.base_url}/audio/transcriptions",
        headers={"Authorization": f"Bearer {key}"},
        data=data,
        files=files,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("data", "files", "needle"),
    [
        (
            {"model": "openai/whisper-1"},
            {"file": ("x.mp3", b"this is not audio at all", "audio/mpeg")},
            "x.mp3' is not audio",
        ),
        (
            {"model": "openai/whisper-1"},
            {"file": ("x.mp3", b"%PDF-1.7 fake pdf......", "audio/mpeg")},
            "not recognised",
        ),
        ({"model": "openai/whisper-1"}, {"file": ("x.wav", b"", "audio/wav")}, "Field 'file' is empty"),
        (
            {"model": "openai/whisper-1"},
            {"other": ("x.wav", wav_bytes(0.1), "audio/wav")},
            "Missing required field 'file'",
        ),
        ({}, {"file": ("x.wav", wav_bytes(0.1), "audio/wav")}, "Missing required field 'model'"),
        (
            {"model": "openai/gpt-4o"},
            {"file": ("x.wav", wav_bytes(0.1), "audio/wav")},
            "needs an audio (transcription) model",
        ),
        (
            {"model": "openai/whisper-1", "response_format": "docx"},
            {"file": ("x.wav", wav_bytes(0.1), "audio/wav")},
            "'response_format' must be one of json, text",
        ),
    ],
)
def test_bad_uploads(
    gateway: LiveGateway, fake_provider: FakeProvider, data: dict[str, str], files: dict[str, object], needle: str
) -> None:
    connect(fake_provider, "openai")
    key = make_key()
    check(upload(gateway, key, data, files), 400, needle)
    assert fake_provider.requests == []


def test_not_multipart(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    key = make_key()
    resp = httpx.post(
        f"{gateway.base_url}/audio/transcriptions",
        content=json.dumps({"model": "openai/whisper-1"}),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    check(resp, 400, "Expected a multipart/form-data body")


def test_truncated_multipart(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    key = make_key()
    body = b'--XX\r\nContent-Disposition: form-data; name="model"\r\n\r\nopenai/whisper-1\r\n--XX\r\nContent-Dispo'
    resp = httpx.post(
        f"{gateway.base_url}/audio/transcriptions",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "multipart/form-data; boundary=XX"},
    )
    check(resp, 400, "Invalid multipart form data")


@pytest.mark.parametrize("declared", [True, False])
def test_oversized_upload_is_413(
    gateway: LiveGateway, fake_provider: FakeProvider, settings: object, declared: bool
) -> None:
    settings.MAX_UPLOAD_BYTES = 64 * 1024  # type: ignore[attr-defined]
    connect(fake_provider, "openai")
    key = make_key()
    audio = wav_bytes(10.0)  # 160 KB
    if declared:
        resp = upload(gateway, key, {"model": "openai/whisper-1"}, {"file": ("big.wav", audio, "audio/wav")})
    else:  # chunked, no Content-Length: the limit is enforced while reading
        boundary = b"BND"
        head = b'--BND\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'

        def chunks() -> object:
            yield head
            for start in range(0, len(audio), 16384):
                yield audio[start : start + 16384]
            yield b"\r\n--BND--\r\n"

        resp = httpx.post(
            f"{gateway.base_url}/audio/transcriptions",
            content=chunks(),  # type: ignore[arg-type]
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": f"multipart/form-data; boundary={boundary.decode()}",
            },
        )
    check(resp, 413, "Upload too large. Maximum allowed: 0.0625 MB")
    assert fake_provider.requests == []
    [rec] = records(gateway)
    assert rec.status_code == 413


def test_listing_needs_a_valid_key_when_one_is_presented(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    resp = httpx.get(f"{gateway.base_url}/embeddings", headers={"Authorization": "Bearer sk-wrong"})
    assert resp.status_code == 401


def test_chat_with_a_transcription_only_provider(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "deepgram")
    key = make_key()
    resp = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "deepgram/nova-3", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    check(resp, 400, "Provider 'deepgram' serves no chat models; use /v1/audio/transcriptions")
