"""Management commands: create_api_key and ensure_admin."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from gateway.keys import hash_api_key
from gateway.models import ApiKey

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hasher(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def status_with(plain: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client.get("/api/keys").status_code


def test_create_api_key_prints_one_line_that_authenticates() -> None:
    out, err = run("create_api_key", "--name", "deploy", "--scope", "admin")
    lines = out.splitlines()
    assert len(lines) == 1
    assert out.endswith("\n")
    plain = lines[0]
    assert plain.startswith("sk-omni-")
    assert err == ""
    key = ApiKey.objects.get(key_hash=hash_api_key(plain))
    assert (key.name, key.scope) == ("deploy", "admin")
    assert status_with(plain) == 200


def test_create_api_key_defaults_to_inference_scope() -> None:
    out, _ = run("create_api_key", "--name", "app")
    plain = out.strip()
    assert ApiKey.objects.get(key_hash=hash_api_key(plain)).scope == "inference"
    assert status_with(plain) == 403


def test_create_api_key_rejects_bad_scope_and_long_name() -> None:
    with pytest.raises(CommandError):
        call_command("create_api_key", "--name", "x", "--scope", "root", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError):
        call_command("create_api_key", "--name", "x" * 300, stdout=StringIO(), stderr=StringIO())
    assert ApiKey.objects.count() == 0


def test_ensure_admin_creates_then_is_idempotent(settings: Any) -> None:
    settings.INITIAL_PASSWORD = "first-Passw0rd"
    out, err = run("ensure_admin")
    assert "created" in out
    assert "first-Passw0rd" not in out + err
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.is_staff and user.is_active
    assert user.check_password("first-Passw0rd")
    stored_hash = user.password

    out, _ = run("ensure_admin")
    assert "unchanged" in out
    assert get_user_model().objects.count() == 1
    user.refresh_from_db()
    assert user.password == stored_hash


def test_ensure_admin_follows_initial_password_until_an_operator_changes_it(settings: Any) -> None:
    settings.INITIAL_PASSWORD = "first-Passw0rd"
    run("ensure_admin")
    settings.INITIAL_PASSWORD = "second-Passw0rd"  # rotated in the environment: applied
    out, _ = run("ensure_admin")
    assert "updated" in out
    user = get_user_model().objects.get(username="admin")
    assert user.check_password("second-Passw0rd")

    user.set_password("operator-Chosen1")  # changed in the admin: a restart must not undo it
    user.save()
    out, _ = run("ensure_admin")
    assert "kept" in out and "--reset" in out
    user.refresh_from_db()
    assert user.check_password("operator-Chosen1")
    out, _ = run("ensure_admin")  # and stays kept on every later run
    assert "kept" in out
    assert "operator-Chosen1" not in out and "second-Passw0rd" not in out

    out, _ = run("ensure_admin", "--reset")
    assert "updated" in out
    user.refresh_from_db()
    assert user.check_password("second-Passw0rd")
    out, _ = run("ensure_admin")
    assert "unchanged" in out


def test_ensure_admin_fixes_flags_of_an_existing_account_but_keeps_its_password(settings: Any) -> None:
    user = get_user_model().objects.create_user(username="admin", password="old-Passw0rd", is_staff=False)
    settings.INITIAL_PASSWORD = "new-Passw0rd"
    out, _ = run("ensure_admin")
    assert "kept" in out
    user.refresh_from_db()
    assert user.check_password("old-Passw0rd")
    assert user.is_staff and user.is_superuser
    run("ensure_admin", "--reset")
    user.refresh_from_db()
    assert user.check_password("new-Passw0rd")


def test_ensure_admin_without_password_explains_and_exits_cleanly(settings: Any) -> None:
    settings.INITIAL_PASSWORD = ""
    out, err = run("ensure_admin")
    assert out == ""
    assert "INITIAL_PASSWORD" in err
    assert "unavailable" in err
    assert not get_user_model().objects.exists()


def test_ensured_admin_can_log_in(settings: Any) -> None:
    settings.INITIAL_PASSWORD = "login-Passw0rd"
    run("ensure_admin")
    response = APIClient().post("/api/auth/login", {"password": "login-Passw0rd"}, format="json")
    assert response.status_code == 200
