"""The audit trail: every change through /api and the admin, with actor, IP and request id;
login events; before/after values without secrets (stored rows are scanned); the audit-log
endpoint and its read-only admin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from rest_framework.test import APIClient

from gateway.keys import generate_api_key, hash_api_key, visible_prefix
from gateway.models import ApiKey, ModelAlias
from providers.models import ProviderConnection
from tests.factories import ADMIN_PASSWORD, AdminUserFactory, ApiKeyFactory, ModelAliasFactory
from tests.live_server import LiveGateway
from usage.audit import current_actor
from usage.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_login_throttle() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def admin_key() -> tuple[APIClient, ApiKey]:
    key, plain = ApiKeyFactory.create_with_key(scope="admin", name="ops")
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    AuditEntry.objects.all().delete()  # the key's own creation (actor "system")
    return client, key


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(AdminUserFactory.create())
    AuditEntry.objects.all().delete()
    return client


def entries(**filters: Any) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(**filters).order_by("id"))


def stored_audit_text() -> str:
    """Every stored audit row, raw from the database, as one string."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuditEntry._meta.db_table}")
        return "\n".join(repr(row) for row in cursor.fetchall())


def test_api_changes_name_the_key_ip_and_request(admin_key: tuple[APIClient, ApiKey]) -> None:
    client, key = admin_key
    created = client.post(
        "/api/providers",
        {"provider": "openai", "name": "main", "apiKey": "sk-live-0123456789abcdef0123"},
        format="json",
        HTTP_X_REQUEST_ID="req-audit-1",
    )
    assert created.status_code == 201, created.content
    [entry] = entries()
    assert (entry.actor, entry.actor_ip, entry.request_id) == (f"key:{key.prefix}", "203.0.113.9", "req-audit-1")
    assert (entry.action, entry.target_type) == ("create", "providers.ProviderConnection")
    assert entry.target_id == str(created.json()["connection"]["id"]) and entry.target_repr == "openai: main"
    assert entry.changes["name"] == [None, "main"]
    assert entry.changes["provider"] == [None, "openai"]
    assert entry.changes["apiKey"] == "[changed]"
    assert entry.changes["isActive"] == [None, True]
    assert not {"apiKeyEncrypted", "apiKeyHint", "createdAt", "updatedAt", "id"} & set(entry.changes)


def test_update_records_before_and_after_of_changed_fields_only(admin_key: tuple[APIClient, ApiKey]) -> None:
    client, _ = admin_key
    alias = client.post("/api/models/alias", {"alias": "fast", "model": "openai/gpt-4o-mini"}, format="json")
    assert alias.status_code == 201
    client.post("/api/models/alias", {"alias": "fast", "model": "openai/gpt-4o"}, format="json")
    client.delete("/api/models/alias?alias=fast")
    create, update, delete = entries()
    assert (create.action, update.action, delete.action) == ("create", "update", "delete")
    assert update.changes == {"model": ["openai/gpt-4o-mini", "openai/gpt-4o"]}
    assert delete.changes == {"alias": ["fast", None], "model": ["openai/gpt-4o", None]}
    assert {e.target_type for e in (create, update, delete)} == {"gateway.ModelAlias"}


def test_saving_without_changes_writes_nothing() -> None:
    alias = ModelAliasFactory.create()
    before = AuditEntry.objects.count()
    alias.save()
    assert AuditEntry.objects.count() == before


def test_rolled_back_changes_leave_no_entry() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        ModelAliasFactory.create(alias="temporary")
        raise RuntimeError("roll back")
    assert not entries(target_type="gateway.ModelAlias")


def test_changes_outside_a_request_are_by_system() -> None:
    ModelAliasFactory.create(alias="from-shell")
    [entry] = entries()
    assert (entry.actor, entry.actor_ip, entry.request_id) == ("system", "", "")
    assert current_actor().name == "system"


def test_admin_changes_are_by_the_logged_in_user(staff: Client) -> None:
    response = staff.post(
        "/admin/gateway/modelalias/add/", {"alias": "quick", "model": "openai/gpt-4o-mini"}, REMOTE_ADDR="198.51.100.4"
    )
    assert response.status_code == 302
    [entry] = entries()
    assert (entry.actor, entry.actor_ip, entry.action) == ("admin", "198.51.100.4", "create")
    assert entry.request_id == response.headers["X-Request-Id"]
    alias = ModelAlias.objects.get()
    staff.post(f"/admin/gateway/modelalias/{alias.pk}/delete/", {"post": "yes"})
    assert entries()[-1].action == "delete" and entries()[-1].actor == "admin"


def test_combo_members_are_reported_under_their_api_name(admin_key: tuple[APIClient, ApiKey]) -> None:
    client, _ = admin_key
    body = {"name": "duo", "models": ["openai/gpt-4o", "groq/llama-3.3-70b-versatile"]}
    assert client.post("/api/combos", body, format="json").status_code == 201
    [entry] = entries()
    assert entry.changes["models"] == [None, body["models"]] and "members" not in entry.changes


def test_login_events() -> None:
    AdminUserFactory.create()
    AuditEntry.objects.all().delete()
    client = APIClient(REMOTE_ADDR="192.0.2.7")
    failed = client.post("/api/auth/login", {"username": "admin", "password": "wrong"}, format="json")
    assert failed.status_code == 401
    assert client.post("/api/auth/login", {"password": ADMIN_PASSWORD}, format="json").status_code == 200
    assert client.post("/api/auth/logout").status_code == 200
    actions = [(e.action, e.actor, e.actor_ip) for e in entries()]
    assert actions == [
        ("login_failed", "admin", "192.0.2.7"),
        ("login", "admin", "192.0.2.7"),
        ("logout", "admin", "192.0.2.7"),
    ]  # and no "update" of the user for its last_login
    assert "wrong" not in stored_audit_text() and ADMIN_PASSWORD not in stored_audit_text()


def test_admin_login_failure_is_recorded() -> None:
    AdminUserFactory.create()
    response = Client().post("/admin/login/", {"username": "mallory", "password": "guess-123"})
    assert response.status_code == 200
    [entry] = entries(action="login_failed")
    assert entry.actor == "mallory" and entry.target_repr == "mallory"
    assert "guess-123" not in stored_audit_text()


def test_password_changes_are_recorded_without_the_hash() -> None:
    user = AdminUserFactory.create()
    old_hash = user.password
    user.set_password("a brand new password")
    user.save()
    entry = entries(target_type="auth.User", action="update")[-1]
    assert entry.changes == {"password": "[changed]"}
    text = stored_audit_text()
    assert old_hash not in text and user.password not in text and "a brand new password" not in text


def test_no_secret_ever_reaches_the_audit_log(admin_key: tuple[APIClient, ApiKey]) -> None:
    client, _ = admin_key
    first, second = "sk-prov-FIRST-0123456789abcdef", "sk-prov-SECOND-0123456789abcdef"
    created = client.post(
        "/api/providers",
        {
            "provider": "openai",
            "name": "rotating",
            "apiKey": first,
            "providerSpecificData": {"accessToken": "tok-SECRET-abcdef123456", "region": "eu"},
        },
        format="json",
    ).json()["connection"]
    ciphertexts = [ProviderConnection.objects.get().api_key_encrypted]
    # Rotate the provider key through the API.
    rotated = client.put(f"/api/providers/{created['id']}", {"apiKey": second, "name": "rotated"}, format="json")
    assert rotated.status_code == 200
    ciphertexts.append(ProviderConnection.objects.get().api_key_encrypted)

    # A client key: created through the API, then rotated in place (a new secret, same row).
    made = client.post("/api/keys", {"name": "app"}, format="json").json()
    key = ApiKey.objects.get(pk=made["id"])
    hashes = [key.key_hash]
    new_plain = generate_api_key()
    key.key_hash, key.prefix = hash_api_key(new_plain), visible_prefix(new_plain)
    key.save()
    hashes.append(key.key_hash)
    client.delete(f"/api/keys/{key.pk}")
    client.delete(f"/api/providers/{created['id']}")

    text = stored_audit_text()
    for secret in (first, second, made["key"], new_plain, "tok-SECRET-abcdef123456", *ciphertexts, *hashes):
        assert secret not in text
    update = entries(target_type="providers.ProviderConnection", action="update")[0]
    assert update.changes == {"apiKey": "[changed]", "name": ["rotating", "rotated"]}
    create = entries(target_type="providers.ProviderConnection", action="create")[0]
    assert create.changes["providerSpecificData"] == [None, {"accessToken": "[redacted]", "region": "eu"}]
    key_rotation = entries(target_type="gateway.ApiKey", action="update")[0]
    assert key_rotation.changes["key"] == "[changed]"
    assert key_rotation.changes["prefix"][1] == key.prefix
    deleted = entries(target_type="providers.ProviderConnection", action="delete")[0]
    assert "apiKey" not in deleted.changes and deleted.changes["name"] == ["rotated", None]


def test_audit_log_endpoint(admin_key: tuple[APIClient, ApiKey]) -> None:
    client, key = admin_key
    for n in range(3):
        client.post("/api/models/alias", {"alias": f"a{n}", "model": "openai/gpt-4o"}, format="json")
    response = client.get("/api/compliance/audit-log", {"limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert [e["targetRepr"] for e in body["entries"]] == ["a2 → openai/gpt-4o", "a1 → openai/gpt-4o"]
    newest = body["entries"][0]
    assert set(newest) == {
        "id",
        "createdAt",
        "actor",
        "actorIp",
        "action",
        "targetType",
        "targetId",
        "targetRepr",
        "changes",
        "requestId",
    }
    assert (newest["actor"], newest["actorIp"], newest["action"]) == (f"key:{key.prefix}", "203.0.113.9", "create")
    assert newest["changes"] == {"alias": [None, "a2"], "model": [None, "openai/gpt-4o"]}
    assert len(client.get("/api/compliance/audit-log").json()["entries"]) == 3


@pytest.mark.parametrize("limit", ["0", "1001", "all"])
def test_audit_log_limit_is_checked(admin_key: tuple[APIClient, ApiKey], limit: str) -> None:
    client, _ = admin_key
    response = client.get("/api/compliance/audit-log", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "limit"


def test_audit_log_is_for_operators_only() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="inference")
    inference = APIClient()
    inference.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert inference.get("/api/compliance/audit-log").status_code == 403
    assert APIClient().get("/api/compliance/audit-log").status_code == 401


def test_admin_audit_list_is_read_only(staff: Client) -> None:
    ModelAliasFactory.create(alias="shown")
    entry = AuditEntry.objects.get()
    listing = staff.get("/admin/usage/auditentry/")
    assert listing.status_code == 200 and b"shown" in listing.content
    detail = staff.get(f"/admin/usage/auditentry/{entry.pk}/change/")
    assert detail.status_code == 200 and b'name="_save"' not in detail.content
    assert staff.get("/admin/usage/auditentry/add/").status_code == 403
    assert staff.post(f"/admin/usage/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_changes_through_the_asgi_server_are_attributed(gateway: LiveGateway) -> None:
    """The production stack (uvicorn, async middleware, sync DRF view in a thread)."""
    key, plain = ApiKeyFactory.create_with_key(scope="admin")
    response = httpx.post(
        f"{gateway.url}/api/models/alias",
        json={"alias": "over-asgi", "model": "openai/gpt-4o"},
        headers={"Authorization": f"Bearer {plain}", "X-Request-Id": "asgi-req-1"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    [entry] = entries(target_type="gateway.ModelAlias")
    assert (entry.actor, entry.actor_ip, entry.request_id) == (f"key:{key.prefix}", "127.0.0.1", "asgi-req-1")
