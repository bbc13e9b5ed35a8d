"""Request logs through the running gateway: bodies stored except for noLog keys, never a
secret in any stored row, truncation, stream bodies, and /api/usage/request-logs filters."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.e2e.test_openai_chat import client, make_connection, make_key, records
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway
from usage.models import RequestLog, UsageRecord

pytestmark = pytest.mark.e2e
HI: Any = [{"role": "user", "content": "Hello there"}]


def request_logs(gateway: LiveGateway) -> list[RequestLog]:
    records(gateway)  # flushed: the logs are written in the same batches
    return list(RequestLog.objects.order_by("id"))


def stored_text(*models: type[Any]) -> str:
    """Every column of every row of the given tables, as text."""
    with connection.cursor() as cursor:
        parts: list[str] = []
        for model in models:
            cursor.execute(f"SELECT * FROM {model._meta.db_table}")
            parts.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(parts)


def test_bodies_stored_for_a_normal_key_and_not_for_a_no_log_key(
    gateway: LiveGateway, fake_provider: FakeProvider
) -> None:
    make_connection(fake_provider.openai_base_url)
    normal, private = make_key(), make_key(no_log=True)
    fake_provider.behave(Behaviour(reply="General Kenobi"))
    client(gateway, normal).chat.completions.create(model="openai/gpt-4o-mini", messages=HI)
    client(gateway, private).chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "my private question"}],
    )

    logged, hidden = request_logs(gateway)
    assert '"Hello there"' in logged.request_body
    assert "General Kenobi" in logged.response_body
    assert logged.bodies_logged and logged.status_code == 200 and logged.provider == "openai"
    assert (logged.request_headers or {})["content-type"] == "application/json"
    assert not hidden.bodies_logged and hidden.status_code == 200
    assert hidden.request_body == hidden.response_body == "" and hidden.request_headers is None
    assert "private question" not in stored_text(RequestLog, UsageRecord)


def test_no_secret_reaches_a_stored_row(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    upstream = "sk-upstream-SECRET-0123456789abcdef"
    make_connection(fake_provider.openai_base_url, api_key=upstream)
    key = make_key()
    # The provider echoes its key in the answer; the client puts keys in headers and the body.
    fake_provider.behave(Behaviour(reply=f"Your key is {upstream}, or AIzaSyA1234567890abcdefghijklmnopqrstuv"))
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": f"remember {key}"}]}
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key, "x-goog-api-key": key, "cookie": f"s={key}"}
    assert httpx.post(f"{gateway.base_url}/chat/completions", json=body, headers=headers).status_code == 200
    # Gemini's ?key= query parameter, on a request that fails authentication.
    httpx.post(
        f"{gateway.url}/v1beta/models/gemini-2.5-flash:generateContent?key={key}-wrong",
        json={"contents": [{"parts": [{"text": "hi"}]}]},
    )

    logs = request_logs(gateway)
    assert len(logs) == 2
    assert "Your key is [redacted]" in logs[0].response_body
    assert set(logs[0].request_headers or {}) >= {"content-type", "host"}
    text = stored_text(RequestLog, UsageRecord)
    for secret in (upstream, key, "AIzaSyA1234567890"):
        assert secret not in text
    assert "Bearer" not in text


def test_bodies_are_truncated(gateway: LiveGateway, fake_provider: FakeProvider, settings: Any) -> None:
    settings.REQUEST_LOG_MAX_BODY_BYTES = 1000
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(reply="short"))
    client(gateway, key).chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "é" * 1000}],
    )
    [log] = request_logs(gateway)
    assert log.request_truncated and not log.response_truncated
    assert len(log.request_body.encode()) <= 1000 + 3  # a character cut in half becomes U+FFFD
    assert log.request_body.startswith('{"model"')


def test_stream_body_is_the_client_format_stream(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(reply="one two three"))
    stream = client(gateway, key).chat.completions.create(model="openai/gpt-4o-mini", messages=HI, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "one two three"
    [log] = request_logs(gateway)
    assert log.stream and log.response_body.startswith("data: ")
    assert log.response_body.rstrip().endswith("data: [DONE]")
    assert '"stream":true' in log.request_body.replace(" ", "")


def test_turned_off_nothing_is_logged(gateway: LiveGateway, fake_provider: FakeProvider, settings: Any) -> None:
    settings.REQUEST_LOG_BODIES = False
    make_connection(fake_provider.openai_base_url)
    client(gateway, make_key()).chat.completions.create(model="openai/gpt-4o-mini", messages=HI)
    assert len(records(gateway)) == 1
    assert not RequestLog.objects.exists()


def test_api_filters_and_pages(gateway: LiveGateway, fake_provider: FakeProvider, operator: APIClient) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    fake_provider.behave(Behaviour(reply="ok"))
    for model in ("gpt-4o-mini", "gpt-4o", "gpt-4o-mini"):
        client(gateway, key).chat.completions.create(model=f"openai/{model}", messages=HI)
    with pytest.raises(openai.NotFoundError):
        client(gateway, key).chat.completions.create(model="nosuch/model", messages=HI)
    logs = request_logs(gateway)
    assert len(logs) == 4
    key_id = UsageRecord.objects.filter(status_code=200).first().api_key_id  # type: ignore[union-attr]

    def get(**params: Any) -> dict[str, Any]:
        response = operator.get("/api/usage/request-logs", params)
        assert response.status_code == 200, response.content
        return dict(response.json())

    everything = get()
    assert [row["id"] for row in everything["logs"]] == [log.id for log in reversed(logs)]
    assert everything["nextCursor"] is None
    first = everything["logs"][-1]
    assert first["requestBody"].startswith('{"model":"openai/gpt-4o-mini"')
    assert first["responseBody"] and first["bodiesLogged"] is True and first["keyId"] == key_id
    assert first["requestTruncated"] is False and first["statusCode"] == 200
    assert len(get(model="gpt-4o-mini")["logs"]) == 2
    assert len(get(provider="openai", status="success")["logs"]) == 3
    assert [row["statusCode"] for row in get(status="error")["logs"]] == [404]
    assert len(get(keyId=key_id)["logs"]) == 4 and get(keyId=key_id + 1000)["logs"] == []
    assert get(**{"from": "2000-01-01", "to": "2000-01-02"})["logs"] == []

    page = get(limit=3)
    assert len(page["logs"]) == 3 and page["nextCursor"]
    rest = get(limit=3, cursor=page["nextCursor"])
    assert [row["id"] for row in rest["logs"]] == [logs[0].id] and rest["nextCursor"] is None
    assert operator.get("/api/usage/request-logs", {"status": "bad"}).status_code == 400
    assert operator.get("/api/usage/request-logs", {"from": "yesterday"}).status_code == 400


def test_api_is_operator_only(db: None, inference_client: APIClient) -> None:
    assert inference_client.get("/api/usage/request-logs").status_code == 403
    assert APIClient().get("/api/usage/request-logs").status_code in (401, 403)
