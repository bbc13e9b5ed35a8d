"""Who may call the routing endpoints: nobody anonymous (401), no inference key (403), an
admin key or an operator session (200); writes by a session need the CSRF token."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from gateway.models import ModelAlias
from tests.factories import ADMIN_PASSWORD, AdminUserFactory, ApiKeyFactory

pytestmark = pytest.mark.django_db

READS = [
    "/api/models/alias",
    "/api/models/catalog",
    "/api/provider-nodes",
    "/api/provider-models",
    "/api/combos",
    "/api/resilience",
]
WRITES = [
    ("post", "/api/models/alias", {"alias": "a", "model": "openai/gpt-4o"}),
    ("post", "/api/provider-nodes", {"name": "n", "prefix": "n1", "baseUrl": "https://n.example"}),
    ("post", "/api/provider-models", {"provider": "openai", "modelId": "m"}),
    ("post", "/api/combos", {"name": "c", "models": ["openai/gpt-4o"]}),
    ("put", "/api/resilience", {"profiles": {"default": {"cooldownBaseSeconds": 2}}}),
]


def bearer(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.mark.parametrize("path", READS)
def test_reads(path: str) -> None:
    assert APIClient().get(path).status_code == 401
    _, inference = ApiKeyFactory.create_with_key(scope="inference")
    refused = bearer(inference).get(path)
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    _, admin = ApiKeyFactory.create_with_key(scope="admin")
    assert bearer(admin).get(path).status_code == 200


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_writes(method: str, path: str, body: dict) -> None:
    assert getattr(APIClient(), method)(path, body, format="json").status_code == 401
    _, inference = ApiKeyFactory.create_with_key(scope="inference")
    assert getattr(bearer(inference), method)(path, body, format="json").status_code == 403
    _, admin = ApiKeyFactory.create_with_key(scope="admin")
    assert getattr(bearer(admin), method)(path, body, format="json").status_code in {200, 201}


def test_session_writes_need_csrf(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    AdminUserFactory.create()
    client = APIClient(enforce_csrf_checks=True)
    assert client.post("/api/auth/login", {"password": ADMIN_PASSWORD}, format="json").status_code == 200
    body = {"alias": "a", "model": "openai/gpt-4o"}
    assert client.post("/api/models/alias", body, format="json").status_code == 403
    assert not ModelAlias.objects.exists()
    token = client.cookies["csrftoken"].value
    assert client.post("/api/models/alias", body, format="json", HTTP_X_CSRFTOKEN=token).status_code == 201
    assert client.get("/api/combos").status_code == 200
