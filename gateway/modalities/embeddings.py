"""POST/GET /v1/embeddings and /v1/providers/{provider}/embeddings."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import orjson
from django.conf import settings

from providers.adapters.base import Credential
from providers.adapters.media import Embeddings, MediaAdapter, call_json

from .. import idempotency, pipeline
from ..errors import bad_request
from ..http import Request, read_body
from ..pipeline import Target
from ..recorder import Record
from .common import optional_choice, optional_int, plan_for, run_plan, send_body, send_listing, until_disconnect

MAX_INPUTS = 2048
_OWN_FIELDS = ("model", "input", "encoding_format", "dimensions")


def parse_input(value: Any) -> tuple[Any, int, bool]:
    """(input, how many vectors it asks for, whether it is token arrays); 400 naming the problem."""
    if value is None:
        raise bad_request("Missing required field 'input'", param="input")
    if isinstance(value, str):
        if not value:
            raise bad_request("Field 'input' must not be an empty string", param="input")
        return value, 1, False
    if not isinstance(value, list) or not value:
        raise bad_request(
            "Field 'input' must be a non-empty string, array of strings, or array of token arrays", param="input"
        )
    if len(value) > MAX_INPUTS:
        raise bad_request(f"Field 'input' may hold at most {MAX_INPUTS} items", param="input")
    if all(isinstance(v, str) for v in value):
        if not all(value):
            raise bad_request("Field 'input' must not contain empty strings", param="input")
        return value, len(value), False
    if all(_is_token(v) for v in value):
        return value, 1, True
    if all(isinstance(v, list) and v and all(_is_token(t) for t in v) for v in value):
        return value, len(value), True
    raise bad_request(
        "Field 'input' must be a string, an array of strings, an array of token ids, or an array of token arrays "
        "(no mixing, no empty items)",
        param="input",
    )


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def estimate_tokens(value: Any) -> int:
    if isinstance(value, str):
        return max(1, math.ceil(len(value) / 4))
    if value and isinstance(value[0], str):
        return sum(estimate_tokens(v) for v in value)
    if value and isinstance(value[0], list):
        return sum(len(v) for v in value)
    return len(value)


def encode(vector: list[float]) -> str:
    """OpenAI's base64 encoding: little-endian float32s."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def render(result: Embeddings, *, model: str, b64: bool, tokens: int) -> bytes:
    data = [
        {"object": "embedding", "index": index, "embedding": encode(vector) if b64 else vector}
        for index, vector in enumerate(result.vectors)
    ]
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return orjson.dumps({"object": "list", "data": data, "model": model, "usage": usage})


async def create(request: Request, send: Any, record: Record, *, pinned: str | None = None) -> None:
    payload = pipeline.parse_json_object(await read_body(request, settings.MAX_BODY_BYTES))
    model = pipeline.require_model(payload)
    value, count, tokens_given = parse_input(payload.get("input"))
    dimensions = optional_int(payload, "dimensions", low=1, high=65536)
    b64 = optional_choice(payload, "encoding_format", ("float", "base64")) == "base64"
    plan = await plan_for(request, record, kind="embedding", model=model, pinned=pinned)
    for target in plan.targets:
        info = target.provider.model(target.model_id)
        if dimensions and info is not None and info.dimensions and dimensions > info.dimensions:
            raise bad_request(
                f"Field 'dimensions' ({dimensions}) exceeds the {info.dimensions} of {target.name}", param="dimensions"
            )
    body = {k: v for k, v in payload.items() if k not in _OWN_FIELDS}
    body.update(input=value, _tokens=tokens_given)
    if dimensions is not None:
        body["dimensions"] = dimensions

    async def attempt(target: Target, cred: Credential, adapter: MediaAdapter) -> Embeddings:
        obj = await call_json(adapter, adapter.embeddings_request(cred, target.model_id, body))
        return adapter.embeddings_result(obj, count=count)

    async def serve(send: Any) -> None:
        target, result = await until_disconnect(request, run_plan(request, plan, record, attempt))
        tokens = result.prompt_tokens or estimate_tokens(value)
        record.prompt_tokens = tokens
        await send_body(request, send, record, target, render(result, model=target.model_id, b64=b64, tokens=tokens))

    await idempotency.run(request, send, record, key_id=record.api_key_id, client=None, payload=payload, serve=serve)


async def models(request: Request, send: Any, record: Record) -> None:
    await send_listing(request, send, "embedding")
