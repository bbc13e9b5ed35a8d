"""/api/providers: CRUD in camelCase, the key encrypted at rest and never returned, bad input,
and the live checks (/test, /models, /validate) against a real HTTP stub on loopback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection as db
from rest_framework.test import APIClient

from providers.crypto import decrypt_secret
from providers.models import ProviderConnection
from tests.factories import ApiKeyFactory, ProviderConnectionFactory

pytestmark = pytest.mark.django_db

GOOD_KEY = "sk-upstream-good-0123456789abcdef"
CONNECTION_FIELDS = {
    "id",
    "provider",
    "name",
    "priority",
    "isActive",
    "baseUrl",
    "defaultModel",
    "providerSpecificData",
    "apiKeyHint",
    "testStatus",
    "lastError",
    "lastTestedAt",
    "createdAt",
    "updatedAt",
}


class StubProvider(ThreadingHTTPServer):
    """A tiny provider on 127.0.0.1: `/v1/models` (checks the bearer key), plus broken variants."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StubHandler)
        self.seen: list[dict[str, str]] = []
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _StubHandler(BaseHTTPRequestHandler):
    server: StubProvider

    def do_GET(self) -> None:
        self.server.seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        auth = self.headers.get("Authorization", "")
        if self.path == "/down/v1/models":
            self._send(503, b'{"error": {"message": "overloaded, try later"}}')
        elif self.path == "/garbage/v1/models":
            self._send(200, b"<html>not json</html>")
        elif self.path == "/gemini/v1beta/models":
            gemini = {"models": [{"name": "models/gemini-2.0-flash"}, {"name": "models/text-embedding-004"}]}
            self._send(200, json.dumps(gemini).encode())
        elif self.path != "/v1/models":
            self._send(404, b'{"error": {"message": "no such route"}}')
        elif auth != f"Bearer {GOOD_KEY}":
            # Like OpenAI, the error echoes (part of) the key it was given.
            message = f"Incorrect API key provided: {auth.removeprefix('Bearer ')}"
            self._send(401, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode())
        else:
            models = {
                "object": "list",
                "data": [{"id": "stub-large"}, {"id": "stub-small"}, {"id": "stub-large"}],
            }
            self._send(200, json.dumps(models).encode())

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stub() -> Iterator[StubProvider]:
    server = StubProvider()
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def client(admin_api: APIClient) -> APIClient:
    return admin_api


def create(client: APIClient, **overrides: Any) -> dict[str, Any]:
    body = {"provider": "openai", "name": "main", "apiKey": GOOD_KEY, **overrides}
    response = client.post("/api/providers", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["connection"]


# --- CRUD and secrets ---------------------------------------------------------------------


def test_create_returns_camelcase_connection_without_the_key(client: APIClient) -> None:
    response = client.post(
        "/api/providers",
        {
            "provider": "openai",
            "name": "primary",
            "apiKey": GOOD_KEY,
            "baseUrl": "https://proxy.example.com/v1/",
            "priority": 3,
            "isActive": False,
            "defaultModel": "gpt-4o-mini",
            "providerSpecificData": {"organization": "org-1"},
        },
        format="json",
    )
    assert response.status_code == 201
    conn = response.json()["connection"]
    assert set(conn) == CONNECTION_FIELDS
    assert conn["provider"] == "openai"
    assert conn["baseUrl"] == "https://proxy.example.com/v1"
    assert (conn["priority"], conn["isActive"], conn["defaultModel"]) == (3, False, "gpt-4o-mini")
    assert conn["providerSpecificData"] == {"organization": "org-1"}
    assert conn["apiKeyHint"] == "sk-…cdef"
    assert conn["testStatus"] == "" and conn["lastTestedAt"] is None
    assert GOOD_KEY not in response.content.decode()


def test_key_is_encrypted_at_rest_and_never_returned(client: APIClient) -> None:
    conn_id = create(client)["id"]
    with db.cursor() as cursor:
        cursor.execute("SELECT api_key_encrypted FROM providers_providerconnection WHERE id = %s", [conn_id])
        (raw,) = cursor.fetchone()
    assert raw and raw != GOOD_KEY and GOOD_KEY not in raw
    assert decrypt_secret(raw) == GOOD_KEY
    for response in (
        client.get("/api/providers"),
        client.get(f"/api/providers/{conn_id}"),
        client.put(f"/api/providers/{conn_id}", {"name": "renamed"}, format="json"),
    ):
        text = response.content.decode()
        assert GOOD_KEY not in text
        assert raw not in text


def test_alias_resolves_to_provider_id(client: APIClient) -> None:
    assert create(client, provider="ds", name="deep")["provider"] == "deepseek"
    assert create(client, provider="OpenAI", name="caps")["provider"] == "openai"


def test_list_is_ordered_by_priority(client: APIClient) -> None:
    ProviderConnectionFactory.create(name="third", priority=9)
    ProviderConnectionFactory.create(name="first", priority=1)
    ProviderConnectionFactory.create(name="second", priority=5)
    response = client.get("/api/providers")
    assert [c["name"] for c in response.json()["connections"]] == ["first", "second", "third"]
    assert ProviderConnectionFactory._meta.declarations["api_key"] not in response.content.decode()


def test_get_put_partial_delete(client: APIClient) -> None:
    conn = create(client, priority=2)
    path = f"/api/providers/{conn['id']}"
    assert client.get(path).json()["connection"]["name"] == "main"

    updated = client.put(path, {"name": "renamed", "isActive": False}, format="json")
    assert updated.status_code == 200
    body = updated.json()["connection"]
    assert (body["name"], body["isActive"], body["priority"]) == ("renamed", False, 2)
    row = ProviderConnection.objects.get(pk=conn["id"])
    assert row.api_key == GOOD_KEY, "a PUT without apiKey keeps the stored key"

    rotated = client.put(path, {"apiKey": "sk-rotated-key-999999"}, format="json").json()["connection"]
    assert rotated["apiKeyHint"] == "sk-…9999"
    row.refresh_from_db()
    assert row.api_key == "sk-rotated-key-999999"

    deleted = client.delete(path)
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Connection deleted"}
    assert client.get(path).status_code == 404


def test_put_accepts_an_echoed_get_body(client: APIClient) -> None:
    conn = create(client)
    conn["name"] = "edited"
    response = client.put(f"/api/providers/{conn['id']}", conn, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["connection"]["name"] == "edited"


def test_unknown_connection_is_404(client: APIClient) -> None:
    for method, path in [
        ("get", "/api/providers/4242"),
        ("delete", "/api/providers/4242"),
        ("post", "/api/providers/4242/test"),
        ("get", "/api/providers/4242/models"),
    ]:
        response = getattr(client, method)(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["message"] == "Connection 4242 not found"


def test_inference_key_cannot_manage_providers() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="inference")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get("/api/providers").status_code == 403
    assert (
        api.post("/api/providers", {"provider": "openai", "name": "x", "apiKey": "k"}, format="json").status_code == 403
    )
    assert APIClient().get("/api/providers").status_code == 401


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"provider": "nosuchprovider"}, "provider", "nosuchprovider"),
        ({"provider": ""}, "provider", "provider"),
        ({"provider": 5}, "provider", "string"),
        ({"baseUrl": "ftp://example.com"}, "baseUrl", "http"),
        ({"baseUrl": "not a url"}, "baseUrl", "http"),
        ({"baseUrl": "https://"}, "baseUrl", "http"),
        ({"baseUrl": "http://host:99999/v1"}, "baseUrl", "http"),
        ({"name": "n" * 5000}, "name", "200"),
        ({"name": ["a"]}, "name", "string"),
        ({"apiKey": ""}, "apiKey", "required"),
        ({"apiKey": 12345}, "apiKey", "string"),
        ({"priority": "1"}, "priority", "integer"),
        ({"priority": -1}, "priority", "0"),
        ({"isActive": "true"}, "isActive", "true or false"),
        ({"providerSpecificData": ["x"]}, "providerSpecificData", "dictionary"),
        ({"api_key": "sk-x"}, "api_key", "apiKey"),
    ],
)
def test_bad_input_is_400_naming_the_field(client: APIClient, overrides: dict, field: str, fragment: str) -> None:
    body = {"provider": "openai", "name": "main", "apiKey": GOOD_KEY, **overrides}
    response = client.post("/api/providers", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    details = {d["field"]: d["message"] for d in error["details"]}
    assert field in details
    assert fragment.lower() in (details[field] + error["message"]).lower()
    assert not ProviderConnection.objects.exists()


def test_missing_required_fields(client: APIClient) -> None:
    response = client.post("/api/providers", {}, format="json")
    assert response.status_code == 400
    assert {d["field"] for d in response.json()["error"]["details"]} >= {"provider", "name"}


def test_malformed_json_is_400(client: APIClient) -> None:
    response = client.post("/api/providers", data=b'{"provider": "openai",', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_put_with_bad_values_changes_nothing(client: APIClient) -> None:
    conn = create(client)
    path = f"/api/providers/{conn['id']}"
    assert client.put(path, {"name": "x", "baseUrl": "javascript:alert(1)"}, format="json").status_code == 400
    assert client.put(path, {"provider": "nope"}, format="json").status_code == 400
    assert client.get(path).json()["connection"]["name"] == "main"


def test_single_label_hosts_are_valid_base_urls(client: APIClient) -> None:
    assert create(client, baseUrl="http://ollama:11434/v1")["baseUrl"] == "http://ollama:11434/v1"


# --- live checks against the stub ----------------------------------------------------------


def test_test_endpoint_with_good_key(client: APIClient, stub: StubProvider) -> None:
    conn = create(client, baseUrl=f"{stub.url}/v1")
    response = client.post(f"/api/providers/{conn['id']}/test")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["error"] is None
    assert body["statusCode"] == 200
    assert body["latencyMs"] >= 0
    assert body["testedAt"]
    assert stub.seen[-1]["authorization"] == f"Bearer {GOOD_KEY}"
    stored = client.get(f"/api/providers/{conn['id']}").json()["connection"]
    assert stored["testStatus"] == "ok"
    assert stored["lastError"] == ""
    assert stored["lastTestedAt"] is not None


def test_test_endpoint_with_rejected_key_redacts_it(client: APIClient, stub: StubProvider) -> None:
    conn = create(client, baseUrl=f"{stub.url}/v1", apiKey="sk-wrong-key-abcdef123")
    response = client.post(f"/api/providers/{conn['id']}/test")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert body["statusCode"] == 401
    assert "401" in body["error"] and "Incorrect API key" in body["error"]
    assert "sk-wrong-key-abcdef123" not in response.content.decode()
    stored = ProviderConnection.objects.get(pk=conn["id"])
    assert stored.test_status == "error"
    assert "sk-wrong-key-abcdef123" not in stored.last_error


def test_test_endpoint_when_provider_is_unreachable(client: APIClient, closed_url: str) -> None:
    conn = create(client, baseUrl=closed_url)
    response = client.post(f"/api/providers/{conn['id']}/test")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is False
    assert body["statusCode"] is None
    assert "Cannot reach" in body["error"]
    assert ProviderConnection.objects.get(pk=conn["id"]).test_status == "error"


def test_test_endpoint_upstream_5xx(client: APIClient, stub: StubProvider) -> None:
    conn = create(client, baseUrl=f"{stub.url}/down/v1")
    body = client.post(f"/api/providers/{conn['id']}/test").json()
    assert body["valid"] is False
    assert body["statusCode"] == 503
    assert "overloaded" in body["error"]


def test_models_endpoint_normalises_and_dedupes(client: APIClient, stub: StubProvider) -> None:
    conn = create(client, baseUrl=f"{stub.url}/v1")
    response = client.get(f"/api/providers/{conn['id']}/models")
    assert response.status_code == 200
    assert response.json() == {"models": [{"id": "stub-large"}, {"id": "stub-small"}]}


def test_models_endpoint_reads_gemini_style_lists(client: APIClient, stub: StubProvider) -> None:
    conn = create(client, provider="gemini", baseUrl=f"{stub.url}/gemini/v1beta")
    response = client.get(f"/api/providers/{conn['id']}/models")
    assert response.json() == {"models": [{"id": "gemini-2.0-flash"}, {"id": "text-embedding-004"}]}
    assert stub.seen[-1]["x-goog-api-key"] == GOOD_KEY


@pytest.mark.parametrize(
    ("path", "fragment"),
    [("/v1", "401"), ("/garbage/v1", "not in a known format"), ("/down/v1", "503")],
)
def test_models_endpoint_upstream_failure_is_502(
    client: APIClient, stub: StubProvider, path: str, fragment: str
) -> None:
    conn = create(client, baseUrl=f"{stub.url}{path}", apiKey="sk-another-wrong-key-777")
    response = client.get(f"/api/providers/{conn['id']}/models")
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "upstream_error"
    assert fragment in response.json()["error"]["message"]
    assert "sk-another-wrong-key-777" not in response.content.decode()


def test_models_endpoint_unreachable_is_502(client: APIClient, closed_url: str) -> None:
    conn = create(client, baseUrl=closed_url)
    response = client.get(f"/api/providers/{conn['id']}/models")
    assert response.status_code == 502
    assert "Cannot reach" in response.json()["error"]["message"]


def test_validate(client: APIClient, stub: StubProvider, closed_url: str) -> None:
    good = client.post(
        "/api/providers/validate",
        {"provider": "openai", "apiKey": GOOD_KEY, "baseUrl": f"{stub.url}/v1"},
        format="json",
    )
    assert good.status_code == 200
    assert good.json() == {"valid": True}

    bad = client.post(
        "/api/providers/validate",
        {"provider": "openai", "apiKey": "sk-nope-123456", "baseUrl": f"{stub.url}/v1"},
        format="json",
    )
    assert bad.json()["valid"] is False
    assert "401" in bad.json()["error"]
    assert "sk-nope-123456" not in bad.content.decode()

    down = client.post(
        "/api/providers/validate", {"provider": "openai", "apiKey": GOOD_KEY, "baseUrl": closed_url}, format="json"
    )
    assert down.json()["valid"] is False
    assert not ProviderConnection.objects.exists()


def test_validate_bad_input(client: APIClient) -> None:
    unknown = client.post("/api/providers/validate", {"provider": "zzz", "apiKey": "k"}, format="json")
    assert unknown.status_code == 400
    assert "zzz" in unknown.json()["error"]["message"]
    bad_url = client.post(
        "/api/providers/validate", {"provider": "openai", "apiKey": "k", "baseUrl": "file:///etc/passwd"}, format="json"
    )
    assert bad_url.status_code == 400
    assert bad_url.json()["error"]["details"][0]["field"] == "baseUrl"
