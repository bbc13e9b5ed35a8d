"""/api/resilience: the seeded default profile, partial updates of one or more profiles (all
or nothing), strict numbers."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from gateway.models import ResilienceProfile

pytestmark = pytest.mark.django_db

URL = "/api/resilience"
DEFAULTS = {
    "cooldownBaseSeconds": 1.0,
    "cooldownMaxSeconds": 300.0,
    "backoffMultiplier": 2.0,
    "breakerFailureThreshold": 5,
    "breakerResetSeconds": 30.0,
    "breakerHalfOpenProbes": 1,
    "creditErrorCooldownSeconds": 3600.0,
}


@pytest.fixture
def client(admin_api: APIClient) -> APIClient:
    return admin_api


def numbers(profile: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in profile.items() if k != "updatedAt"}


def test_migration_seeds_the_default_profile(client: APIClient) -> None:
    assert list(ResilienceProfile.objects.values_list("auth_type", flat=True)) == ["default"]
    profiles = client.get(URL).json()["profiles"]
    assert list(profiles) == ["default"]
    assert numbers(profiles["default"]) == DEFAULTS
    assert profiles["default"]["updatedAt"]


def test_default_is_shown_even_when_its_row_is_gone(client: APIClient) -> None:
    ResilienceProfile.objects.all().delete()
    profiles = client.get(URL).json()["profiles"]
    assert numbers(profiles["default"]) == DEFAULTS
    assert profiles["default"]["updatedAt"] is None


def test_partial_update_of_one_profile(client: APIClient) -> None:
    body = {"profiles": {"default": {"cooldownBaseSeconds": 0.5, "breakerFailureThreshold": 3}}}
    response = client.put(URL, body, format="json")
    assert response.status_code == 200, response.content
    default = response.json()["profiles"]["default"]
    assert numbers(default) == {**DEFAULTS, "cooldownBaseSeconds": 0.5, "breakerFailureThreshold": 3}
    row = ResilienceProfile.objects.get(auth_type="default")
    assert (row.cooldown_base_seconds, row.breaker_failure_threshold, row.cooldown_max_seconds) == (0.5, 3, 300.0)


def test_update_creates_missing_profiles_from_defaults(client: APIClient) -> None:
    body = {"profiles": {"oauth": {"breakerFailureThreshold": 3, "breakerResetSeconds": 60}, "apikey": {}}}
    response = client.patch(URL, body, format="json")
    assert response.status_code == 200
    profiles = response.json()["profiles"]
    assert list(profiles) == ["apikey", "default", "oauth"]
    assert numbers(profiles["oauth"]) == {**DEFAULTS, "breakerFailureThreshold": 3, "breakerResetSeconds": 60.0}
    assert numbers(profiles["apikey"]) == DEFAULTS
    assert client.get(URL).json() == response.json()


def test_put_ignores_echoed_updated_at(client: APIClient) -> None:
    current = client.get(URL).json()
    current["profiles"]["default"]["backoffMultiplier"] = 3
    response = client.put(URL, current, format="json")
    assert response.status_code == 200
    assert response.json()["profiles"]["default"]["backoffMultiplier"] == 3.0


def test_all_or_nothing(client: APIClient) -> None:
    body = {"profiles": {"default": {"cooldownBaseSeconds": 2}, "oauth": {"cooldownBaseSeconds": -1}}}
    response = client.put(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "profiles.oauth.cooldownBaseSeconds"
    assert ResilienceProfile.objects.get(auth_type="default").cooldown_base_seconds == 1.0
    assert not ResilienceProfile.objects.filter(auth_type="oauth").exists()


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({}, "profiles", "required"),
        ({"profiles": {}}, "profiles", "at least one"),
        ({"profiles": []}, "profiles", "dictionary"),
        ({"profiles": {"local": {}}}, "profiles.local", "unknown auth type"),
        ({"profiles": {"default": 5}}, "profiles.default", "dictionary"),
        ({"profiles": {"default": {"cooldown": 1}}}, "profiles.default.cooldown", "unknown field"),
        ({"profiles": {"default": {"cooldownBaseSeconds": "1"}}}, "profiles.default.cooldownBaseSeconds", "number"),
        ({"profiles": {"default": {"cooldownBaseSeconds": True}}}, "profiles.default.cooldownBaseSeconds", "number"),
        ({"profiles": {"default": {"cooldownBaseSeconds": 0}}}, "profiles.default.cooldownBaseSeconds", "greater"),
        ({"profiles": {"default": {"cooldownBaseSeconds": 86401}}}, "profiles.default.cooldownBaseSeconds", "86400"),
        ({"profiles": {"default": {"cooldownMaxSeconds": 0.5}}}, "profiles.default.cooldownMaxSeconds", "below"),
        ({"profiles": {"default": {"backoffMultiplier": 0.5}}}, "profiles.default.backoffMultiplier", "at least 1"),
        ({"profiles": {"default": {"breakerFailureThreshold": 0}}}, "profiles.default.breakerFailureThreshold", "1"),
        (
            {"profiles": {"default": {"breakerFailureThreshold": 2.5}}},
            "profiles.default.breakerFailureThreshold",
            "integer",
        ),
        ({"profiles": {"default": {"breakerHalfOpenProbes": -1}}}, "profiles.default.breakerHalfOpenProbes", "1"),
        ({"profiles": {"default": {"breakerResetSeconds": -3}}}, "profiles.default.breakerResetSeconds", "greater"),
        (
            {"profiles": {"default": {"creditErrorCooldownSeconds": 0}}},
            "profiles.default.creditErrorCooldownSeconds",
            "greater",
        ),
        ({"profiles": {"default": {}}, "defaults": {}}, "defaults", "unknown"),
    ],
)
def test_bad_input_is_400_naming_the_field(client: APIClient, body: dict[str, Any], field: str, fragment: str) -> None:
    response = client.put(URL, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    details = {d["field"]: d["message"] for d in error["details"]}
    assert field in details, details
    assert fragment.lower() in (details[field] + error["message"]).lower()
    row = ResilienceProfile.objects.get(auth_type="default")
    assert (row.cooldown_base_seconds, row.cooldown_max_seconds, row.breaker_failure_threshold) == (1.0, 300.0, 5)
