"""Client sessions end to end: the session header, GET /api/sessions and per-key maxSessions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from django.conf import settings
from django.test import Client

from gateway.models import ApiKey
from gateway.sessions import reset_tracker_for_tests
from tests.e2e.test_openai_chat import make_connection, make_key
from tests.fakes.provider import FakeProvider
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    """Sessions of earlier tests (whose key ids may come back) must not count here."""
    if settings.REDIS_URL:
        from gateway.redis_client import get_sync_redis

        redis = get_sync_redis()
        keys = list(redis.scan_iter(match="omniroute:sessions:*", count=500))
        if keys:
            redis.delete(*keys)
    reset_tracker_for_tests()
    yield
    reset_tracker_for_tests()


def turn(client: openai.OpenAI, conversation: list[Any], **kw: Any) -> str:
    """One turn of a conversation; returns the session id the gateway answered with."""
    response = client.chat.completions.with_raw_response.create(model="openai/gpt-4o", messages=conversation, **kw)
    answer = response.parse().choices[0].message.content or ""
    conversation.append({"role": "assistant", "content": answer})
    return response.headers["x-omniroute-session-id"]


def listed(staff: Client, key_id: int, count: int, requests: int) -> list[dict[str, Any]]:
    """GET /api/sessions until it shows `count` sessions of the key with `requests` in all
    (Redis batches lag ~1 s; a batch of an earlier test's key may still land, so only this
    key's sessions are looked at)."""
    deadline = time.monotonic() + 5
    while True:
        response = staff.get("/api/sessions")
        assert response.status_code == 200
        sessions: list[dict[str, Any]] = [s for s in response.json()["sessions"] if s["keyId"] == key_id]
        if len(sessions) == count and sum(s["requests"] for s in sessions) == requests:
            return sessions
        assert time.monotonic() < deadline, sessions
        time.sleep(0.1)


def test_conversations_are_sessions_and_are_listed(
    gateway: LiveGateway, fake_provider: FakeProvider, staff: Client
) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    first = [{"role": "system", "content": "be brief"}, {"role": "user", "content": f"hello {uuid.uuid4()}"}]
    second = [{"role": "user", "content": f"another topic {uuid.uuid4()}"}]
    one = turn(client, first)
    first.append({"role": "user", "content": "and then?"})
    assert turn(client, first) == one  # the next turn of the same conversation
    two = turn(client, second)
    assert two != one
    named = turn(client, [{"role": "user", "content": "x"}], extra_headers={"x-session-id": "my-chat.42"})
    assert named == "my-chat.42"
    key_row = ApiKey.objects.get()
    sessions = {s["id"]: s for s in listed(staff, key_row.pk, 3, 4)}
    assert set(sessions) == {one, two, "my-chat.42"}
    row = sessions[one]
    assert row["requests"] == 2 and row["keyId"] == key_row.pk and row["keyName"] == key_row.name
    assert row["model"] == "openai/gpt-4o" and row["firstSeen"] <= row["lastSeen"]


def test_max_sessions_refuses_a_new_session_beyond_the_limit(
    gateway: LiveGateway, fake_provider: FakeProvider, staff: Client
) -> None:
    make_connection(fake_provider.openai_base_url)
    created = staff.post("/api/keys", {"name": "limited", "maxSessions": 1}, content_type="application/json")
    assert created.status_code == 201 and created.json()["maxSessions"] == 1
    client = openai.OpenAI(base_url=gateway.base_url, api_key=created.json()["key"], max_retries=0)
    conversation = [{"role": "user", "content": f"first {uuid.uuid4()}"}]
    turn(client, conversation)
    with pytest.raises(openai.RateLimitError, match="at most 1 active sessions"):
        turn(client, [{"role": "user", "content": "a second conversation"}])
    conversation.append({"role": "user", "content": "go on"})
    turn(client, conversation)  # the existing session continues
    # Another client format counts against the same key.
    other = anthropic.Anthropic(base_url=gateway.url, api_key=created.json()["key"], max_retries=0)
    with pytest.raises(anthropic.RateLimitError):
        other.messages.create(model="openai/gpt-4o", max_tokens=10, messages=[{"role": "user", "content": "new"}])
    # Without a limit, a new session is fine.
    patched = staff.patch(f"/api/keys/{created.json()['id']}", {"maxSessions": None}, content_type="application/json")
    assert patched.status_code == 200 and patched.json()["maxSessions"] is None
    deadline = time.monotonic() + 5
    while True:  # the gateway's snapshot follows the change
        try:
            turn(client, [{"role": "user", "content": "a second conversation"}])
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_invalid_session_header_is_400(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    client = openai.OpenAI(base_url=gateway.base_url, api_key=make_key(), max_retries=0)
    with pytest.raises(openai.BadRequestError, match="x-session-id"):
        turn(client, [{"role": "user", "content": "x"}], extra_headers={"x-session-id": "bad id with spaces"})


def test_sessions_api_needs_an_operator(gateway: LiveGateway) -> None:
    assert Client().get("/api/sessions").status_code in (401, 403)
