"""`/api/cache`: the response cache's numbers, and clearing it (docs/API.md §11)."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from gateway import cache_stats

from .base import ApiView
from .errors import InvalidInput


class CacheApi(ApiView):
    def get(self, request: Request) -> Response:
        return Response(cache_stats.cache_overview())

    def delete(self, request: Request) -> Response:
        unknown = sorted(set(request.query_params) - {"model"})
        if unknown:
            raise InvalidInput(f"Unknown query parameter {unknown[0]!r}; only 'model' is accepted", field=unknown[0])
        model = request.query_params.get("model")
        if model is not None:
            model = model.strip()
            if not model or len(model) > 300:
                raise InvalidInput("The query parameter 'model' must be a model name (1-300 characters)", field="model")
        return Response(cache_stats.cache_clear(model))
