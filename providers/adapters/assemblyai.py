"""AssemblyAI transcription: upload the audio, submit a transcript job, poll it.

The wait is bounded (settings.TRANSCRIPTION_POLL_TIMEOUT): a job still running then is a
504. Auth is the bare key in `Authorization` (catalog auth style "authorization").
Segments come from the finished transcript's `/sentences`, fetched only when asked for.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from django.conf import settings

from .base import Credential, ProviderError, UpstreamRequest
from .media import MediaAdapter, Segment, Transcript, TranscriptionJob, bad_upstream, call_json

FINISHED = ("completed", "error")


def _headers(cred: Credential, content_type: str) -> dict[str, str]:
    return {**cred.headers, "Authorization": cred.api_key, "Content-Type": content_type}


class AssemblyAIAdapter(MediaAdapter):
    format = "assemblyai"

    async def transcribe(self, cred: Credential, model_id: str, job: TranscriptionJob) -> Transcript:
        headers = {**_headers(cred, "application/octet-stream"), "Content-Length": str(job.audio.size)}
        upload = UpstreamRequest("POST", f"{cred.base_url}/upload", headers, None)
        uploaded = await call_json(self, upload, job.audio.payload())
        audio_url = uploaded.get("upload_url") if isinstance(uploaded, dict) else None
        if not isinstance(audio_url, str):
            raise bad_upstream("AssemblyAI returned no upload_url")
        submit: dict[str, Any] = {"audio_url": audio_url, "speech_model": model_id}
        if job.language:
            submit["language_code"] = job.language
        else:
            submit["language_detection"] = True
        if job.prompt:
            submit["word_boost"] = job.prompt.split()[:100]
        request = UpstreamRequest(
            "POST", f"{cred.base_url}/transcript", _headers(cred, "application/json"), orjson.dumps(submit)
        )
        created = await call_json(self, request)
        transcript_id = created.get("id") if isinstance(created, dict) else None
        if not isinstance(transcript_id, str):
            raise bad_upstream("AssemblyAI returned no transcript id")
        done = await self._poll(cred, transcript_id, created)
        segments = await self._sentences(cred, transcript_id) if job.segments else None
        language = done.get("language_code")
        duration = done.get("audio_duration")
        return Transcript(
            text=done.get("text") or "",
            language=job.language or (language if isinstance(language, str) else None),
            duration=float(duration) if isinstance(duration, int | float) else None,
            segments=segments,
        )

    async def _poll(self, cred: Credential, transcript_id: str, current: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + settings.TRANSCRIPTION_POLL_TIMEOUT
        url = f"{cred.base_url}/transcript/{transcript_id}"
        while current.get("status") not in FINISHED:
            if time.monotonic() >= deadline:
                raise ProviderError(
                    504,
                    f"AssemblyAI transcript {transcript_id} not finished "
                    f"after {settings.TRANSCRIPTION_POLL_TIMEOUT:g} s",
                    retryable=True,
                    code="transcription_timeout",
                )
            await asyncio.sleep(settings.TRANSCRIPTION_POLL_INTERVAL)
            polled = await call_json(self, UpstreamRequest("GET", url, _headers(cred, "application/json"), None))
            if not isinstance(polled, dict):
                raise bad_upstream("AssemblyAI returned an unexpected transcript")
            current = polled
        if current["status"] == "error":
            raise ProviderError(502, f"AssemblyAI transcription failed: {current.get('error')}", retryable=True)
        return current

    async def _sentences(self, cred: Credential, transcript_id: str) -> list[Segment]:
        url = f"{cred.base_url}/transcript/{transcript_id}/sentences"
        obj = await call_json(self, UpstreamRequest("GET", url, _headers(cred, "application/json"), None))
        sentences = obj.get("sentences") if isinstance(obj, dict) else None
        if not isinstance(sentences, list):
            raise bad_upstream("AssemblyAI returned no sentences")
        # AssemblyAI times are milliseconds.
        return [
            Segment(start=s.get("start", 0) / 1000, end=s.get("end", 0) / 1000, text=str(s.get("text", "")))
            for s in sentences
            if isinstance(s, dict)
        ]


ADAPTER = AssemblyAIAdapter()
