"""The send wrapper shared by idempotency and the response cache (gateway/capture.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.capture import NOT_CAPTURED, Capture


def run(capture: Capture, messages: list[dict[str, Any]]) -> None:
    async def go() -> None:
        for message in messages:
            await capture(message)

    asyncio.run(go())


STREAM = [
    {"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"r1"), (b"a", b"1")]},
    {"type": "http.response.body", "body": b"one ", "more_body": True},
    {"type": "http.response.body", "body": b": progress\n\n", "more_body": True, NOT_CAPTURED: True},
    {"type": "http.response.body", "body": b"two", "more_body": True},
    {"type": "http.response.body", "body": b"", "more_body": False},
]


def test_on_complete_sees_the_whole_answer_before_the_last_message_goes_out() -> None:
    forwarded: list[dict[str, Any]] = []
    seen: list[tuple[bytes, int]] = []

    async def send(message: dict[str, Any]) -> None:
        forwarded.append(message)

    capture = Capture(
        send, extra_headers=[(b"x-extra", b"y")], on_complete=lambda body: seen.append((body, len(forwarded)))
    )
    run(capture, STREAM)

    assert seen == [(b"one two", 4)]  # called once, when 4 of the 5 messages had gone out
    assert len(forwarded) == 5
    assert (b"x-extra", b"y") in forwarded[0]["headers"]
    assert capture.headers == [(b"a", b"1")]  # per-request and client-only headers are not kept
    assert b"".join(capture.chunks) == b"one two"


def test_an_answer_over_the_limit_is_passed_on_but_never_completed() -> None:
    forwarded: list[bytes] = []
    seen: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        forwarded.append(message.get("body", b""))

    capture = Capture(send, limit=5, on_complete=seen.append)
    run(capture, STREAM)

    assert seen == [] and capture.overflowed and capture.result("d") is None
    assert b"".join(forwarded) == b"one : progress\n\ntwo"
