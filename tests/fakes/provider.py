"""A fake LLM provider for tests: a real aiohttp server on loopback, scripted and recorded.

The server runs in a daemon thread with its own event loop, so sync tests, async tests and
a gateway under test can all talk to it over real HTTP. Wire formats live in their own
modules (``openai_format``...), each contributing a route set; this module owns the server,
the behaviour queue and the record of requests.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.scripting import RECORDED_KEY, Behaviour, RecordedRequest, StreamEnded

__all__ = ["Behaviour", "FakeProvider", "RecordedRequest"]

# One route set per wire format; each takes the provider (a BehaviourSource).
# Each module has `routes(source) -> list[web.RouteDef]`; paths must not collide.
FORMAT_MODULES = (
    "openai_format",
    "anthropic_format",
    "gemini_format",
    "responses_format",
    "media_format",
    "deepgram_format",
    "assemblyai_format",
)


def _format_routes() -> list[Callable[[FakeProvider], list[web.RouteDef]]]:
    found = []
    for name in FORMAT_MODULES:
        try:
            module = importlib.import_module(f"tests.fakes.{name}")
        except ModuleNotFoundError as exc:  # a format still being written
            if exc.name != f"tests.fakes.{name}":
                raise
            continue
        found.append(module.routes)
    return found


FORMATS: list[Callable[[FakeProvider], list[web.RouteDef]]] = _format_routes()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Script:
    behaviour: Behaviour
    model: str | None
    remaining: int | None


class FakeProvider:
    """Usage: ``fake = FakeProvider().start()``, then ``fake.behave(...)`` and ``fake.requests``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._cancelled: list[RecordedRequest] = []
        self._scripts: list[_Script] = []
        self._last_id = 0
        self._first_id_since_reset = 1
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._inflight: set[asyncio.Task[Any]] = set()  # touched only on the server's loop
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        if self._loop is not None:
            raise RuntimeError("FakeProvider is already started")
        self._stopping = False
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, args=(loop,), name="fake-provider", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop the server; requests still open (stalled, streaming) are cut off, not waited for."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._stopping = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            self._loop = self._thread = self._runner = None
            self._port = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeProvider is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    # -- scripting and inspection (any thread) -------------------------------------------------

    def behave(self, behaviour: Behaviour, model: str | None = None, times: int | None = None) -> None:
        """Queue `behaviour` for requests for `model` (None: any model), `times` times (None: until reset)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for until reset)")
        with self._lock:
            self._scripts.append(_Script(behaviour, model, times))

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._cancelled.clear()
            self._scripts.clear()
            # Requests from before the reset that go away later must not show up as cancelled.
            self._first_id_since_reset = self._last_id + 1

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def cancelled(self) -> list[RecordedRequest]:
        """Requests whose client went away before the answer was complete."""
        with self._lock:
            return list(self._cancelled)

    def wait_for_cancelled(self, count: int = 1, timeout: float = 5.0) -> list[RecordedRequest]:
        """Wait until at least `count` requests were cancelled by their client; fail the test otherwise."""
        deadline = time.monotonic() + timeout
        while len(self.cancelled) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} cancelled request(s) within {timeout}s, got {self.cancelled}")
            time.sleep(0.01)
        return self.cancelled

    def behaviour_for(self, request: RecordedRequest, model: str | None = None) -> Behaviour:
        """The next scripted behaviour for this request (model-specific first), consuming one use of it.

        The model comes from the JSON body unless given (Gemini names it in the URL)."""
        if model is None:
            model = request.json.get("model") if isinstance(request.json, dict) else None
        with self._lock:
            script = next((s for s in self._scripts if s.model is not None and s.model == model), None)
            script = script or next((s for s in self._scripts if s.model is None), None)
            if script is None:
                return Behaviour()
            if script.remaining is not None:
                script.remaining -= 1
                if script.remaining == 0:
                    self._scripts.remove(script)
            return script.behaviour

    # -- server (the server's loop) ------------------------------------------------------------

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _serve(self) -> None:
        app = web.Application(middlewares=[self._record_middleware], client_max_size=64 * 1024 * 1024)
        for format_routes in FORMATS:
            app.add_routes(format_routes(self))
        # handler_cancellation: a client that goes away cancels its handler, which is how we notice.
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _shutdown(self) -> None:
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        entry = await self._record(request)
        request[RECORDED_KEY] = entry
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            return await handler(request)
        except StreamEnded as ended:
            if ended.client_gone:
                self._note_cancelled(entry)
            return ended.response
        except asyncio.CancelledError:
            self._note_cancelled(entry)
            raise
        finally:
            self._inflight.discard(task)

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        with self._lock:
            self._last_id += 1
            entry = RecordedRequest(
                id=self._last_id,
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=body,
                json=_parse_json(body),
            )
            self._requests.append(entry)
        return entry

    def _note_cancelled(self, entry: RecordedRequest) -> None:
        with self._lock:
            if not self._stopping and entry.id >= self._first_id_since_reset:
                self._cancelled.append(entry)


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None
