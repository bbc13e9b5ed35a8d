"""/api/pricing: the catalog merged with overrides (GET), upserting (PATCH) and removing
(DELETE) overrides, bad input, auth."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from tests.factories import PriceOverrideFactory, ProviderNodeFactory
from usage.models import PriceOverride

pytestmark = pytest.mark.django_db

TOKEN_FIELDS = {"input", "output", "cached", "reasoning", "cacheCreation"}


def test_get_merges_catalog_and_overrides(operator: APIClient) -> None:
    PriceOverrideFactory.create(provider="openai", model="gpt-4o", output=Decimal("12.5"), input=None)
    PriceOverrideFactory.create(provider="openai", model="ft:my-model", input=Decimal("1"), output=None)
    response = operator.get("/api/pricing")
    assert response.status_code == 200
    body = response.json()

    sonnet = body["anthropic"]["claude-sonnet-4-5"]
    assert sonnet == {
        "input": 3.0,
        "output": 15.0,
        "cached": 0.3,
        "reasoning": 15.0,  # no reasoning price: billed as output
        "cacheCreation": 3.75,
        "source": "catalog",
    }
    gpt4o = body["openai"]["gpt-4o"]
    assert gpt4o["source"] == "override" and gpt4o["overridden"] == ["output"]
    assert (gpt4o["input"], gpt4o["output"], gpt4o["cached"]) == (2.5, 12.5, 1.25)
    custom = body["openai"]["ft:my-model"]
    assert custom == {
        "input": 1.0,
        "output": None,
        "cached": 1.0,
        "reasoning": None,
        "cacheCreation": 1.0,
        "source": "override",
        "overridden": ["input"],
    }
    assert body["openai"]["whisper-1"]["perAudioSecond"] == 0.0001
    assert body["openai"]["dall-e-3"]["perImage"] == 0.04
    assert "perImage" not in body["openai"]["gpt-4o"]
    for models in body.values():
        for entry in models.values():
            assert set(entry) >= TOKEN_FIELDS


def test_patch_creates_then_updates_field_by_field(operator: APIClient) -> None:
    created = operator.patch(
        "/api/pricing", {"provider": "openai", "model": "gpt-4o-mini", "input": 0.2, "cached": 0}, format="json"
    )
    assert created.status_code == 200, created.content
    assert created.json() == {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "price": {
            "input": 0.2,
            "output": 0.6,
            "cached": 0.0,
            "reasoning": 0.6,
            "cacheCreation": 0.2,
            "source": "override",
            "overridden": ["input", "cached"],
        },
    }
    updated = operator.patch(
        "/api/pricing", {"provider": "openai", "model": "gpt-4o-mini", "output": 1, "input": None}, format="json"
    )
    price = updated.json()["price"]
    assert (price["input"], price["output"], price["cached"]) == (0.15, 1.0, 0.0)
    row = PriceOverride.objects.get()
    assert (row.input, row.output, row.cached) == (None, Decimal("1"), Decimal("0"))


def test_patch_accepts_aliases_and_new_models(operator: APIClient) -> None:
    body = {"provider": "cc", "model": "claude-next", "input": 1, "output": 5, "perImage": 0.01}
    response = operator.patch("/api/pricing", body, format="json")
    assert response.status_code == 200
    assert response.json()["provider"] == "claude"
    # Anthropic format: an unpriced cache write is 1.25 x input.
    assert response.json()["price"]["cacheCreation"] == 1.25
    assert operator.get("/api/pricing").json()["claude"]["claude-next"]["perImage"] == 0.01


def test_patch_clearing_every_price_removes_the_override(operator: APIClient) -> None:
    PriceOverrideFactory.create(provider="openai", model="gpt-4o", input=Decimal("9"), output=None)
    response = operator.patch("/api/pricing", {"provider": "openai", "model": "gpt-4o", "input": None}, format="json")
    assert response.status_code == 200
    assert response.json()["price"]["source"] == "catalog"
    assert not PriceOverride.objects.exists()
    unknown = operator.patch("/api/pricing", {"provider": "openai", "model": "nothing", "input": None}, format="json")
    assert unknown.json() == {"provider": "openai", "model": "nothing", "price": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"model": "m", "input": 1}, "provider"),
        ({"provider": "openai", "input": 1}, "model"),
        ({"provider": "nope", "model": "m", "input": 1}, "provider"),
        ({"provider": "openai", "model": "m", "input": -1}, "input"),
        ({"provider": "openai", "model": "m", "input": "1.5"}, "input"),
        ({"provider": "openai", "model": "m", "output": True}, "output"),
        ({"provider": "openai", "model": "m", "cacheCreation": 10_000_000}, "cacheCreation"),
        ({"provider": "openai", "model": "m", "cache_creation": 1}, "cache_creation"),
        ({"provider": "openai", "model": "   ", "input": 1}, "model"),
        ({"provider": "openai", "model": "m"}, None),
    ],
)
def test_patch_rejects_bad_input(operator: APIClient, body: dict[str, object], field: str | None) -> None:
    response = operator.patch("/api/pricing", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if field is not None:
        assert field in {d["field"] for d in error["details"]}
    assert not PriceOverride.objects.exists()


def test_delete_removes_an_override(operator: APIClient) -> None:
    PriceOverrideFactory.create(provider="claude", model="claude-sonnet-4-5", input=Decimal("1"))
    response = operator.delete("/api/pricing?provider=cc&model=claude-sonnet-4-5")
    assert response.status_code == 200 and response.json() == {"success": True}
    assert not PriceOverride.objects.exists()
    again = operator.delete("/api/pricing?provider=claude&model=claude-sonnet-4-5")
    assert again.status_code == 404 and again.json()["error"]["type"] == "not_found_error"
    missing = operator.delete("/api/pricing?provider=openai")
    assert missing.status_code == 400 and missing.json()["error"]["details"][0]["field"] == "model"


def test_delete_an_override_of_a_deleted_node(operator: APIClient) -> None:
    node = ProviderNodeFactory.create(prefix="gone")
    operator.patch("/api/pricing", {"provider": "gone", "model": "m", "input": 1}, format="json")
    node.delete()
    assert operator.get("/api/pricing").json()["gone"]["m"]["source"] == "override"
    assert operator.delete("/api/pricing?provider=gone&model=m").status_code == 200


def test_operators_only(inference_client: APIClient) -> None:
    assert APIClient().get("/api/pricing").status_code == 401
    assert inference_client.get("/api/pricing").status_code == 403
    body = {"provider": "openai", "model": "gpt-4o", "input": 0}
    assert inference_client.patch("/api/pricing", body, format="json").status_code == 403
    assert not PriceOverride.objects.exists()
