"""The Django admin for provider connections: the key is a write-only input, stored encrypted."""

from __future__ import annotations

import pytest
from django.test import Client

from providers.models import ProviderConnection
from tests.factories import ProviderConnectionFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-admin-entered-secret-4321"


def form(**overrides: str) -> dict[str, str]:
    data = {
        "provider": "openai",
        "name": "admin-made",
        "api_key": SECRET,
        "base_url": "",
        "priority": "2",
        "is_active": "on",
        "default_model": "",
        "provider_specific_data": "{}",
    }
    data.update(overrides)
    return data


def test_add_encrypts_and_never_renders_the_key(staff: Client) -> None:
    add_page = staff.get("/admin/providers/providerconnection/add/").content.decode()
    assert 'type="password"' in add_page
    assert '<option value="openai">' in add_page

    response = staff.post("/admin/providers/providerconnection/add/", form())
    assert response.status_code == 302, response.content.decode()[:3000]
    connection = ProviderConnection.objects.get()
    assert connection.api_key == SECRET
    assert connection.api_key_encrypted != SECRET

    page = staff.get(f"/admin/providers/providerconnection/{connection.pk}/change/").content.decode()
    assert SECRET not in page
    assert connection.api_key_encrypted not in page
    assert connection.api_key_hint in page


def test_change_without_key_keeps_it_and_with_key_rotates(staff: Client) -> None:
    connection = ProviderConnectionFactory.create(api_key="sk-kept-key-000000")
    url = f"/admin/providers/providerconnection/{connection.pk}/change/"
    assert staff.post(url, form(api_key="", name="renamed")).status_code == 302
    connection.refresh_from_db()
    assert (connection.name, connection.api_key) == ("renamed", "sk-kept-key-000000")
    assert staff.post(url, form(api_key="sk-new-key-999999")).status_code == 302
    connection.refresh_from_db()
    assert connection.api_key == "sk-new-key-999999"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"api_key": ""}, b"needs an API key"),
        ({"base_url": "ftp://nope"}, b"http:// or https://"),
        ({"provider": "acme"}, b"Select a valid choice"),
    ],
)
def test_invalid_forms_show_errors(staff: Client, overrides: dict[str, str], error: bytes) -> None:
    response = staff.post("/admin/providers/providerconnection/add/", form(**overrides))
    assert response.status_code == 200
    assert error in response.content
    assert not ProviderConnection.objects.exists()


def test_filters_and_test_action(staff: Client) -> None:
    ProviderConnectionFactory.create(name="groq-one", provider="groq")
    target = ProviderConnectionFactory.create(name="openai-one", base_url="http://127.0.0.1:9/v1")
    filtered = staff.get("/admin/providers/providerconnection/", {"provider": "groq"}).content
    assert b"groq-one" in filtered and b"openai-one" not in filtered
    response = staff.post(
        "/admin/providers/providerconnection/",
        {"action": "test_connections", "_selected_action": [str(target.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    target.refresh_from_db()
    assert target.test_status == "error"
    assert b"Cannot reach" in response.content


def test_admin_shows_runtime_cooldowns(staff: Client) -> None:
    import asyncio

    from gateway.state import get_state

    cooled = ProviderConnectionFactory.create(name="cooled")
    fine = ProviderConnectionFactory.create(name="fine")
    state = get_state()
    asyncio.run(state.reset())
    try:
        asyncio.run(state.set_cooldown(f"conn:{cooled.pk}", 600, "credit or quota exhausted: insufficient credits"))
        page = staff.get("/admin/providers/providerconnection/").content.decode()
        assert "cooling down" in page and "insufficient credits" in page
        detail = staff.get(f"/admin/providers/providerconnection/{cooled.pk}/change/").content.decode()
        assert "insufficient credits" in detail
        other = staff.get(f"/admin/providers/providerconnection/{fine.pk}/change/").content.decode()
        assert "cooling down" not in other
    finally:
        asyncio.run(state.reset())
