"""/api/provider-models: custom models per provider (catalog provider or node): upsert,
filtered list, delete by query parameters, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from providers.models import ProviderModel
from tests.factories import ProviderModelFactory, ProviderNodeFactory

pytestmark = pytest.mark.django_db

URL = "/api/provider-models"
MODEL_FIELDS = {
    "id",
    "provider",
    "modelId",
    "modelName",
    "apiFormat",
    "supportedEndpoints",
    "createdAt",
    "updatedAt",
}


@pytest.fixture
def client(admin_api: APIClient) -> APIClient:
    return admin_api


def test_create_with_defaults(client: APIClient) -> None:
    response = client.post(URL, {"provider": "openai", "modelId": "gpt-5-preview"}, format="json")
    assert response.status_code == 201
    model = response.json()["model"]
    assert set(model) == MODEL_FIELDS
    assert (model["provider"], model["modelId"], model["modelName"]) == ("openai", "gpt-5-preview", "")
    assert (model["apiFormat"], model["supportedEndpoints"]) == ("chat-completions", ["chat"])


def test_post_again_updates_and_keeps_unsent_fields(client: APIClient) -> None:
    first = {"provider": "ds", "modelId": "deepseek-v4", "modelName": "DeepSeek V4", "supportedEndpoints": ["chat"]}
    assert client.post(URL, first, format="json").status_code == 201
    second = client.put(
        URL, {"provider": "deepseek", "modelId": "deepseek-v4", "apiFormat": "responses"}, format="json"
    )
    assert second.status_code == 200
    model = second.json()["model"]
    assert (model["provider"], model["modelName"], model["apiFormat"]) == ("deepseek", "DeepSeek V4", "responses")
    assert ProviderModel.objects.count() == 1


def test_node_models_and_endpoint_lists(client: APIClient) -> None:
    node = ProviderNodeFactory.create(prefix="lab")
    body = {"provider": node.pk, "modelId": "Qwen/Qwen3-Embedding-8B", "supportedEndpoints": ["embeddings", "chat"]}
    response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    model = response.json()["model"]
    assert (model["provider"], model["supportedEndpoints"]) == ("lab", ["embeddings", "chat"])


def test_list_filters_by_provider(client: APIClient) -> None:
    ProviderModelFactory.create(provider="openai", model_id="b")
    ProviderModelFactory.create(provider="openai", model_id="a")
    ProviderModelFactory.create(provider="deepseek", model_id="c")
    everything = client.get(URL).json()["models"]
    assert [(m["provider"], m["modelId"]) for m in everything] == [("deepseek", "c"), ("openai", "a"), ("openai", "b")]
    assert [m["modelId"] for m in client.get(f"{URL}?provider=ds").json()["models"]] == ["c"]
    unknown = client.get(f"{URL}?provider=nosuch")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"][0]["field"] == "provider"


def test_delete_by_provider_and_model(client: APIClient) -> None:
    ProviderModelFactory.create(provider="openai", model_id="org/model-1")
    ProviderModelFactory.create(provider="openai", model_id="kept")
    response = client.delete(f"{URL}?provider=openai&model=org/model-1")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert list(ProviderModel.objects.values_list("model_id", flat=True)) == ["kept"]
    again = client.delete(f"{URL}?provider=openai&model=org/model-1")
    assert again.status_code == 404
    assert again.json()["error"]["message"] == "Custom model openai/org/model-1 not found"
    missing = client.delete(f"{URL}?provider=openai")
    assert missing.status_code == 400
    assert missing.json()["error"]["details"][0]["field"] == "model"


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"provider": "nosuch"}, "provider", "nosuch"),
        ({"provider": True}, "provider", "string"),
        ({"modelId": ""}, "modelId", "blank"),
        ({"modelId": "two words"}, "modelId", "spaces"),
        ({"modelId": "m" * 201}, "modelId", "200"),
        ({"modelName": 3}, "modelName", "string"),
        ({"apiFormat": "completions"}, "apiFormat", "valid choice"),
        ({"provider": "anthropic", "apiFormat": "responses"}, "apiFormat", "openai-format"),
        ({"supportedEndpoints": []}, "supportedEndpoints", "non-empty"),
        ({"supportedEndpoints": ["chat", "video"]}, "supportedEndpoints", "video"),
        ({"supportedEndpoints": "chat"}, "supportedEndpoints", "list"),
        ({"model_id": "x"}, "model_id", "modelId"),
    ],
)
def test_bad_input_is_400_naming_the_field(client: APIClient, overrides: dict, field: str, fragment: str) -> None:
    body: dict[str, Any] = {"provider": "openai", "modelId": "custom-1", **overrides}
    response = client.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    details = {d["field"]: d["message"] for d in error["details"]}
    assert field in details, details
    assert fragment.lower() in (details[field] + error["message"]).lower()
    assert not ProviderModel.objects.exists()


def test_duplicate_endpoints_are_merged(client: APIClient) -> None:
    body = {"provider": "openai", "modelId": "m", "supportedEndpoints": ["chat", "chat", "audio"]}
    assert client.post(URL, body, format="json").json()["model"]["supportedEndpoints"] == ["chat", "audio"]
