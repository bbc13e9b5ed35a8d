"""POST /v1/audio/transcriptions (multipart) and GET (the transcription models).

The upload is parsed as it arrives and its file spooled (memory up to SPOOL_MEMORY, then a
temporary file), never held whole; the size limit (settings.MAX_UPLOAD_BYTES) is enforced
while reading. The format is sniffed from the content, and every attempt streams the file
to the provider from the spool.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import IO, Any

import orjson
from django.conf import settings

from providers.adapters.base import Credential
from providers.adapters.media import Audio, MediaAdapter, Segment, Transcript, TranscriptionJob

from ..errors import GatewayError, bad_request
from ..http import Request
from ..pipeline import Target
from ..recorder import Record
from . import sound
from .common import plan_for, run_plan, send_body, send_listing, until_disconnect
from .multipart import MultipartParser, PartData, PartEnd, PartStart, boundary_of

SPOOL_MEMORY = 1024 * 1024
MAX_FIELD_BYTES = 64 * 1024
RESPONSE_FORMATS = ("json", "text", "verbose_json", "srt", "vtt")
SEGMENT_FORMATS = ("verbose_json", "srt", "vtt")


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    file: IO[bytes] | None = None
    filename: str = ""
    size: int = 0
    head: bytes = b""

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        413, f"Upload too large. Maximum allowed: {limit / (1024 * 1024):g} MB", code="payload_too_large"
    )


class _FormReader:
    """Applies parser events to a Form: small fields in memory, the file to the spool."""

    def __init__(self, form: Form) -> None:
        self.form = form
        self.part: PartStart | None = None
        self.value = bytearray()
        self.head = bytearray()

    def apply(self, event: PartStart | PartData | PartEnd) -> None:
        form = self.form
        if isinstance(event, PartStart):
            self.part, self.value = event, bytearray()
            if event.name == "file":
                if form.file is not None:
                    raise bad_request("More than one 'file' in the form", param="file")
                # Writes go to memory, then to a temporary file in the page cache: no thread hop.
                form.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
                form.filename = event.filename or ""
        elif isinstance(event, PartData):
            assert self.part is not None
            if self.part.name == "file":
                assert form.file is not None
                form.file.write(event.data)
                form.size += len(event.data)
                if len(self.head) < sound.SNIFF_BYTES:
                    self.head += event.data[: sound.SNIFF_BYTES - len(self.head)]
            else:
                self.value += event.data
                if len(self.value) > MAX_FIELD_BYTES:
                    raise bad_request(f"Form field '{self.part.name}' is too long", param=self.part.name)
        else:
            assert self.part is not None
            if self.part.name == "file":
                form.head = bytes(self.head)
            else:
                form.fields[self.part.name] = self.value.decode("utf-8", "replace")
            self.part = None


async def read_form(request: Request) -> Form:
    boundary = boundary_of(request.header(b"content-type"))
    limit = settings.MAX_UPLOAD_BYTES
    declared = request.headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    parser = MultipartParser(boundary)
    form = Form()
    reader = _FormReader(form)
    received = 0
    try:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                request.disconnected = True
                raise asyncio.CancelledError("client disconnected while uploading")
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                raise too_large(limit)
            for event in parser.feed(chunk):
                reader.apply(event)
            if not message.get("more_body", False):
                break
        parser.finish()
    except BaseException:
        form.close()
        raise
    return form


def job_of(form: Form) -> tuple[str, str, TranscriptionJob]:
    """(model, response_format, job) from a parsed form; 400 naming the first problem."""
    fields = form.fields
    model = fields.get("model", "").strip()
    if not model:
        raise bad_request("Missing required field 'model'", param="model")
    if form.file is None:
        raise bad_request("Missing required field 'file'", param="file")
    if not form.size:
        raise bad_request("Field 'file' is empty", param="file")
    fmt = sound.sniff(form.head)
    if fmt is None:
        name = f" '{form.filename}'" if form.filename else ""
        raise bad_request(
            f"File{name} is not audio in a supported format ({', '.join(sound.FORMATS)}): "
            "its content is not recognised",
            param="file",
            code="unsupported_audio_format",
        )
    response_format = fields.get("response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise bad_request(
            f"Field 'response_format' must be one of {', '.join(RESPONSE_FORMATS)}", param="response_format"
        )
    stem = PurePath(form.filename).stem or "audio"
    audio = Audio(
        file=form.file,
        size=form.size,
        format=fmt,
        mime=sound.MIME[fmt],
        filename=f"{stem}.{fmt}",  # providers that go by the name get the real format
        duration=sound.wav_duration(form.head, form.size) if fmt == "wav" else None,
    )
    job = TranscriptionJob(
        audio=audio,
        language=fields.get("language") or None,
        prompt=fields.get("prompt") or None,
        segments=response_format in SEGMENT_FORMATS,
    )
    return model, response_format, job


def render(transcript: Transcript, response_format: str, duration: float | None) -> tuple[bytes, bytes]:
    if response_format == "text":
        return transcript.text.encode(), b"text/plain; charset=utf-8"
    base = {"text": transcript.text, "task": "transcribe", "language": transcript.language, "duration": duration}
    if response_format == "json":
        return orjson.dumps(base), b"application/json"
    segments = transcript.segments
    if segments is None:  # one segment for the whole text
        segments = [Segment(start=0.0, end=duration or 0.0, text=transcript.text)]
    if response_format == "srt":
        return sound.srt(segments).encode(), b"text/plain; charset=utf-8"
    if response_format == "vtt":
        return sound.vtt(segments).encode(), b"text/vtt; charset=utf-8"
    listed = [{"id": i, "start": s.start, "end": s.end, "text": s.text} for i, s in enumerate(segments)]
    return orjson.dumps({**base, "segments": listed}), b"application/json"


async def create(request: Request, send: Any, record: Record) -> None:
    form = await read_form(request)
    try:
        model, response_format, job = job_of(form)
        plan = await plan_for(request, record, kind="audio", model=model, pinned=None)

        async def attempt(target: Target, cred: Credential, adapter: MediaAdapter) -> Transcript:
            return await adapter.transcribe(cred, target.model_id, job)

        target, transcript = await until_disconnect(request, run_plan(request, plan, record, attempt))
    finally:
        form.close()
    duration = transcript.duration if transcript.duration is not None else job.audio.duration
    record.audio_seconds = duration or 0.0
    body, content_type = render(transcript, response_format, duration)
    await send_body(request, send, record, target, body, content_type)


async def models(request: Request, send: Any, record: Record) -> None:
    await send_listing(request, send, "audio")
