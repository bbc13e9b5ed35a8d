"""Deepgram pre-recorded transcription: `POST /v1/listen?model=...`, the raw audio as the body,
`Authorization: Token <key>`. Segments come from `utterances=true`, asked only when needed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson

from .base import Credential, ProviderError, UpstreamRequest, is_retryable, parse_retry_after
from .media import MediaAdapter, Segment, Transcript, TranscriptionJob, bad_upstream, call_json


class DeepgramAdapter(MediaAdapter):
    format = "deepgram"

    async def transcribe(self, cred: Credential, model_id: str, job: TranscriptionJob) -> Transcript:
        query: dict[str, str] = {"model": model_id, "smart_format": "true"}
        if job.language:
            query["language"] = job.language
        else:
            query["detect_language"] = "true"
        if job.prompt:
            query["keyterm"] = job.prompt  # nova-3's nearest thing to a prompt: terms to favour
        if job.segments:
            query["utterances"] = "true"
        headers = {**cred.headers, "Content-Type": job.audio.mime, "Content-Length": str(job.audio.size)}
        request = UpstreamRequest("POST", f"{cred.base_url}/listen?{urlencode(query)}", headers, None)
        obj = await call_json(self, request, job.audio.payload())
        return _transcript(obj, job)

    def error_from_response(self, status: int, headers: dict[str, str], body: bytes) -> ProviderError:
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and (obj.get("err_msg") or obj.get("message")):
            message = str(obj.get("err_msg") or obj.get("message"))
            code = obj.get("err_code")
            return ProviderError(
                status,
                message,
                retryable=is_retryable(status),
                retry_after=parse_retry_after(headers, message),
                code=str(code) if code else None,
            )
        return super().error_from_response(status, headers, body)


def _transcript(obj: Any, job: TranscriptionJob) -> Transcript:
    try:
        channel = obj["results"]["channels"][0]
        best = channel["alternatives"][0]
        text = best["transcript"]
    except (KeyError, IndexError, TypeError):
        raise bad_upstream("Deepgram returned no transcript") from None
    if not isinstance(text, str):
        raise bad_upstream("Deepgram returned no transcript")
    duration = (obj.get("metadata") or {}).get("duration")
    segments = None
    utterances = obj["results"].get("utterances")
    if job.segments and isinstance(utterances, list):
        segments = [
            Segment(start=float(u.get("start", 0)), end=float(u.get("end", 0)), text=str(u.get("transcript", "")))
            for u in utterances
            if isinstance(u, dict)
        ]
    detected = channel.get("detected_language")
    return Transcript(
        text=text,
        language=job.language or (detected if isinstance(detected, str) else None),
        duration=float(duration) if isinstance(duration, int | float) else None,
        segments=segments,
    )


ADAPTER = DeepgramAdapter()
