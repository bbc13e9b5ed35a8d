"""Reading an upload: parsed as it arrives, the file spooled to disk past 1 MB, the limit
enforced while reading."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.http import Request
from gateway.modalities.audio import SPOOL_MEMORY, read_form

from .helpers import wav_bytes

BOUNDARY = b"zzBOUNDARYzz"


def body_for(audio: bytes) -> bytes:
    return (
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="model"\r\n\r\nopenai/whisper-1\r\n'
        b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\n" + audio + b"\r\n--" + BOUNDARY + b"--\r\n"
    )


def request_for(body: bytes, chunk: int = 65536) -> tuple[Request, list[int]]:
    """A request whose body arrives in chunks, chunked (no Content-Length); also the sizes handed out."""
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    handed: list[int] = []

    async def receive() -> dict[str, Any]:
        piece = pieces.pop(0)
        handed.append(len(piece))
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    scope = {
        "method": "POST",
        "path": "/v1/audio/transcriptions",
        "headers": [(b"content-type", b"multipart/form-data; boundary=" + BOUNDARY)],
    }
    return Request(scope, receive), handed


def test_large_file_is_spooled_to_disk() -> None:
    audio = wav_bytes(120.0)  # ~1.9 MB
    request, handed = request_for(body_for(audio))

    form = asyncio.run(read_form(request))

    try:
        assert len(audio) > SPOOL_MEMORY and form.size == len(audio)
        assert form.file is not None and form.file._rolled  # type: ignore[attr-defined]
        assert form.fields == {"model": "openai/whisper-1"}
        assert form.head == audio[:4096]
        form.file.seek(0)
        assert form.file.read() == audio
        assert max(handed) == 65536
    finally:
        form.close()


def test_small_file_stays_in_memory() -> None:
    request, _ = request_for(body_for(wav_bytes(0.1)), chunk=7)
    form = asyncio.run(read_form(request))
    assert form.file is not None and not form.file._rolled  # type: ignore[attr-defined]
    form.close()


def test_limit_enforced_while_reading(settings: Any) -> None:
    settings.MAX_UPLOAD_BYTES = 256 * 1024
    request, handed = request_for(body_for(wav_bytes(120.0)))

    with pytest.raises(GatewayError) as caught:
        asyncio.run(read_form(request))

    assert caught.value.status == 413
    assert sum(handed) <= 256 * 1024 + 65536  # stopped at the limit, not after the whole body
