"""gateway.services: API key writes and operator login rules, below the HTTP layer."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from gateway.api.errors import AuthenticationFailed, InvalidInput, TooManyAttempts
from gateway.keys import hash_api_key
from gateway.models import ApiKey
from gateway.selectors import api_key_get_by_secret
from gateway.services import LOGIN_MAX_FAILURES, api_key_create, api_key_delete, api_key_update, session_login

pytestmark = pytest.mark.django_db


def test_api_key_create_keeps_only_the_hash() -> None:
    key, plain = api_key_create(name="  svc  ", allowed_models=[" openai/* "])
    key.refresh_from_db()
    assert key.name == "svc"
    assert key.allowed_models == ["openai/*"]
    assert key.key_hash == hash_api_key(plain)
    assert plain.startswith(key.prefix)
    assert plain not in {key.key_hash, key.prefix, key.name}
    assert api_key_get_by_secret(plain=plain) == key
    assert api_key_get_by_secret(plain=plain + "x") is None


def test_two_keys_differ() -> None:
    (_, first), (_, second) = api_key_create(name="a"), api_key_create(name="b")
    assert first != second


def test_api_key_create_validates() -> None:
    with pytest.raises(ValidationError) as exc:
        api_key_create(name="k", scope="root")
    assert "scope" in exc.value.message_dict
    with pytest.raises(InvalidInput):
        api_key_create(name="k", allowed_models=["ok", ""])
    assert ApiKey.objects.count() == 0


def test_api_key_update_refuses_protected_fields() -> None:
    key, _ = api_key_create(name="k")
    with pytest.raises(InvalidInput) as exc:
        api_key_update(api_key=key, data={"key_hash": "0" * 64})
    assert "key_hash" in exc.value.message
    key.refresh_from_db()
    assert key.key_hash != "0" * 64


def test_api_key_update_and_delete() -> None:
    key, _ = api_key_create(name="k")
    api_key_update(api_key=key, data={"scope": "admin", "no_log": True})
    key.refresh_from_db()
    assert (key.scope, key.no_log) == ("admin", True)
    api_key_delete(api_key=key)
    assert not ApiKey.objects.exists()


def test_session_login_counts_failures_per_ip(settings: object, django_user_model: type) -> None:
    from django.core.cache import cache

    cache.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]
    django_user_model.objects.create_user(username="admin", password="pw", is_staff=True)  # type: ignore[attr-defined]
    factory = RequestFactory()
    for _ in range(LOGIN_MAX_FAILURES):
        with pytest.raises(AuthenticationFailed):
            session_login(request=factory.post("/", REMOTE_ADDR="192.0.2.1"), username="admin", password="bad")
    with pytest.raises(TooManyAttempts) as exc:
        session_login(request=factory.post("/", REMOTE_ADDR="192.0.2.1"), username="admin", password="pw")
    assert 0 < exc.value.retry_after <= 300
    cache.clear()
