"""/api/keys: CRUD in camelCase, the secret shown once and stored only as a hash, bad input."""

from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from gateway.keys import hash_api_key
from gateway.models import ApiKey
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db

KEY_FIELDS = {
    "id",
    "name",
    "prefix",
    "scope",
    "isActive",
    "allowedModels",
    "maxRequestsPerMinute",
    "maxRequestsPerDay",
    "maxTokensPerMinute",
    "maxSessions",
    "noLog",
    "createdAt",
}


@pytest.fixture
def admin() -> tuple[APIClient, str]:
    _, plain = ApiKeyFactory.create_with_key(scope="admin", name="operator")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client, plain


def test_create_returns_full_key_once_and_stores_only_hash(admin: tuple[APIClient, str]) -> None:
    client, _ = admin
    response = client.post(
        "/api/keys",
        {"name": "ci", "allowedModels": ["openai/*"], "maxRequestsPerMinute": 60, "noLog": True},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert list(body)[:3] == ["id", "name", "key"]
    assert set(body) == KEY_FIELDS | {"key"}
    plain = body["key"]
    assert plain.startswith("sk-omni-")
    assert body["prefix"] == plain[: len(body["prefix"])]
    assert body["scope"] == "inference"
    assert body["allowedModels"] == ["openai/*"]
    assert body["maxRequestsPerMinute"] == 60
    assert body["maxRequestsPerDay"] is None
    assert body["noLog"] is True

    row = ApiKey.objects.get(pk=body["id"])
    assert row.key_hash == hash_api_key(plain)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM gateway_apikey WHERE id = %s", [body["id"]])
        raw_row = cursor.fetchone()
    assert all(plain not in str(value) for value in raw_row)

    for path in ("/api/keys", f"/api/keys/{body['id']}"):
        later = client.get(path)
        assert plain not in later.content.decode()
        assert row.key_hash not in later.content.decode()


def test_created_key_authenticates_with_its_scope(admin: tuple[APIClient, str]) -> None:
    client, _ = admin
    plain = client.post("/api/keys", {"name": "ops", "scope": "admin"}, format="json").json()["key"]
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert other.get("/api/keys").status_code == 200


def test_list_shape(admin: tuple[APIClient, str]) -> None:
    client, plain = admin
    ApiKeyFactory.create(name="second")
    response = client.get("/api/keys")
    keys = response.json()["keys"]
    assert {k["name"] for k in keys} == {"operator", "second"}
    assert all(set(k) == KEY_FIELDS for k in keys)
    assert plain not in response.content.decode()


def test_get_patch_delete(admin: tuple[APIClient, str]) -> None:
    client, _ = admin
    key = ApiKeyFactory.create(name="old")
    assert client.get(f"/api/keys/{key.pk}").json()["name"] == "old"

    patched = client.patch(
        f"/api/keys/{key.pk}", {"name": "new", "isActive": False, "maxRequestsPerDay": 1000}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["name"] == "new"
    assert patched.json()["isActive"] is False
    key.refresh_from_db()
    assert (key.name, key.is_active, key.max_requests_per_day) == ("new", False, 1000)

    cleared = client.patch(f"/api/keys/{key.pk}", {"maxRequestsPerDay": None}, format="json")
    assert cleared.json()["maxRequestsPerDay"] is None

    deleted = client.delete(f"/api/keys/{key.pk}")
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Key deleted"}
    assert not ApiKey.objects.filter(pk=key.pk).exists()
    assert client.get(f"/api/keys/{key.pk}").status_code == 404


def test_patch_ignores_echoed_output_fields(admin: tuple[APIClient, str]) -> None:
    client, _ = admin
    key = ApiKeyFactory.create(name="round-trip")
    current = client.get(f"/api/keys/{key.pk}").json()
    current["name"] = "edited"
    assert client.patch(f"/api/keys/{key.pk}", current, format="json").json()["name"] == "edited"


def test_unknown_and_huge_ids_are_404(admin: tuple[APIClient, str]) -> None:
    client, _ = admin
    response = client.get("/api/keys/999999")
    assert response.status_code == 404
    assert response.json()["error"] == {"message": "API key 999999 not found", "type": "not_found_error"}
    assert client.get("/api/keys/99999999999999999999999").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": 123}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "k", "scope": "root"}, "scope"),
        ({"name": "k", "isActive": "yes"}, "isActive"),
        ({"name": "k", "noLog": 1}, "noLog"),
        ({"name": "k", "maxRequestsPerMinute": "60"}, "maxRequestsPerMinute"),
        ({"name": "k", "maxRequestsPerMinute": 0}, "maxRequestsPerMinute"),
        ({"name": "k", "maxRequestsPerDay": 1.5}, "maxRequestsPerDay"),
        ({"name": "k", "allowedModels": "openai/*"}, "allowedModels"),
        ({"name": "k", "allowedModels": ["ok", 7]}, "allowedModels[1]"),
        ({"name": "k", "allowed_models": []}, "allowed_models"),
        ({"name": "k", "key": "sk-omni-chosen-by-client"}, "key"),
    ],
)
def test_bad_input_is_400_naming_the_field(admin: tuple[APIClient, str], body: dict, field: str) -> None:
    client, _ = admin
    before = ApiKey.objects.count()
    response = client.post("/api/keys", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert field in {d["field"] for d in error["details"]}
    assert field in error["message"]
    assert ApiKey.objects.count() == before


def test_whitespace_only_name_is_rejected(admin: tuple[APIClient, str]) -> None:
    client, _ = admin
    response = client.post("/api/keys", {"name": "   "}, format="json")
    assert response.status_code == 400


def test_patch_bad_type_is_400_and_changes_nothing(admin: tuple[APIClient, str]) -> None:
    client, _ = admin
    key = ApiKeyFactory.create(name="stable")
    response = client.patch(f"/api/keys/{key.pk}", {"name": "changed", "isActive": "false"}, format="json")
    assert response.status_code == 400
    key.refresh_from_db()
    assert key.name == "stable"
