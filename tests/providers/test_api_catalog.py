"""/api/models/catalog: every known model by provider, custom nodes and models included."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from providers.catalog import get_catalog
from tests.factories import ProviderModelFactory, ProviderNodeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(admin_api: APIClient) -> APIClient:
    return admin_api


def test_shipped_catalog_shape(client: APIClient) -> None:
    catalog = client.get("/api/models/catalog").json()["catalog"]
    assert set(catalog) == set(get_catalog().providers)
    deepseek = catalog["deepseek"]
    assert (deepseek["name"], deepseek["format"], deepseek["aliases"], deepseek["node"]) == (
        get_catalog().providers["deepseek"].name,
        "openai",
        ["ds"],
        False,
    )
    gpt = next(m for m in catalog["openai"]["models"] if m["id"] == "gpt-4o-mini")
    assert gpt["type"] == "chat" and gpt["custom"] is False
    assert gpt["contextLength"] > 0 and gpt["price"]["input"] > 0
    assert "apiFormat" not in gpt
    embedding = next(m for m in catalog["openai"]["models"] if m["type"] == "embedding")
    assert embedding["dimensions"] > 0


def test_nodes_and_custom_models_are_included(client: APIClient) -> None:
    ProviderNodeFactory.create(prefix="lab", name="Lab", type="anthropic-compatible")
    ProviderModelFactory.create(provider="lab", model_id="lab-large", model_name="Lab Large")
    ProviderModelFactory.create(provider="openai", model_id="gpt-4o-mini", model_name="Mine")
    ProviderModelFactory.create(provider="openai", model_id="ft:gpt-4o:acme", supported_endpoints=["embeddings"])
    catalog = client.get("/api/models/catalog").json()["catalog"]

    lab = catalog["lab"]
    assert (lab["name"], lab["format"], lab["aliases"], lab["node"]) == ("Lab", "anthropic", [], True)
    assert lab["models"] == [
        {
            "id": "lab-large",
            "type": "chat",
            "name": "Lab Large",
            "custom": True,
            "apiFormat": "chat-completions",
            "supportedEndpoints": ["chat"],
        }
    ]
    openai_models = {m["id"]: m for m in catalog["openai"]["models"]}
    overridden = openai_models["gpt-4o-mini"]
    assert overridden["custom"] is True and overridden["name"] == "Mine"
    assert overridden["price"]["input"] > 0, "a custom entry keeps the shipped prices"
    assert openai_models["ft:gpt-4o:acme"]["type"] == "embedding"
    assert len(openai_models) == len(get_catalog().providers["openai"].models) + 1


def test_type_filter(client: APIClient) -> None:
    catalog = client.get("/api/models/catalog?type=embedding").json()["catalog"]
    assert {m["type"] for p in catalog.values() for m in p["models"]} == {"embedding"}
    bad = client.get("/api/models/catalog?type=video")
    assert bad.status_code == 400
    assert bad.json()["error"]["details"][0]["field"] == "type"
