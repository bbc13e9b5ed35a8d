"""OpenAI-format embeddings, image generation and transcription, plus the Fireworks FLUX workflow
and Gemini `:batchEmbedContents` (under ``/embed/v1beta`` so it does not meet the Gemini chat routes).

Multipart bodies are parsed from the recorded bytes (the recording middleware has read them).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import math
import re
import struct
import time
import uuid
from typing import Any, Protocol

from aiohttp import web

from tests.fakes.openai_format import error_response
from tests.fakes.scripting import Behaviour, RecordedRequest, estimate_tokens, hold, raw_response, recorded

# A 1x1 transparent PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
PNG_B64 = base64.b64encode(PNG).decode()


class Source(Protocol):
    def behaviour_for(self, request: RecordedRequest, model: str | None = None) -> Behaviour: ...


def vector(index: int, dims: int) -> list[float]:
    """A deterministic vector: input i, component j -> (i + 1) / 10 + j / 100 (exact in float32 terms)."""
    return [float(struct.unpack("<f", struct.pack("<f", (index + 1) / 10 + j / 100))[0]) for j in range(dims)]


def bag_of_words(text: str, dims: int) -> list[float]:
    """A deterministic embedding of a text for models named `*bow*`: each word counted in one of
    `dims` buckets (by hash), so texts sharing words are similar and unrelated ones are not."""
    out = [0.0] * dims
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        out[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dims] += 1.0
    return out


def form_of(request: RecordedRequest) -> dict[str, tuple[str | None, bytes]]:
    """Multipart fields: name -> (filename, bytes)."""
    content_type = request.headers.get("content-type", "")
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str):
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def wav_seconds(data: bytes) -> float:
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE" and len(data) >= 44:
        byte_rate = struct.unpack("<I", data[28:32])[0]
        return round((len(data) - 44) / byte_rate, 3) if byte_rate else 1.0
    return 1.0


def failure(behaviour: Behaviour) -> web.Response | None:
    if behaviour.body is not None:
        return raw_response(behaviour, content_type="application/json")
    if behaviour.status >= 400:
        return error_response(behaviour.status, behaviour.error_message, headers=behaviour.headers)
    return None


def routes(source: Source) -> list[web.RouteDef]:
    async def embeddings(request: web.Request) -> web.Response:
        payload = recorded(request).json
        if not isinstance(payload, dict) or not isinstance(payload.get("model"), str):
            return error_response(400, "You must provide a model parameter.", param="model")
        inputs = payload.get("input")
        if inputs is None or inputs == "" or inputs == []:
            return error_response(400, "'input' is required.", param="input")
        behaviour = source.behaviour_for(recorded(request))
        await hold(behaviour)
        if (failed := failure(behaviour)) is not None:
            return failed
        items = [inputs] if isinstance(inputs, str) or (inputs and isinstance(inputs[0], int)) else inputs
        bow = "bow" in payload["model"]
        dims = payload.get("dimensions") or payload.get("output_dimension") or (256 if bow else 8)
        b64 = payload.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(items):
            vec = bag_of_words(item, dims) if bow and isinstance(item, str) else vector(index, dims)
            embedding: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        text = "".join(i if isinstance(i, str) else " " * 4 * len(i) for i in items)
        tokens = behaviour.prompt_tokens if behaviour.prompt_tokens is not None else estimate_tokens(text)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response({"object": "list", "data": data, "model": payload["model"], "usage": usage})

    async def images(request: web.Request) -> web.Response:
        payload = recorded(request).json
        if not isinstance(payload, dict) or not payload.get("prompt"):
            return error_response(400, "'prompt' is required.", param="prompt")
        behaviour = source.behaviour_for(recorded(request))
        await hold(behaviour)
        if (failed := failure(behaviour)) is not None:
            return failed
        model = str(payload.get("model", ""))
        b64 = payload.get("response_format") in ("b64_json", "base64") or model.startswith("gpt-image")
        data = []
        for index in range(int(payload.get("n") or 1)):
            item: dict[str, Any] = {"b64_json": PNG_B64} if b64 else {"url": f"https://images.fake/{model}/{index}.png"}
            if model.startswith("dall-e-3"):
                item["revised_prompt"] = f"A detailed {payload['prompt']}"
            data.append(item)
        return web.json_response({"created": int(time.time()), "data": data})

    async def fireworks_image(request: web.Request) -> web.Response:
        payload = recorded(request).json
        if not isinstance(payload, dict) or not payload.get("prompt"):
            return error_response(400, "prompt is required")
        behaviour = source.behaviour_for(recorded(request), model=request.match_info["model"])
        await hold(behaviour)
        if (failed := failure(behaviour)) is not None:
            return failed
        count = int(payload.get("samples") or 1)
        body = {
            "id": uuid.uuid4().hex,
            "base64": [f"data:image/jpeg;base64,{PNG_B64}"] * count,
            "finishReason": "SUCCESS",
        }
        return web.json_response(body)

    async def transcriptions(request: web.Request) -> web.Response:
        form = form_of(recorded(request))
        if "file" not in form or not form["file"][1]:
            return error_response(400, "Missing file.", param="file")
        if "model" not in form:
            return error_response(400, "you must provide a model parameter", param="model")
        model = form["model"][1].decode()
        behaviour = source.behaviour_for(recorded(request), model=model)
        await hold(behaviour)
        if (failed := failure(behaviour)) is not None:
            return failed
        text = behaviour.reply if behaviour.reply is not None else f"Hello from {model}!"
        seconds = wav_seconds(form["file"][1])
        response_format = form.get("response_format", (None, b"json"))[1].decode()
        if response_format == "text":
            return web.Response(text=text + "\n", content_type="text/plain")
        if response_format == "verbose_json":
            language = form.get("language", (None, b"english"))[1].decode()
            segment = {"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": " " + text}
            body = {
                "task": "transcribe",
                "language": language,
                "duration": seconds,
                "text": text,
                "segments": [segment],
            }
            return web.json_response(body)
        return web.json_response({"text": text, "usage": {"type": "duration", "seconds": math.ceil(seconds)}})

    async def batch_embed(request: web.Request) -> web.Response:
        payload = recorded(request).json
        if not request.headers.get("x-goog-api-key"):
            return web.json_response(
                {"error": {"code": 403, "message": "no key", "status": "PERMISSION_DENIED"}}, status=403
            )
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests:
            return web.json_response(
                {"error": {"code": 400, "message": "requests is required", "status": "INVALID_ARGUMENT"}}, status=400
            )
        behaviour = source.behaviour_for(recorded(request), model=request.match_info["model"])
        await hold(behaviour)
        if behaviour.status >= 400:
            message = behaviour.error_message or "Fake Gemini error"
            return web.json_response(
                {"error": {"code": behaviour.status, "message": message, "status": "UNAVAILABLE"}},
                status=behaviour.status,
            )
        dims = requests[0].get("outputDimensionality") or 8
        return web.json_response({"embeddings": [{"values": vector(i, dims)} for i in range(len(requests))]})

    return [
        web.post("/v1/embeddings", embeddings),
        web.post("/v1/images/generations", images),
        web.post("/v1/workflows/{model:.+}/text_to_image", fireworks_image),
        web.post("/v1/audio/transcriptions", transcriptions),
        web.post("/embed/v1beta/models/{model}:batchEmbedContents", batch_embed),
    ]
