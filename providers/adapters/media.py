"""The contract of non-chat adapters: embeddings, image generation, audio transcription.

One adapter per wire format, stateless, lazily imported (like the chat adapters). Request
builders turn the gateway's validated OpenAI-shaped request into the provider's request;
result readers turn the provider's answer into plain values the gateway renders in the
OpenAI shape. Transcription may take several calls (upload, submit, poll), so
`transcribe` does its own I/O through `call_json`, which raises ProviderError; it never
retries or falls back: that loop lives in the gateway.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO, Any

import aiohttp
import orjson
from django.conf import settings

from providers.outbound import get_session

from .base import Credential, ProviderError, UpstreamRequest

_MODULES = {
    "openai": "providers.adapters.openai_media",
    "gemini": "providers.adapters.gemini_media",
    "deepgram": "providers.adapters.deepgram",
    "assemblyai": "providers.adapters.assemblyai",
}
_loaded: dict[str, MediaAdapter] = {}
CHUNK = 256 * 1024


@dataclass(slots=True)
class Embeddings:
    vectors: list[list[float]]
    prompt_tokens: int = 0


@dataclass(slots=True)
class Image:
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


@dataclass(slots=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(slots=True)
class Transcript:
    text: str
    language: str | None = None
    duration: float | None = None
    segments: list[Segment] | None = None  # None: the provider gave none


@dataclass(slots=True)
class Audio:
    """An uploaded audio file, spooled (memory, then disk); read from the start by each attempt."""

    file: IO[bytes]
    size: int
    format: str  # mp3, wav, m4a, flac, ogg, webm (sniffed from the content)
    mime: str
    filename: str
    duration: float | None = None  # known from the header for WAV

    async def chunks(self) -> AsyncIterator[bytes]:
        # A spooled file's reads hit memory or the page cache: no thread hop for 256 KB.
        self.file.seek(0)
        while chunk := self.file.read(CHUNK):
            yield chunk

    def payload(self) -> aiohttp.payload.AsyncIterablePayload:
        return aiohttp.payload.AsyncIterablePayload(self.chunks(), content_type=self.mime)


@dataclass(slots=True)
class TranscriptionJob:
    audio: Audio
    language: str | None = None
    prompt: str | None = None
    segments: bool = False  # the client asked for verbose_json, srt or vtt
    extra: dict[str, str] = field(default_factory=dict)


class MediaAdapter:
    """Contract of a non-chat adapter. Unsupported modalities raise ProviderError 400 "not supported"."""

    format: str = ""

    def embeddings_request(self, cred: Credential, model_id: str, body: dict[str, Any]) -> UpstreamRequest:
        raise not_supported(cred, "embeddings")

    def embeddings_result(self, obj: Any, *, count: int) -> Embeddings:
        raise NotImplementedError

    def images_request(self, cred: Credential, model_id: str, body: dict[str, Any]) -> UpstreamRequest:
        raise not_supported(cred, "image generation")

    def images_result(self, obj: Any, *, b64: bool) -> list[Image]:
        raise NotImplementedError

    async def transcribe(self, cred: Credential, model_id: str, job: TranscriptionJob) -> Transcript:
        raise not_supported(cred, "audio transcription")

    def error_from_response(self, status: int, headers: dict[str, str], body: bytes) -> ProviderError:
        from .openai import ADAPTER

        return ADAPTER.error_from_response(status, headers, body)


def not_supported(cred: Credential, what: str) -> ProviderError:
    return ProviderError(400, f"{what} is not supported by provider {cred.provider.id}", retryable=False)


def bad_upstream(message: str) -> ProviderError:
    return ProviderError(502, message, retryable=True, code="bad_upstream_response")


async def call_json(adapter: MediaAdapter, request: UpstreamRequest, data: Any = None) -> Any:
    """One upstream exchange, its JSON answer; ProviderError for transport failures, timeouts
    before the answer, error statuses and bodies that are not JSON."""
    body = await call_raw(adapter, request, data)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise bad_upstream("Upstream returned invalid JSON") from None


async def call_raw(adapter: MediaAdapter, request: UpstreamRequest, data: Any = None) -> bytes:
    try:
        async with asyncio.timeout(settings.UPSTREAM_FIRST_BYTE_TIMEOUT):
            async with get_session().request(
                request.method, request.url, headers=request.headers, data=data if data is not None else request.body
            ) as resp:
                body = await resp.read()
                if resp.status >= 400:
                    headers = {k.lower(): v for k, v in resp.headers.items()}
                    raise adapter.error_from_response(resp.status, headers, body)
                return body
    except TimeoutError:
        raise ProviderError(504, "Upstream did not answer in time", retryable=True, code="upstream_timeout") from None
    except aiohttp.ClientError as exc:
        raise ProviderError(502, f"Cannot reach upstream: {exc.__class__.__name__}", retryable=True) from None


class UnsupportedMediaFormat(LookupError):
    pass


def get_media_adapter(wire_format: str) -> MediaAdapter:
    adapter = _loaded.get(wire_format)
    if adapter is None:
        module_name = _MODULES.get(wire_format)
        if module_name is None:
            raise UnsupportedMediaFormat(wire_format)
        adapter = importlib.import_module(module_name).ADAPTER
        _loaded[wire_format] = adapter
    return adapter
