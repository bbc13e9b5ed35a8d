"""The non-chat endpoints: embeddings, image generation, audio transcription (docs/API.md §4)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from ..http import Request
from ..recorder import Record
from . import audio, embeddings, images
from .common import check_chat

__all__ = ["ROUTES", "check_chat", "pinned_route"]

Handler = Callable[[Request, Any, Record], Awaitable[None]]
Route = tuple[str, dict[str, Handler], bool]

# path -> (client format for errors, {method: handler}, recorded as usage); GETs are listings.
ROUTES: dict[str, Route] = {
    "/v1/embeddings": ("openai", {"POST": embeddings.create, "GET": embeddings.models}, True),
    "/v1/images/generations": ("openai", {"POST": images.create, "GET": images.models}, True),
    "/v1/audio/transcriptions": ("openai", {"POST": audio.create, "GET": audio.models}, True),
}
_PINNED = re.compile(r"^/v1/providers/(?P<provider>[^/]+)/(?P<endpoint>embeddings|images/generations)$")


async def _pinned(request: Request, send: Any, record: Record) -> None:
    match = _PINNED.match(request.path.rstrip("/"))
    assert match is not None
    create = embeddings.create if match["endpoint"] == "embeddings" else images.create
    await create(request, send, record, pinned=unquote(match["provider"]))


_PINNED_ROUTE: Route = ("openai", {"POST": _pinned}, True)


def pinned_route(path: str) -> Route | None:
    """The route of /v1/providers/{provider}/embeddings and .../images/generations."""
    return _PINNED_ROUTE if _PINNED.match(path) else None
