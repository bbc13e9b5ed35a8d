"""A fast fake OpenAI upstream for the benchmark, run as its own process.

    python bench/fake_upstream.py --port 18000 --chunks 50

Raw asyncio protocol on uvloop with the httptools parser: every response is prebuilt bytes,
so the fake costs a few microseconds per request and the benchmark measures the proxy, not
the upstream. It speaks the OpenAI Chat Completions wire format:

- ``POST /v1/chat/completions`` — a ``chat.completion`` object with usage, or, when the body
  asks for ``"stream": true``, ``--chunks`` ``chat.completion.chunk`` events (one HTTP chunk
  each, optionally ``--chunk-interval-ms`` apart), a usage-only chunk and ``data: [DONE]``;
- ``GET /v1/models`` — a model list;
- ``GET /stats`` — how many chat requests it answered (to prove a proxy really called it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections import deque
from typing import Any, cast

import httptools

MODEL = "gpt-4o-mini"
CREATED = 1_730_000_000
REPLY_WORDS = ["Hello", " from", " the", " fake", " upstream", "."]
PROMPT_TOKENS = 12


def _http_response(status: str, content_type: bytes, body: bytes) -> bytes:
    head = (
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"content-type: " + content_type + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"x-request-id: fake\r\n"
        b"\r\n"
    )
    return head + body


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def completion_body() -> bytes:
    text = "".join(REPLY_WORDS)
    return _json(
        {
            "id": "chatcmpl-fakeupstream0001",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": "fp_fake",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": len(REPLY_WORDS),
                "total_tokens": PROMPT_TOKENS + len(REPLY_WORDS),
            },
        }
    )


def stream_events(chunks: int) -> list[bytes]:
    """`chunks` content events (the last one ends the message), a usage event and [DONE]."""
    base = {"id": "chatcmpl-fakeupstream0002", "object": "chat.completion.chunk", "created": CREATED, "model": MODEL}
    events = []
    for i in range(chunks):
        delta: dict[str, Any] = {"content": f" w{i}"}
        if i == 0:
            delta["role"] = "assistant"
        finish = "stop" if i == chunks - 1 else None
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        events.append(b"data: " + _json(chunk) + b"\n\n")
    usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": chunks, "total_tokens": PROMPT_TOKENS + chunks}
    events.append(b"data: " + _json({**base, "choices": [], "usage": usage}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _http_chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


class Responses:
    """Every byte the server can send, built once at start-up."""

    def __init__(self, chunks: int) -> None:
        self.completion = _http_response("200 OK", b"application/json", completion_body())
        models = {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED, "owned_by": "fake"}]}
        self.models = _http_response("200 OK", b"application/json", _json(models))
        self.not_found = _http_response("404 Not Found", b"application/json", b'{"error":{"message":"not found"}}')
        self.bad_request = _http_response("400 Bad Request", b"application/json", b'{"error":{"message":"bad"}}')
        self.stream_head = (
            b"HTTP/1.1 200 OK\r\n"
            b"content-type: text/event-stream; charset=utf-8\r\n"
            b"cache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\n"
            b"x-request-id: fake\r\n"
            b"\r\n"
        )
        self.stream_frames = [_http_chunk(event) for event in stream_events(chunks)]
        self.stream_end = b"0\r\n\r\n"
        # Sent at once when there is no pause between chunks: the first frame goes with the
        # head (one write), the rest one write each so the client sees a real stream.
        self.stream_first = self.stream_head + self.stream_frames[0]


class Stats:
    chat = 0
    stream = 0


def _wants_stream(body: bytes) -> bool:
    return b'"stream":true' in body or b'"stream": true' in body


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: HTTP/1.1 keep-alive, requests answered in order."""

    def __init__(self, responses: Responses, interval: float) -> None:
        self.responses = responses
        self.interval = interval
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.streaming = False
        self.pending: deque[tuple[bytes, bytes, bytes, bool]] = deque()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(self.responses.bad_request)
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        request = (self.parser.get_method(), self.url, b"".join(self.body), self.parser.should_keep_alive())
        if self.streaming:
            self.pending.append(request)  # a pipelined request waits for the stream to end
        else:
            self.answer(*request)

    def answer(self, method: bytes, url: bytes, body: bytes, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        path = url.split(b"?", 1)[0]
        if method == b"POST" and path.endswith(b"/chat/completions"):
            Stats.chat += 1
            if _wants_stream(body):
                Stats.stream += 1
                self.streaming = True
                asyncio.get_running_loop().create_task(self.stream(keep_alive))
                return
            transport.write(self.responses.completion)
        elif method == b"GET" and path.endswith(b"/models"):
            transport.write(self.responses.models)
        elif method == b"GET" and path == b"/stats":
            stats = _json({"chat": Stats.chat, "stream": Stats.stream})
            transport.write(_http_response("200 OK", b"application/json", stats))
        else:
            transport.write(self.responses.not_found)
        if not keep_alive:
            transport.close()

    async def stream(self, keep_alive: bool) -> None:
        r = self.responses
        try:
            if self.transport is None:
                return
            self.transport.write(r.stream_first)
            for frame in r.stream_frames[1:]:
                await asyncio.sleep(self.interval)
                if self.transport is None:
                    return
                self.transport.write(frame)
            self.transport.write(r.stream_end)
            if not keep_alive:
                self.transport.close()
                return
        finally:
            self.streaming = False
        while self.pending and not self.streaming:
            self.answer(*self.pending.popleft())


async def serve(host: str, port: int, chunks: int, interval_ms: float) -> None:
    loop = asyncio.get_running_loop()
    responses = Responses(chunks)
    interval = interval_ms / 1000
    server = await loop.create_server(lambda: UpstreamProtocol(responses, interval), host, port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream listening on http://{host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--chunks", type=int, default=50, help="content events per streamed answer")
    parser.add_argument("--chunk-interval-ms", type=float, default=0.0, help="pause between stream events")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # still works, only slower
        asyncio.run(serve(args.host, args.port, args.chunks, args.chunk_interval_ms))
    else:
        uvloop.run(serve(args.host, args.port, args.chunks, args.chunk_interval_ms))


if __name__ == "__main__":
    main()
