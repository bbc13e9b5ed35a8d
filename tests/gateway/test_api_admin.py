"""The Django admin for API keys: creation goes through the service, the secret shows once."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from rest_framework.test import APIClient

from gateway.keys import hash_api_key
from gateway.models import ApiKey
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


def form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "from-admin",
        "scope": "admin",
        "is_active": "on",
        "allowed_models": '["openai/*"]',
        "max_requests_per_minute": "",
        "max_requests_per_day": "",
    }
    data.update(overrides)
    return data


def test_add_shows_the_key_once_and_stores_the_hash(staff: Client) -> None:
    response = staff.post("/admin/gateway/apikey/add/", form())
    assert response.status_code == 302, response.content.decode()[:2000]
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    shown = [m for m in messages if m.startswith("New API key:")]
    assert len(shown) == 1
    plain = next(word for word in shown[0].split() if word.startswith("sk-omni-"))
    key = ApiKey.objects.get()
    assert key.key_hash == hash_api_key(plain)
    assert key.allowed_models == ["openai/*"]

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get("/api/keys").status_code == 200

    # The page the admin redirects to shows the message; after that the key is gone for good.
    assert plain in staff.get(response.headers["Location"]).content.decode()
    for page in (f"/admin/gateway/apikey/{key.pk}/change/", "/admin/gateway/apikey/"):
        html = staff.get(page).content.decode()
        assert plain not in html
        assert key.key_hash not in html
        assert key.prefix in html


def test_change_and_delete_go_through(staff: Client) -> None:
    key = ApiKeyFactory.create(name="before")
    response = staff.post(f"/admin/gateway/apikey/{key.pk}/change/", form(name="after", scope="inference"))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.name == "after"
    staff.post(f"/admin/gateway/apikey/{key.pk}/delete/", {"post": "yes"})
    assert not ApiKey.objects.exists()


def test_bad_allowed_models_shows_form_error(staff: Client) -> None:
    response = staff.post("/admin/gateway/apikey/add/", form(allowed_models='["ok", 3]'))
    assert response.status_code == 200
    assert b"JSON list of model patterns" in response.content
    assert not ApiKey.objects.exists()


def test_search_and_filters(staff: Client) -> None:
    ApiKeyFactory.create(name="findme", scope="admin")
    ApiKeyFactory.create(name="other")
    assert b"findme" in staff.get("/admin/gateway/apikey/", {"q": "findme"}).content
    admins = staff.get("/admin/gateway/apikey/", {"scope__exact": "admin"}).content
    assert b"findme" in admins and b"other" not in admins
