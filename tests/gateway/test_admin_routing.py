"""The Django admin for aliases, combos and resilience profiles: forms validate through the
services, saving and deleting go through them."""

from __future__ import annotations

import pytest
from django.test import Client

from gateway.models import Combo, ModelAlias, ResilienceProfile
from tests.factories import ComboFactory, ModelAliasFactory

pytestmark = pytest.mark.django_db


def combo_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "admin-combo",
        "members": '["openai/gpt-4o", {"model": "groq/llama-3.3-70b-versatile", "weight": 20}]',
        "strategy": "weighted",
        "config": '{"maxAttempts": 2}',
        "is_active": "on",
        "sort_order": "3",
    }
    data.update(overrides)
    return data


def profile_form(**overrides: str) -> dict[str, str]:
    data = {
        "auth_type": "oauth",
        "cooldown_base_seconds": "2",
        "cooldown_max_seconds": "120",
        "backoff_multiplier": "2",
        "breaker_failure_threshold": "3",
        "breaker_reset_seconds": "60",
        "breaker_half_open_probes": "1",
        "credit_error_cooldown_seconds": "3600",
    }
    data.update(overrides)
    return data


# --- aliases --------------------------------------------------------------------------------


def test_alias_add_change_and_bad_target(staff: Client) -> None:
    assert staff.get("/admin/gateway/modelalias/").status_code == 200
    response = staff.post("/admin/gateway/modelalias/add/", {"alias": " quick ", "model": "openai/gpt-4o-mini"})
    assert response.status_code == 302, response.content.decode()[:2000]
    alias = ModelAlias.objects.get()
    assert (alias.alias, alias.model) == ("quick", "openai/gpt-4o-mini")

    url = f"/admin/gateway/modelalias/{alias.pk}/change/"
    assert staff.post(url, {"alias": "quicker", "model": "ds/deepseek-chat"}).status_code == 302
    assert list(ModelAlias.objects.values_list("alias", "model")) == [("quicker", "ds/deepseek-chat")]

    bad = staff.post("/admin/gateway/modelalias/add/", {"alias": "x", "model": "nosuch/model"})
    assert bad.status_code == 200
    assert "unknown provider" in bad.content.decode()
    assert ModelAlias.objects.count() == 1


# --- combos ---------------------------------------------------------------------------------


def test_combo_add_normalises_and_lists(staff: Client) -> None:
    response = staff.post("/admin/gateway/combo/add/", combo_form(members='["openai/gpt-4o", {"model": "ds/x"}]'))
    assert response.status_code == 302, response.content.decode()[:3000]
    combo = Combo.objects.get()
    assert combo.members == ["openai/gpt-4o", {"model": "ds/x", "weight": 0}]
    assert (combo.strategy, combo.config, combo.sort_order) == ("weighted", {"maxAttempts": 2}, 3)
    listing = staff.get("/admin/gateway/combo/?strategy__exact=weighted").content.decode()
    assert "admin-combo" in listing


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"members": '"openai/gpt-4o"'}, "non-empty list"),
        ({"members": '["gpt-4o"]'}, "neither a combo nor provider/model"),
        ({"members": '["admin-combo"]'}, "cycle: admin-combo → admin-combo"),
        ({"config": '{"retries": 1}'}, "unknown key"),
        ({"name": "bad name"}, "letters"),
    ],
)
def test_combo_form_errors_come_from_the_service(staff: Client, overrides: dict[str, str], message: str) -> None:
    response = staff.post("/admin/gateway/combo/add/", combo_form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Combo.objects.exists()


def test_combo_change(staff: Client) -> None:
    combo = ComboFactory.create(name="edit-me")
    url = f"/admin/gateway/combo/{combo.pk}/change/"
    assert staff.post(url, combo_form(name="edited", strategy="random")).status_code == 302
    combo.refresh_from_db()
    assert (combo.name, combo.strategy) == ("edited", "random")


def test_a_used_combo_is_protected_from_deletion(staff: Client) -> None:
    inner = ComboFactory.create(name="inner")
    ComboFactory.create(name="outer", members=["inner"])
    page = staff.get(f"/admin/gateway/combo/{inner.pk}/delete/").content.decode()
    assert "Combo outer uses combo inner" in page
    staff.post(f"/admin/gateway/combo/{inner.pk}/delete/", {"post": "yes"})
    assert Combo.objects.filter(name="inner").exists()


def test_bulk_delete_of_a_combo_with_its_user(staff: Client) -> None:
    inner = ComboFactory.create(name="inner")
    outer = ComboFactory.create(name="outer", members=["inner"])
    response = staff.post(
        "/admin/gateway/combo/",
        {"action": "delete_selected", "_selected_action": [inner.pk, outer.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Combo.objects.exists()


# --- resilience profiles --------------------------------------------------------------------


def test_profile_add_and_validation(staff: Client) -> None:
    assert "default" in staff.get("/admin/gateway/resilienceprofile/").content.decode()
    bad = staff.post("/admin/gateway/resilienceprofile/add/", profile_form(cooldown_max_seconds="1"))
    assert bad.status_code == 200
    assert "must not be below" in bad.content.decode()
    ok = staff.post("/admin/gateway/resilienceprofile/add/", profile_form())
    assert ok.status_code == 302, ok.content.decode()[:3000]
    oauth = ResilienceProfile.objects.get(auth_type="oauth")
    assert (oauth.breaker_failure_threshold, oauth.breaker_reset_seconds) == (3, 60.0)


def test_default_profile_cannot_be_deleted(staff: Client) -> None:
    default = ResilienceProfile.objects.get(auth_type="default")
    assert staff.get(f"/admin/gateway/resilienceprofile/{default.pk}/delete/").status_code == 403
    change = staff.post(
        f"/admin/gateway/resilienceprofile/{default.pk}/change/",
        profile_form(auth_type="default", cooldown_base_seconds="5"),
    )
    assert change.status_code == 302
    default.refresh_from_db()
    assert (default.auth_type, default.cooldown_base_seconds) == ("default", 5.0)


def test_alias_admin_search(staff: Client) -> None:
    ModelAliasFactory.create(alias="findme", model="openai/gpt-4o")
    ModelAliasFactory.create(alias="other", model="openai/gpt-4o-mini")
    page = staff.get("/admin/gateway/modelalias/?q=findme").content.decode()
    assert "findme" in page and ">other<" not in page
