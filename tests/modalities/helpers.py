"""Shared pieces of the modality tests: connections to the fake provider, keys, audio files."""

from __future__ import annotations

import io
import math
import struct
import wave
from typing import Any

import openai

from gateway.keys import generate_api_key, hash_api_key, visible_prefix
from gateway.models import ApiKey, Combo
from gateway.recorder import recorder
from providers.models import ProviderConnection
from tests.fakes.provider import FakeProvider
from tests.live_server import LiveGateway
from usage.models import UsageRecord

# Where each provider's API lives on the fake provider (its base URL path).
BASE_PATHS = {"deepgram": "/v1", "assemblyai": "/v2", "gemini": "/embed/v1beta"}


def connect(fake: FakeProvider, provider: str, *, key: str = "sk-a", priority: int = 1, **fields: Any) -> int:
    base_url = fake.url + BASE_PATHS.get(provider, "/v1")
    conn = ProviderConnection(
        provider=provider, name=f"{provider} {key}", priority=priority, base_url=base_url, **fields
    )
    conn.set_api_key(key)
    conn.save()
    return conn.pk


def make_key() -> str:
    plain = generate_api_key()
    ApiKey.objects.create(name="media", key_hash=hash_api_key(plain), prefix=visible_prefix(plain))
    return plain


def combo(name: str, members: list[str]) -> None:
    Combo.objects.create(name=name, members=members, strategy="priority")


def client(gateway: LiveGateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def records(gateway: LiveGateway) -> list[UsageRecord]:
    gateway.wait_idle()
    assert recorder.flush(10)
    return list(UsageRecord.objects.order_by("id"))


def wav_bytes(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A real mono 16-bit PCM WAV: a 440 Hz tone."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = int(seconds * rate)
        out.writeframes(
            b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(frames))
        )
    return buffer.getvalue()
