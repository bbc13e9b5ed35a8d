"""POST /v1/audio/transcriptions end to end with the openai SDK: OpenAI-format providers,
Deepgram and AssemblyAI (async polling), the response formats, fallback."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.fakes.media_format import form_of
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway

from .helpers import client, combo, connect, make_key, records, wav_bytes

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _fast_polling(settings: Any) -> None:
    settings.TRANSCRIPTION_POLL_INTERVAL = 0.01


def transcribe(gateway: LiveGateway, key: str, model: str, **kw: object) -> Any:
    create: Any = client(gateway, key).audio.transcriptions.create
    return create(model=model, file=("clip.wav", wav_bytes(1.5), "audio/wav"), **kw)


@pytest.mark.parametrize(
    ("provider", "model"),
    [("openai", "whisper-1"), ("groq", "whisper-large-v3"), ("deepgram", "nova-3"), ("assemblyai", "best")],
)
def test_transcription_per_provider(
    gateway: LiveGateway, fake_provider: FakeProvider, provider: str, model: str
) -> None:
    connect(fake_provider, provider, key="up-key")
    key = make_key()

    resp = httpx.post(
        f"{gateway.base_url}/audio/transcriptions",
        headers={"Authorization": f"Bearer {key}"},
        data={"model": f"{provider}/{model}", "language": "en"},
        files={"file": ("clip.wav", wav_bytes(1.5), "audio/wav")},
    )

    assert resp.status_code == 200, resp.text
    assert resp.json() == {"text": f"Hello from {model}!", "task": "transcribe", "language": "en", "duration": 1.5}
    assert resp.headers["x-omniroute-provider"] == provider
    [rec] = records(gateway)
    assert (rec.provider, rec.model, rec.status_code, rec.endpoint) == (
        provider,
        model,
        200,
        "/v1/audio/transcriptions",
    )
    assert rec.audio_seconds == pytest.approx(1.5)
    assert float(rec.cost_usd) > 0


def test_openai_sdk_json_and_text(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    key = make_key()

    as_json = transcribe(gateway, key, "openai/whisper-1")
    as_text = transcribe(gateway, key, "openai/whisper-1", response_format="text")

    assert as_json.text == "Hello from whisper-1!"
    assert as_text == "Hello from whisper-1!"
    form = form_of(fake_provider.requests[0])
    # Whisper is asked for verbose_json (duration, segments) whatever the client wants.
    assert form["response_format"][1] == b"verbose_json"
    assert form["file"] == ("clip.wav", wav_bytes(1.5))


@pytest.mark.parametrize("provider", ["openai", "deepgram", "assemblyai"])
def test_segments_as_verbose_json_srt_vtt(gateway: LiveGateway, fake_provider: FakeProvider, provider: str) -> None:
    model = {"openai": "whisper-1", "deepgram": "nova-3", "assemblyai": "best"}[provider]
    connect(fake_provider, provider)
    key = make_key()
    fake_provider.behave(Behaviour(reply="One two."))

    verbose = transcribe(gateway, key, f"{provider}/{model}", response_format="verbose_json")
    srt = transcribe(gateway, key, f"{provider}/{model}", response_format="srt")
    vtt = transcribe(gateway, key, f"{provider}/{model}", response_format="vtt")

    assert verbose.segments[0].text == "One two."
    assert verbose.segments[0].end == pytest.approx(1.5)
    assert srt == "1\n00:00:00,000 --> 00:00:01,500\nOne two.\n"
    assert vtt == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nOne two.\n"


def test_gpt_4o_transcribe_has_no_segments(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "openai")
    key = make_key()

    plain = transcribe(gateway, key, "openai/gpt-4o-mini-transcribe")
    assert plain.text == "Hello from gpt-4o-mini-transcribe!"
    with pytest.raises(openai.BadRequestError, match=r"Segments .* not supported by openai/gpt-4o-mini-transcribe"):
        transcribe(gateway, key, "openai/gpt-4o-mini-transcribe", response_format="srt")


def test_deepgram_wire(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "deepgram", key="dg-secret")
    key = make_key()

    result = transcribe(gateway, key, "deepgram/nova-3")

    assert result.text == "Hello from nova-3!"
    sent = fake_provider.requests[-1]
    assert sent.path == "/v1/listen"
    assert sent.query == {"model": "nova-3", "smart_format": "true", "detect_language": "true"}
    assert sent.headers["authorization"] == "Token dg-secret"
    assert sent.headers["content-type"] == "audio/wav"
    assert sent.body == wav_bytes(1.5)


def test_assemblyai_upload_submit_poll(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "assemblyai", key="aai-secret")
    key = make_key()

    result = transcribe(gateway, key, "assemblyai/best")

    assert result.text == "Hello from best!"
    calls = [(r.method, r.path.rsplit("/", 1)[0] if r.method == "GET" else r.path) for r in fake_provider.requests]
    assert calls == [
        ("POST", "/v2/upload"),
        ("POST", "/v2/transcript"),
        ("GET", "/v2/transcript"),  # processing
        ("GET", "/v2/transcript"),  # completed
    ]
    assert all(r.headers["authorization"] == "aai-secret" for r in fake_provider.requests)
    assert fake_provider.requests[0].body == wav_bytes(1.5)
    assert fake_provider.requests[1].json["speech_model"] == "best"


def test_assemblyai_falls_back_to_the_next_connection(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "assemblyai", key="aai-1", priority=1)
    connect(fake_provider, "assemblyai", key="aai-2", priority=2)
    key = make_key()
    fake_provider.behave(Behaviour(status=429, error_message="Too many uploads"), times=1)

    result = transcribe(gateway, key, "assemblyai/best")

    assert result.text == "Hello from best!"
    uploads = [r for r in fake_provider.requests if r.path == "/v2/upload"]
    # The spooled file is sent again, whole, to the second connection.
    assert [(r.headers["authorization"], r.body) for r in uploads] == [
        ("aai-1", wav_bytes(1.5)),
        ("aai-2", wav_bytes(1.5)),
    ]
    assert uploads[1].headers["content-length"] == str(len(wav_bytes(1.5)))


def test_deepgram_error_is_relayed(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "deepgram")
    key = make_key()
    fake_provider.behave(Behaviour(status=400, error_message="Bad Request: unsupported language"))

    with pytest.raises(openai.BadRequestError, match=r"\[deepgram/nova-3\] Bad Request: unsupported language"):
        transcribe(gateway, key, "deepgram/nova-3", language="xx")
    [rec] = records(gateway)
    assert rec.status_code == 400


def test_assemblyai_bounded_wait_is_504(gateway: LiveGateway, fake_provider: FakeProvider, settings: Any) -> None:
    settings.TRANSCRIPTION_POLL_TIMEOUT = 0.2
    connect(fake_provider, "assemblyai")
    key = make_key()
    fake_provider.behave(Behaviour(stall=True))

    with pytest.raises(openai.InternalServerError) as caught:
        transcribe(gateway, key, "assemblyai/best")

    assert caught.value.status_code == 504
    assert "not finished after" in caught.value.message
    [rec] = records(gateway)
    assert rec.status_code == 504


def test_fallback_between_two_transcription_providers(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "deepgram")
    connect(fake_provider, "groq")
    combo("stt", ["deepgram/nova-3", "groq/whisper-large-v3"])
    key = make_key()
    fake_provider.behave(Behaviour(status=503), model="nova-3")

    result = transcribe(gateway, key, "stt")

    assert result.text == "Hello from whisper-large-v3!"
    assert [r.path for r in fake_provider.requests] == ["/v1/listen", "/v1/audio/transcriptions"]


def test_listing(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    connect(fake_provider, "deepgram")
    key = make_key()

    resp = httpx.get(f"{gateway.base_url}/audio/transcriptions", headers={"Authorization": f"Bearer {key}"})

    assert [m["id"] for m in resp.json()["data"]] == ["deepgram/nova-3", "deepgram/nova-2"]
