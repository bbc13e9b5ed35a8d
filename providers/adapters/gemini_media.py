"""Gemini embeddings: `models/{model}:batchEmbedContents`, answered in the OpenAI shape.

Gemini reports no token usage for embeddings; the gateway estimates it (~4 characters a
token) so the request is still priced. Token-array input has no Gemini equivalent.
"""

from __future__ import annotations

from typing import Any

import orjson

from .base import Credential, ProviderError, UpstreamRequest
from .gemini import model_path
from .gemini.errors import provider_error
from .media import Embeddings, MediaAdapter, bad_upstream

MAX_BATCH = 100  # batchEmbedContents takes at most 100 requests


class GeminiMediaAdapter(MediaAdapter):
    format = "gemini"

    def embeddings_request(self, cred: Credential, model_id: str, body: dict[str, Any]) -> UpstreamRequest:
        if body.get("_tokens"):
            raise ProviderError(
                400, f"Token-array input is not supported by {cred.provider.id}/{model_id}", retryable=False
            )
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if len(inputs) > MAX_BATCH:
            raise ProviderError(
                400, f"More than {MAX_BATCH} inputs is not supported by {cred.provider.id}/{model_id}", retryable=False
            )
        name = model_id if model_id.startswith("models/") else f"models/{model_id}"
        requests = []
        for text in inputs:
            item: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
            if body.get("dimensions") is not None:
                item["outputDimensionality"] = body["dimensions"]
            if isinstance(body.get("task_type"), str):
                item["taskType"] = body["task_type"]
            requests.append(item)
        headers = {**cred.headers, "Content-Type": "application/json"}
        url = model_path(cred.base_url, model_id) + ":batchEmbedContents"
        return UpstreamRequest("POST", url, headers, orjson.dumps({"requests": requests}))

    def embeddings_result(self, obj: Any, *, count: int) -> Embeddings:
        items = obj.get("embeddings") if isinstance(obj, dict) else None
        if not isinstance(items, list) or len(items) != count:
            raise bad_upstream(
                f"Upstream returned {len(items) if isinstance(items, list) else 'no'} embeddings for {count} inputs"
            )
        vectors = []
        for item in items:
            values = item.get("values") if isinstance(item, dict) else None
            if not isinstance(values, list):
                raise bad_upstream("Upstream returned an embedding without values")
            vectors.append(values)
        return Embeddings(vectors=vectors)

    def error_from_response(self, status: int, headers: dict[str, str], body: bytes) -> ProviderError:
        return provider_error(status, headers, body)


ADAPTER = GeminiMediaAdapter()
