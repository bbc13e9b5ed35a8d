"""/api/models/alias: list, upsert by POST or PUT, delete by query parameter, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from gateway.models import ModelAlias
from tests.factories import ComboFactory, ModelAliasFactory, ProviderNodeFactory

pytestmark = pytest.mark.django_db

URL = "/api/models/alias"


@pytest.fixture
def client(admin_api: APIClient) -> APIClient:
    return admin_api


def test_list_is_a_map_of_alias_to_model(client: APIClient) -> None:
    assert client.get(URL).json() == {"aliases": {}}
    ModelAliasFactory.create(alias="fast", model="groq/llama-3.3-70b-versatile")
    ModelAliasFactory.create(alias="gpt-*", model="openai/gpt-4o")
    assert client.get(URL).json() == {"aliases": {"fast": "groq/llama-3.3-70b-versatile", "gpt-*": "openai/gpt-4o"}}


def test_post_creates_then_updates(client: APIClient) -> None:
    created = client.post(URL, {"alias": "smart", "model": "openai/gpt-4o"}, format="json")
    assert created.status_code == 201
    assert created.json() == {"success": True, "alias": "smart", "model": "openai/gpt-4o"}
    updated = client.post(URL, {"alias": "smart", "model": " anthropic/claude-sonnet-4-5 "}, format="json")
    assert updated.status_code == 200
    assert updated.json()["model"] == "anthropic/claude-sonnet-4-5"
    assert list(ModelAlias.objects.values_list("alias", "model")) == [("smart", "anthropic/claude-sonnet-4-5")]


def test_put_is_an_upsert_too(client: APIClient) -> None:
    assert client.put(URL, {"alias": "cheap", "model": "ds/deepseek-chat"}, format="json").status_code == 201
    assert client.get(URL).json()["aliases"] == {"cheap": "ds/deepseek-chat"}


def test_target_may_use_a_node_prefix_and_a_slashed_model_id(client: APIClient) -> None:
    ProviderNodeFactory.create(prefix="lab")
    response = client.post(URL, {"alias": "qwen", "model": "lab/Qwen/Qwen3-8B"}, format="json")
    assert response.status_code == 201
    assert response.json()["model"] == "lab/Qwen/Qwen3-8B"


def test_delete_by_query_parameter(client: APIClient) -> None:
    ModelAliasFactory.create(alias="gone")
    ModelAliasFactory.create(alias="kept")
    response = client.delete(f"{URL}?alias=gone")
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert list(ModelAlias.objects.values_list("alias", flat=True)) == ["kept"]


def test_delete_unknown_is_404_and_missing_parameter_is_400(client: APIClient) -> None:
    missing = client.delete(f"{URL}?alias=nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"message": "Alias 'nope' not found", "type": "not_found_error"}
    no_param = client.delete(URL)
    assert no_param.status_code == 400
    assert no_param.json()["error"]["details"] == [
        {"field": "alias", "message": "The query parameter 'alias' is required"}
    ]


def test_alias_equal_to_a_combo_name_is_refused(client: APIClient) -> None:
    ComboFactory.create(name="team")
    response = client.post(URL, {"alias": "team", "model": "openai/gpt-4o"}, format="json")
    assert response.status_code == 400
    assert "combo" in response.json()["error"]["message"]
    assert not ModelAlias.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"model": "openai/gpt-4o"}, "alias", "required"),
        ({"alias": "x"}, "model", "required"),
        ({"alias": 5, "model": "openai/gpt-4o"}, "alias", "string"),
        ({"alias": "x", "model": ["openai/gpt-4o"]}, "model", "string"),
        ({"alias": "two words", "model": "openai/gpt-4o"}, "alias", "spaces"),
        ({"alias": "a/b", "model": "openai/gpt-4o"}, "alias", "'/'"),
        ({"alias": "gpt-[45]", "model": "openai/gpt-4o"}, "alias", "brackets"),
        ({"alias": "x" * 201, "model": "openai/gpt-4o"}, "alias", "200"),
        ({"alias": "x", "model": "gpt-4o"}, "model", "provider/model"),
        ({"alias": "x", "model": "openai/"}, "model", "provider/model"),
        ({"alias": "x", "model": "nosuch/gpt-4o"}, "model", "nosuch"),
        ({"alias": "x", "model": "openai/gpt 4o"}, "model", "provider/model"),
        ({"alias": "x", "model": "openai/gpt-4o", "extra": 1}, "extra", "unknown"),
    ],
)
def test_bad_input_is_400_naming_the_field(client: APIClient, body: dict[str, Any], field: str, fragment: str) -> None:
    response = client.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    details = {d["field"]: d["message"] for d in error["details"]}
    assert field in details
    assert fragment.lower() in (details[field] + error["message"]).lower()
    assert not ModelAlias.objects.exists()


def test_a_node_id_is_not_a_model_prefix(client: APIClient) -> None:
    node = ProviderNodeFactory.create(prefix="lab")
    response = client.post(URL, {"alias": "x", "model": f"{node.pk}/qwen3"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"model: unknown provider '{node.pk}' in '{node.pk}/qwen3'"
