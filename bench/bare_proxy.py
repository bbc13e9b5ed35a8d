"""The bare proxy: the minimal Python pass-through that no Python gateway can beat.

    python bench/bare_proxy.py --port 18001 --upstream http://127.0.0.1:18000

A plain ASGI callable (no framework, no middleware, no auth, no logging) served by uvicorn
with uvloop and httptools in one worker, the same server stack the gateway runs on. It
forwards ``POST /v1/chat/completions`` with the client's body unchanged to the upstream
through one long-lived aiohttp ClientSession whose connector has the settings of the
gateway's ``providers/outbound.py`` (``TCPConnector(limit=0, limit_per_host=1024,
keepalive_timeout=60)``), and relays the answer: a whole body with its length, or a stream
chunk by chunk as aiohttp receives it (``iter_any``, as the gateway does).

The benchmark uses it as the floor for a Python proxy on this machine: whatever the gateway
costs on top of it is the gateway's own work (auth, routing, translation, recording, logging).
Any other path answers 404; an upstream failure answers 502.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHAT_PATH = "/v1/chat/completions"
UPSTREAM_KEY = "sk-fake-upstream-key"  # what the gateway and LiteLLM send the fake upstream too

_NOT_FOUND = b'{"error":{"message":"not found"}}'
_JSON = (b"content-type", b"application/json")
_STREAM_HEADERS = [(b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


class BareProxy:
    """The ASGI application: `upstream` is the base URL (``http://host:port``) without a path."""

    def __init__(self, upstream: str) -> None:
        self.chat_url = upstream.rstrip("/") + CHAT_PATH
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {UPSTREAM_KEY}"}
        self.session: aiohttp.ClientSession | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=1024,
            keepalive_timeout=60,
            ttl_dns_cache=300,
            enable_cleanup_closed=True,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if scope["method"] == "POST" and scope["path"] == CHAT_PATH:
                await self.chat(receive, send)
            else:
                await _answer(send, 404, _NOT_FOUND)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.session = self._new_session()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def chat(self, receive: Receive, send: Send) -> None:
        message = await receive()
        body: bytes = message.get("body", b"")
        if message.get("more_body"):
            parts = [body]
            while message.get("more_body"):
                message = await receive()
                parts.append(message.get("body", b""))
            body = b"".join(parts)
        session = self.session
        if session is None:  # no lifespan (e.g. --lifespan off): create on first use
            session = self.session = self._new_session()
        started = False
        try:
            async with session.post(self.chat_url, data=body, headers=self.headers) as resp:
                content_type = resp.headers.get("Content-Type", "application/json").encode("latin-1")
                if content_type.startswith(b"text/event-stream"):
                    headers = [(b"content-type", content_type), *_STREAM_HEADERS]
                    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
                    started = True
                    async for chunk in resp.content.iter_any():
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                else:
                    data = await resp.read()
                    headers = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
                    await send({"type": "http.response.start", "status": resp.status, "headers": headers})
                    started = True
                    await send({"type": "http.response.body", "body": data})
        except (aiohttp.ClientError, TimeoutError) as exc:
            if started:
                raise  # mid-stream: uvicorn closes the connection
            message_body = b'{"error":{"message":"upstream failed: ' + exc.__class__.__name__.encode() + b'"}}'
            await _answer(send, 502, message_body)


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18001)
    parser.add_argument("--upstream", required=True, help="base URL of the upstream, e.g. http://127.0.0.1:18000")
    args = parser.parse_args()

    import uvicorn

    uvicorn.run(
        BareProxy(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
