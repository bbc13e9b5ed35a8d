"""Calls the gateway makes to its own data plane, in-process (combo tests, the semantic
cache's embeddings): an ASGI request to `gateway.app.application`, marked in the scope as
internal (no API key needed; no HTTP client can set a scope key). The request takes the whole
path of a client request — resolution, fallback, translation, usage record — without a
network round trip."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from .http import INTERNAL_CALL


async def call(
    path: str, payload: dict[str, Any], *, caller: str, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    """POST `payload` as JSON to `path`; (status, body). The caller bounds the time."""
    from .app import application

    body = orjson.dumps(payload)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        "client": ("127.0.0.1", 0),
        "server": ("omniroute-internal", 0),
        INTERNAL_CALL: caller,
    }
    sent_body = False
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never.wait()  # the client never goes away
        return {"type": "http.disconnect"}

    status = 0
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await application(scope, receive, send)
    return status, b"".join(chunks)
