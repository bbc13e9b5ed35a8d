"""Bad input gets a clear 4xx in the OpenAI error shape, never a 500."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.models import ApiKey
from tests.e2e.test_openai_chat import make_connection, make_key
from tests.fakes.provider import FakeProvider
from tests.live_server import LiveGateway

pytestmark = pytest.mark.e2e


def post(gateway: LiveGateway, body: bytes | str, key: str | None, **headers: str) -> httpx.Response:
    if key:
        headers["Authorization"] = f"Bearer {key}"
    headers.setdefault("Content-Type", "application/json")
    return httpx.post(f"{gateway.base_url}/chat/completions", content=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ("{not json", 400, "Invalid JSON body"),
        ("", 400, "empty"),
        ("[1, 2]", 400, "must be a JSON object"),
        ('{"messages": [{"role": "user", "content": "x"}]}', 400, "Missing required field 'model'"),
        ('{"model": 5, "messages": [{"role": "user", "content": "x"}]}', 400, "'model' must be a non-empty string"),
        ('{"model": "openai/gpt-4o"}', 400, "Missing required field 'messages'"),
        ('{"model": "openai/gpt-4o", "messages": "hi"}', 400, "'messages' must be a non-empty array"),
        ('{"model": "openai/gpt-4o", "messages": [5]}', 400, "messages[0] must be an object"),
        ('{"model": "openai/gpt-4o", "messages": [{"content": "x"}]}', 400, "messages[0].role"),
        (
            '{"model": "openai/gpt-4o", "messages": [{"role": "user"}], "stream": "yes"}',
            400,
            "'stream' must be a boolean",
        ),
        ('{"model": "openai/gpt-4o", "messages": [{"role": "user"}], "max_tokens": -1}', 400, "'max_tokens'"),
        ('{"model": "openai/gpt-4o", "messages": [{"role": "user"}], "temperature": "hot"}', 400, "'temperature'"),
        ('{"model": "nosuch/model-x", "messages": [{"role": "user"}]}', 404, "Unknown provider 'nosuch'"),
        ('{"model": "no-such-model-anywhere", "messages": [{"role": "user"}]}', 404, "Unknown model"),
        ('{"model": "openai/", "messages": [{"role": "user"}]}', 400, "names no model"),
        ('{"model": "anthropic/claude-x", "messages": [{"role": "user"}]}', 503, "No active connection"),
    ],
)
def test_bad_bodies(gateway: LiveGateway, fake_provider: FakeProvider, body: str, status: int, needle: str) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    resp = post(gateway, body, key)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert needle in error["message"]
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")
    assert resp.headers["x-request-id"]
    assert fake_provider.requests == []


def test_oversized_body_is_413(gateway: LiveGateway, settings: pytest.FixtureRequest) -> None:
    settings.MAX_BODY_BYTES = 64 * 1024  # type: ignore[attr-defined]
    key = make_key()
    big = '{"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "' + "x" * 200_000 + '"}]}'
    resp = post(gateway, big, key)
    assert resp.status_code == 413
    assert "too large" in resp.json()["error"]["message"]


def test_missing_key(gateway: LiveGateway) -> None:
    resp = post(gateway, '{"model": "openai/gpt-4o", "messages": [{"role": "user"}]}', None)
    assert resp.status_code == 401
    assert resp.json()["error"] == {
        "message": "Missing API key",
        "type": "authentication_error",
        "code": "missing_api_key",
    }


def test_unknown_key(gateway: LiveGateway) -> None:
    resp = post(gateway, '{"model": "openai/gpt-4o", "messages": [{"role": "user"}]}', "sk-omni-not-a-real-key")
    assert resp.status_code == 401
    assert resp.json()["error"]["message"] == "Invalid API key"


def test_disabled_key(gateway: LiveGateway) -> None:
    key = make_key(is_active=False)
    resp = post(gateway, '{"model": "openai/gpt-4o", "messages": [{"role": "user"}]}', key)
    assert resp.status_code == 401
    assert "disabled" in resp.json()["error"]["message"]


def test_x_api_key_header_is_accepted(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    resp = post(gateway, '{"model": "openai/gpt-4o", "messages": [{"role": "user"}]}', None, **{"x-api-key": key})
    assert resp.status_code == 200


def test_model_not_allowed_for_key(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key(allowed_models=["openai/gpt-4o-mini", "groq/*"])
    resp = post(gateway, '{"model": "openai/gpt-4o", "messages": [{"role": "user"}]}', key)
    assert resp.status_code == 403
    assert resp.json()["error"]["type"] == "permission_error"
    ok = post(gateway, '{"model": "openai/gpt-4o-mini", "messages": [{"role": "user"}]}', key)
    assert ok.status_code == 200


def test_key_disabled_after_start_is_refused(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    make_connection(fake_provider.openai_base_url)
    key = make_key()
    body = '{"model": "openai/gpt-4o", "messages": [{"role": "user"}]}'
    assert post(gateway, body, key).status_code == 200
    obj = ApiKey.objects.get()
    obj.is_active = False
    obj.save()
    assert post(gateway, body, key).status_code == 401


def test_unknown_endpoint_and_wrong_method(gateway: LiveGateway) -> None:
    resp = httpx.get(f"{gateway.base_url}/nope", timeout=5)
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = httpx.get(f"{gateway.base_url}/chat/completions", timeout=5)
    assert resp.status_code == 405


def test_request_id_is_echoed(gateway: LiveGateway) -> None:
    resp = httpx.get(f"{gateway.base_url}/models", headers={"X-Request-Id": "abc-123"}, timeout=5)
    assert resp.headers["x-request-id"] == "abc-123"
    resp = httpx.get(f"{gateway.base_url}/models", headers={"X-Request-Id": "bad id!"}, timeout=5)
    assert resp.headers["x-request-id"] != "bad id!"


def test_management_api_body_limit_applies_before_django_reads_it(
    gateway: LiveGateway, settings: pytest.FixtureRequest
) -> None:
    settings.MAX_BODY_BYTES = 64 * 1024  # type: ignore[attr-defined]
    resp = httpx.post(f"{gateway.url}/api/keys", content=b"x" * 100_000, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert "too large" in resp.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"y" * 10_000

    resp = httpx.post(f"{gateway.url}/api/keys", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
