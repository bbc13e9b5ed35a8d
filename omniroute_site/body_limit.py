"""Request body limit for the Django side, enforced before Django buffers the body.

Django's ASGI handler reads the whole body into a temporary file before any view runs, so
the limit must sit in front of it: by Content-Length at once, and by counting the bytes of
bodies sent without one.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings

UPLOAD_PATHS = ("/api/db-backups/import",)


def _limit_for(path: str) -> int:
    return settings.MAX_UPLOAD_BYTES if path.startswith(UPLOAD_PATHS) else settings.MAX_BODY_BYTES


async def _reject(send: Any, limit: int) -> None:
    body = orjson.dumps(
        {
            "error": {
                "message": f"Request body too large. Maximum allowed: {limit / (1024 * 1024):g} MB",
                "type": "payload_too_large",
            }
        }
    )
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit = _limit_for(scope["path"])
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    return await _reject(send, limit)
        received = 0

        async def counted_receive() -> dict[str, Any]:
            nonlocal received
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge
            return message

        try:
            return await self.app(scope, counted_receive, send)
        except PayloadTooLarge:
            return await _reject(send, limit)


class PayloadTooLarge(Exception):
    pass
