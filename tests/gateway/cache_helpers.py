"""Shared pieces of the response-cache tests (the `cache_on` fixture is in conftest.py)."""

from __future__ import annotations

from typing import Any

from tests.fakes.provider import FakeProvider

CHAT_PATHS = ("/v1/chat/completions", "/v1/messages", "/v1/responses")
QUESTION: Any = [{"role": "user", "content": "What is the capital city of France?"}]


def upstream_chats(fake: FakeProvider) -> int:
    """Chat calls the fake provider received (embedding calls are not counted)."""
    return sum(1 for r in fake.requests if r.path in CHAT_PATHS or ":generateContent" in r.path or "Generate" in r.path)
