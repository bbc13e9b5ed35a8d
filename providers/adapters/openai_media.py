"""Embeddings, images and transcription in the OpenAI wire format, with each provider's quirks.

Quirks (docs/API.md §4 has the table):
- embeddings: Mistral calls `dimensions` `output_dimension` (codestral-embed only); NVIDIA's
  asymmetric models need `input_type` (default "query"); Together takes no `dimensions`;
  token-array input only where the provider documents it (OpenAI).
- images: Together takes `width`/`height` and `response_format` "base64"; xAI takes no
  `size`/`quality`/`style`; Fireworks FLUX is its own workflow endpoint answering base64;
  gpt-image models always answer base64 and take no `response_format`.
- transcription: whisper models are asked for `verbose_json` (duration, language, segments)
  whatever the client wants, the gateway renders the client's format; gpt-4o transcribe
  models only give `json`.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import aiohttp
import orjson

from .base import Credential, ProviderError, UpstreamRequest
from .media import (
    Embeddings,
    Image,
    MediaAdapter,
    Segment,
    Transcript,
    TranscriptionJob,
    bad_upstream,
    call_json,
)

_JSON = "application/json"
TOKEN_ARRAY_PROVIDERS = frozenset({"openai"})
NO_DIMENSIONS = frozenset({"together"})
# Fireworks FLUX aspect ratios (width:height).
FIREWORKS_RATIOS = frozenset({"1:1", "21:9", "16:9", "3:2", "5:4", "4:5", "2:3", "9:16", "9:21", "4:3", "3:4"})


def unsupported(what: str, cred: Credential, model_id: str) -> ProviderError:
    # "not supported" lets a combo move to its next member (gateway/routing.py `classify`).
    return ProviderError(400, f"{what} is not supported by {cred.provider.id}/{model_id}", retryable=False)


def _post_json(cred: Credential, path: str, body: dict[str, Any]) -> UpstreamRequest:
    headers = {**cred.headers, "Content-Type": _JSON, "Accept": _JSON}
    return UpstreamRequest("POST", cred.base_url + path, headers, orjson.dumps(body))


def decode_vector(value: Any) -> list[float]:
    """A float list, or OpenAI's base64 of little-endian float32s."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        raw = base64.b64decode(value)
        return list(struct.unpack(f"<{len(raw) // 4}f", raw))
    raise bad_upstream("Upstream returned an embedding that is neither a list nor base64")


class OpenAIMediaAdapter(MediaAdapter):
    format = "openai"

    # -- embeddings --------------------------------------------------------------------------

    def embeddings_request(self, cred: Credential, model_id: str, body: dict[str, Any]) -> UpstreamRequest:
        provider = cred.provider.id
        upstream = {**body, "model": model_id, "encoding_format": "float"}
        if body.get("_tokens") and provider not in TOKEN_ARRAY_PROVIDERS and not cred.provider.is_node:
            raise unsupported("Token-array input", cred, model_id)
        upstream.pop("_tokens", None)
        dimensions = upstream.get("dimensions")
        if dimensions is not None:
            if provider in NO_DIMENSIONS:
                raise unsupported("'dimensions'", cred, model_id)
            if provider == "mistral":
                if model_id == "mistral-embed":
                    raise unsupported("'dimensions'", cred, model_id)
                upstream["output_dimension"] = upstream.pop("dimensions")
        if provider == "nvidia":
            upstream.setdefault("input_type", "query")
        return _post_json(cred, "/embeddings", upstream)

    def embeddings_result(self, obj: Any, *, count: int) -> Embeddings:
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, list) or len(data) != count:
            raise bad_upstream(
                f"Upstream returned {len(data) if isinstance(data, list) else 'no'} embeddings for {count} inputs"
            )
        ordered = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
        vectors = [decode_vector(item.get("embedding") if isinstance(item, dict) else None) for item in ordered]
        usage = obj.get("usage") or {}
        tokens = usage.get("prompt_tokens") or usage.get("total_tokens") or 0 if isinstance(usage, dict) else 0
        return Embeddings(vectors=vectors, prompt_tokens=int(tokens))

    # -- images ------------------------------------------------------------------------------

    def images_request(self, cred: Credential, model_id: str, body: dict[str, Any]) -> UpstreamRequest:
        provider = cred.provider.id
        b64 = body.get("response_format") == "b64_json"
        if provider == "fireworks":
            return self._fireworks_request(cred, model_id, body)
        upstream: dict[str, Any] = {"model": model_id, "prompt": body["prompt"], "n": body.get("n", 1)}
        if provider == "together":
            if body.get("size") not in (None, "auto"):
                width, height = body["size"].split("x")
                upstream["width"], upstream["height"] = int(width), int(height)
            upstream["response_format"] = "base64" if b64 else "url"
            return _post_json(cred, "/images/generations", upstream)
        if provider != "xai":
            for name in ("size", "quality", "style", "user", "background", "output_format"):
                if body.get(name) is not None:
                    upstream[name] = body[name]
        if not model_id.startswith("gpt-image"):
            upstream["response_format"] = "b64_json" if b64 else "url"
        return _post_json(cred, "/images/generations", upstream)

    def _fireworks_request(self, cred: Credential, model_id: str, body: dict[str, Any]) -> UpstreamRequest:
        upstream: dict[str, Any] = {"prompt": body["prompt"]}
        size = body.get("size")
        if size not in (None, "auto"):
            width, height = (int(v) for v in size.split("x"))
            divisor = math.gcd(width, height)
            ratio = f"{width // divisor}:{height // divisor}"
            if ratio not in FIREWORKS_RATIOS:
                raise unsupported(f"Size {size} (aspect ratio {ratio})", cred, model_id)
            upstream["aspect_ratio"] = ratio
        if body.get("n", 1) != 1:
            upstream["samples"] = body["n"]
        return _post_json(cred, f"/workflows/{model_id}/text_to_image", upstream)

    def images_result(self, obj: Any, *, b64: bool) -> list[Image]:
        if isinstance(obj, dict) and isinstance(obj.get("base64"), list):  # Fireworks workflows
            return [_image_from_b64(item, b64) for item in obj["base64"] if isinstance(item, str)]
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, list):
            raise bad_upstream("Upstream returned no image data")
        images = []
        for item in data:
            if not isinstance(item, dict):
                continue
            revised = item.get("revised_prompt")
            if item.get("b64_json"):
                image = _image_from_b64(item["b64_json"], b64)
            elif item.get("url"):
                image = Image(url=item["url"])
            else:
                continue
            image.revised_prompt = revised if isinstance(revised, str) else None
            images.append(image)
        if not images:
            raise bad_upstream("Upstream returned no images")
        return images

    # -- transcription -----------------------------------------------------------------------

    async def transcribe(self, cred: Credential, model_id: str, job: TranscriptionJob) -> Transcript:
        verbose = "whisper" in model_id
        if job.segments and not verbose:
            raise unsupported("Segments (verbose_json, srt, vtt)", cred, model_id)
        form = aiohttp.MultipartWriter("form-data")
        _field(form, "model", model_id)
        _field(form, "response_format", "verbose_json" if verbose else "json")
        if job.language:
            _field(form, "language", job.language)
        if job.prompt:
            _field(form, "prompt", job.prompt)
        part = form.append_payload(job.audio.payload())
        part.set_content_disposition("form-data", name="file", filename=job.audio.filename)
        request = UpstreamRequest("POST", cred.base_url + "/audio/transcriptions", dict(cred.headers), None)
        obj = await call_json(self, request, form)
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise bad_upstream("Upstream returned no transcript text")
        return _transcript(obj, verbose=verbose)


def _field(form: aiohttp.MultipartWriter, name: str, value: str) -> None:
    form.append(value).set_content_disposition("form-data", name=name)


def _image_from_b64(value: str, b64: bool) -> Image:
    if value.startswith("data:"):
        _, _, data = value.partition(",")
        return Image(b64_json=data) if b64 else Image(url=value)
    return Image(b64_json=value) if b64 else Image(url=f"data:image/png;base64,{value}")


def _transcript(obj: dict[str, Any], *, verbose: bool) -> Transcript:
    duration = obj.get("duration")
    usage = obj.get("usage")
    if duration is None and isinstance(usage, dict) and usage.get("type") == "duration":
        duration = usage.get("seconds")
    segments = None
    if verbose and isinstance(obj.get("segments"), list):
        segments = [
            Segment(start=float(s.get("start", 0)), end=float(s.get("end", 0)), text=str(s.get("text", "")).strip())
            for s in obj["segments"]
            if isinstance(s, dict)
        ]
    language = obj.get("language")
    return Transcript(
        text=obj["text"],
        language=language if isinstance(language, str) else None,
        duration=float(duration) if isinstance(duration, int | float) else None,
        segments=segments if verbose else None,
    )


ADAPTER = OpenAIMediaAdapter()
