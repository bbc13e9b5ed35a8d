"""AssemblyAI: ``POST /v2/upload``, ``POST /v2/transcript``, ``GET /v2/transcript/{id}`` (submitted
"queued"; polled: "processing", then "completed") and ``GET /v2/transcript/{id}/sentences``.

The behaviour scripted for the upload decides the job: an error status fails the upload,
``stall`` leaves the transcript processing forever, ``reply`` is its text.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.media_format import Source, wav_seconds
from tests.fakes.scripting import Behaviour, recorded

POLLS_BEFORE_DONE = 1


@dataclass
class Job:
    behaviour: Behaviour
    seconds: float
    model: str = ""
    language: str | None = None
    polls: int = 0


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def routes(source: Source) -> list[web.RouteDef]:
    uploads: dict[str, Job] = {}
    jobs: dict[str, Job] = {}

    def authorized(request: web.Request) -> bool:
        auth = recorded(request).headers.get("authorization", "")
        return bool(auth) and not auth.startswith(("Bearer ", "Token "))

    async def upload(request: web.Request) -> web.Response:
        entry = recorded(request)
        if not authorized(request):
            return _error(401, "Authentication error, API token missing/invalid")
        behaviour = source.behaviour_for(entry, model=None)
        if behaviour.delay:  # not hold(): `stall` is about the job, not the upload
            await asyncio.sleep(behaviour.delay)
        if behaviour.status >= 400:
            return _error(behaviour.status, behaviour.error_message or f"Fake AssemblyAI error ({behaviour.status})")
        file_id = uuid.uuid4().hex
        uploads[file_id] = Job(behaviour=behaviour, seconds=wav_seconds(entry.body))
        return web.json_response({"upload_url": f"https://cdn.assemblyai.fake/upload/{file_id}"})

    async def submit(request: web.Request) -> web.Response:
        payload = recorded(request).json
        if not authorized(request) or not isinstance(payload, dict):
            return _error(401, "Authentication error, API token missing/invalid")
        file_id = str(payload.get("audio_url", "")).rsplit("/", 1)[-1]
        job = uploads.pop(file_id, None)
        if job is None:
            return _error(400, "Download error, unable to download the audio_url")
        job.model, job.language = str(payload.get("speech_model")), payload.get("language_code")
        transcript_id = uuid.uuid4().hex
        jobs[transcript_id] = job
        return web.json_response({"id": transcript_id, "status": "queued", "text": None})

    def body_of(transcript_id: str, job: Job) -> dict[str, Any]:
        job.polls += 1
        done = job.polls > POLLS_BEFORE_DONE and not job.behaviour.stall
        status = "completed" if done else "processing"
        body: dict[str, Any] = {"id": transcript_id, "status": status, "text": None}
        if done:
            text = job.behaviour.reply if job.behaviour.reply is not None else f"Hello from {job.model}!"
            body.update(text=text, audio_duration=job.seconds, language_code=job.language or "en_us")
        return body

    async def poll(request: web.Request) -> web.Response:
        job = jobs.get(request.match_info["id"])
        if not authorized(request) or job is None:
            return _error(404, "Transcript not found")
        return web.json_response(body_of(request.match_info["id"], job))

    async def sentences(request: web.Request) -> web.Response:
        job = jobs.get(request.match_info["id"])
        if job is None:
            return _error(404, "Transcript not found")
        text = job.behaviour.reply if job.behaviour.reply is not None else f"Hello from {job.model}!"
        sentence = {"text": text, "start": 0, "end": int(job.seconds * 1000), "confidence": 0.98}
        return web.json_response({"sentences": [sentence], "id": request.match_info["id"]})

    return [
        web.post("/v2/upload", upload),
        web.post("/v2/transcript", submit),
        web.get("/v2/transcript/{id}", poll),
        web.get("/v2/transcript/{id}/sentences", sentences),
    ]
