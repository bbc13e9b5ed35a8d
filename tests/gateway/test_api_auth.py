"""Who may call /api: the auth matrix, login/logout/status, throttling, CSRF, error shapes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.factories import ADMIN_PASSWORD, AdminUserFactory, ApiKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    # The production hasher costs ~0.25 s per login; these tests log in dozens of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _clear_login_throttle() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def bearer(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def test_no_credentials_is_401_with_error_shape() -> None:
    response = APIClient().get("/api/keys")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_key_is_401() -> None:
    response = bearer("sk-omni-not-a-real-key").get("/api/keys")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid API key"


def test_disabled_admin_key_is_401() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="admin", is_active=False)
    assert bearer(plain).get("/api/keys").status_code == 401


def test_inference_key_is_403_with_reason() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="inference")
    response = bearer(plain).get("/api/keys")
    assert response.status_code == 403
    assert response.json()["error"] == {
        "message": "This API key has the inference scope; management needs an admin key",
        "type": "permission_error",
    }


def test_admin_key_is_200() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    response = bearer(plain).get("/api/keys")
    assert response.status_code == 200
    assert "keys" in response.json()


def test_admin_key_needs_no_csrf_token() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.post("/api/keys", {"name": "from script"}, format="json").status_code == 201


def test_login_sets_auth_token_cookie_and_session_works() -> None:
    AdminUserFactory.create()
    client = APIClient()
    response = client.post("/api/auth/login", {"password": ADMIN_PASSWORD}, format="json")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert response.cookies["auth_token"].value
    assert response.cookies["auth_token"]["httponly"]
    assert client.get("/api/keys").status_code == 200
    assert client.get("/api/auth/status").json() == {"authenticated": True}


def test_login_with_explicit_username() -> None:
    AdminUserFactory.create(username="ops", password="s3cret-pass")
    response = APIClient().post("/api/auth/login", {"username": "ops", "password": "s3cret-pass"}, format="json")
    assert response.status_code == 200


def test_wrong_password_is_401() -> None:
    AdminUserFactory.create()
    client = APIClient()
    response = client.post("/api/auth/login", {"password": "nope"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid password"
    assert "auth_token" not in response.cookies
    assert client.get("/api/keys").status_code == 401


def test_non_staff_user_cannot_log_in() -> None:
    AdminUserFactory.create(username="visitor", is_staff=False, is_superuser=False, password="pw-visitor")
    response = APIClient().post("/api/auth/login", {"username": "visitor", "password": "pw-visitor"}, format="json")
    assert response.status_code == 401


def test_login_without_password_is_400_naming_the_field() -> None:
    response = APIClient().post("/api/auth/login", {}, format="json")
    assert response.status_code == 400
    assert {"field": "password", "message": "This field is required."} in response.json()["error"]["details"]


def test_login_is_throttled_after_ten_failures() -> None:
    AdminUserFactory.create()
    client = APIClient()
    for _ in range(10):
        assert client.post("/api/auth/login", {"password": "wrong"}, format="json").status_code == 401
    blocked = client.post("/api/auth/login", {"password": ADMIN_PASSWORD}, format="json")
    assert blocked.status_code == 429
    assert blocked.json()["error"]["type"] == "rate_limit_error"
    assert 0 < int(blocked.headers["Retry-After"]) <= 300
    other_ip = APIClient(REMOTE_ADDR="10.9.8.7")
    assert other_ip.post("/api/auth/login", {"password": ADMIN_PASSWORD}, format="json").status_code == 200


def test_successful_login_resets_failure_count() -> None:
    AdminUserFactory.create()
    client = APIClient()
    for _ in range(9):
        client.post("/api/auth/login", {"password": "wrong"}, format="json")
    assert client.post("/api/auth/login", {"password": ADMIN_PASSWORD}, format="json").status_code == 200
    for _ in range(9):
        assert client.post("/api/auth/login", {"password": "wrong"}, format="json").status_code == 401


def test_logout_ends_session() -> None:
    AdminUserFactory.create()
    client = APIClient()
    client.post("/api/auth/login", {"password": ADMIN_PASSWORD}, format="json")
    assert client.post("/api/auth/logout").status_code == 200
    assert client.get("/api/keys").status_code == 401
    assert client.get("/api/auth/status").json() == {"authenticated": False}


def test_status_for_anonymous_and_keys() -> None:
    assert APIClient().get("/api/auth/status").json() == {"authenticated": False}
    _, admin_plain = ApiKeyFactory.create_with_key(scope="admin")
    _, inference_plain = ApiKeyFactory.create_with_key(scope="inference")
    assert bearer(admin_plain).get("/api/auth/status").json() == {"authenticated": True}
    assert bearer(inference_plain).get("/api/auth/status").json() == {"authenticated": False}


def test_csrf_is_enforced_for_session_writes() -> None:
    AdminUserFactory.create()
    client = APIClient(enforce_csrf_checks=True)
    assert client.post("/api/auth/login", {"password": ADMIN_PASSWORD}, format="json").status_code == 200
    refused = client.post("/api/keys", {"name": "x"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/keys", {"name": "x"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
    # Safe methods need no token.
    assert client.get("/api/keys").status_code == 200


def test_logged_in_non_staff_session_is_403() -> None:
    user = AdminUserFactory.create(username="plain", is_staff=False, is_superuser=False)
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/keys").status_code == 403


def test_malformed_json_is_400() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    response = bearer(plain).post("/api/keys", data=b'{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["error"]["message"]


def test_non_json_body_is_415() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    response = bearer(plain).post("/api/keys", data=b"name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["error"]["type"] == "unsupported_media_type"


def test_json_array_body_is_400() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    response = bearer(plain).post("/api/keys", data=b"[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] is None


def test_oversized_body_is_413(settings: Any) -> None:
    settings.MAX_BODY_BYTES = 2048
    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    body = b'{"name": "' + b"x" * 4096 + b'"}'
    response = bearer(plain).post("/api/keys", data=body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


def test_wrong_method_is_405() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    response = bearer(plain).delete("/api/keys")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "method_not_allowed"


def test_unknown_api_path_is_json_404() -> None:
    response = APIClient().get("/api/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_request_id_is_echoed_when_sane_and_minted_otherwise() -> None:
    client = APIClient()
    assert client.get("/api/auth/status", HTTP_X_REQUEST_ID="abc-123:x.y_z").headers["X-Request-Id"] == "abc-123:x.y_z"
    minted = client.get("/api/auth/status", HTTP_X_REQUEST_ID="bad id<script>").headers["X-Request-Id"]
    assert minted != "bad id<script>"
    assert len(minted) == 32
    assert client.get("/api/auth/status", HTTP_X_REQUEST_ID="a" * 129).headers["X-Request-Id"] != "a" * 129
    assert len(client.get("/admin/login/").headers["X-Request-Id"]) == 32


def test_root_redirects_to_admin() -> None:
    response = APIClient().get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
