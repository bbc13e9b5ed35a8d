"""POST/GET /v1/images/generations and /v1/providers/{provider}/images/generations."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from django.conf import settings

from providers.adapters.base import Credential
from providers.adapters.media import Image, MediaAdapter, call_json

from .. import pipeline
from ..errors import bad_request
from ..http import Request, read_body
from ..pipeline import Target
from ..recorder import Record
from .common import (
    optional_choice,
    optional_int,
    optional_str,
    plan_for,
    run_plan,
    send_body,
    send_listing,
    until_disconnect,
)

MAX_PROMPT = 32000
_SIZE = re.compile(r"^[1-9]\d{1,4}x[1-9]\d{1,4}$")


def parse(payload: dict[str, Any]) -> dict[str, Any]:
    prompt = payload.get("prompt")
    if prompt is None:
        raise bad_request("Missing required field 'prompt'", param="prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("Field 'prompt' must be a non-empty string", param="prompt")
    if len(prompt) > MAX_PROMPT:
        raise bad_request(f"Field 'prompt' is longer than {MAX_PROMPT} characters", param="prompt")
    body: dict[str, Any] = {"prompt": prompt, "n": optional_int(payload, "n", low=1, high=10) or 1}
    size = optional_str(payload, "size")
    if size is not None and size != "auto" and not _SIZE.match(size):
        raise bad_request("Field 'size' must be WIDTHxHEIGHT (e.g. 1024x1024) or auto", param="size")
    body["size"] = size
    body["response_format"] = optional_choice(payload, "response_format", ("url", "b64_json")) or "url"
    for name in ("quality", "style", "user", "background", "output_format"):
        body[name] = optional_str(payload, name)
    return body


def render(images: list[Image]) -> bytes:
    data = []
    for image in images:
        item: dict[str, Any] = {"url": image.url} if image.url else {"b64_json": image.b64_json}
        if image.revised_prompt:
            item["revised_prompt"] = image.revised_prompt
        data.append(item)
    return orjson.dumps({"created": int(time.time()), "data": data})


async def create(request: Request, send: Any, record: Record, *, pinned: str | None = None) -> None:
    payload = pipeline.parse_json_object(await read_body(request, settings.MAX_BODY_BYTES))
    model = pipeline.require_model(payload)
    body = parse(payload)
    plan = await plan_for(request, record, kind="image", model=model, pinned=pinned)
    b64 = body["response_format"] == "b64_json"

    async def attempt(target: Target, cred: Credential, adapter: MediaAdapter) -> list[Image]:
        obj = await call_json(adapter, adapter.images_request(cred, target.model_id, body))
        return adapter.images_result(obj, b64=b64)

    target, images = await until_disconnect(request, run_plan(request, plan, record, attempt))
    record.images = len(images)
    await send_body(request, send, record, target, render(images))


async def models(request: Request, send: Any, record: Record) -> None:
    await send_listing(request, send, "image")
