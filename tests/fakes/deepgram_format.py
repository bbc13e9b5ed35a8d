"""Deepgram pre-recorded transcription: ``POST /v1/listen?model=...`` with the raw audio as the body."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.media_format import Source, wav_seconds
from tests.fakes.scripting import hold, recorded


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"err_code": "FAKE_ERROR", "err_msg": message, "request_id": "fake"}, status=status)


def routes(source: Source) -> list[web.RouteDef]:
    async def listen(request: web.Request) -> web.Response:
        entry = recorded(request)
        if not entry.headers.get("authorization", "").startswith("Token "):
            return _error(401, "Invalid credentials.")
        model = request.query.get("model")
        if not entry.body:
            return _error(400, "Bad Request: failed to process audio: corrupt or unsupported data")
        behaviour = source.behaviour_for(entry, model=model)
        await hold(behaviour)
        if behaviour.status >= 400:
            return _error(behaviour.status, behaviour.error_message or f"Fake Deepgram error (HTTP {behaviour.status})")
        text = behaviour.reply if behaviour.reply is not None else f"Hello from {model}!"
        seconds = wav_seconds(entry.body)
        channel: dict[str, Any] = {"alternatives": [{"transcript": text, "confidence": 0.99, "words": []}]}
        if request.query.get("detect_language") == "true":
            channel["detected_language"] = "en"
        results: dict[str, Any] = {"channels": [channel]}
        if request.query.get("utterances") == "true":
            results["utterances"] = [{"start": 0.0, "end": seconds, "transcript": text, "confidence": 0.99}]
        metadata = {"request_id": "fake-dg", "duration": seconds, "channels": 1, "models": [model]}
        return web.json_response({"metadata": metadata, "results": results})

    return [web.post("/v1/listen", listen)]
