"""/api/provider-nodes: CRUD, validation, credentials added through /api/providers, renames
and deletes that carry connections and custom models along, and a node serving /v1 traffic."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

from gateway.keys import generate_api_key, hash_api_key, visible_prefix
from gateway.models import ApiKey
from providers.models import ProviderConnection, ProviderModel, ProviderNode
from tests.factories import (
    ApiKeyFactory,
    ComboFactory,
    ModelAliasFactory,
    ProviderConnectionFactory,
    ProviderModelFactory,
    ProviderNodeFactory,
)
from tests.fakes.provider import Behaviour, FakeProvider
from tests.live_server import LiveGateway

NODE_FIELDS = {
    "id",
    "name",
    "prefix",
    "type",
    "apiType",
    "baseUrl",
    "chatPath",
    "modelsPath",
    "createdAt",
    "updatedAt",
}


def admin_client() -> APIClient:
    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return api


@pytest.fixture
def client(db: None) -> APIClient:
    return admin_client()


def create(client: APIClient, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Lab", "prefix": "lab", "baseUrl": "https://llm.lab.example/v1", **overrides}
    response = client.post("/api/provider-nodes", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["node"]


# --- CRUD ---------------------------------------------------------------------------------


def test_create_returns_the_node_with_defaults(client: APIClient) -> None:
    node = create(client)
    assert set(node) == NODE_FIELDS
    assert (node["name"], node["prefix"], node["type"], node["apiType"]) == ("Lab", "lab", "openai-compatible", "chat")
    assert (node["baseUrl"], node["chatPath"], node["modelsPath"]) == ("https://llm.lab.example/v1", "", "")


def test_full_endpoint_urls_are_cut_to_the_prefix(client: APIClient) -> None:
    openai_node = create(client, prefix="a", baseUrl="https://a.example/v1/chat/completions/")
    assert openai_node["baseUrl"] == "https://a.example/v1"
    responses_node = create(client, prefix="b", apiType="responses", baseUrl="https://b.example/v1/responses")
    assert responses_node["baseUrl"] == "https://b.example/v1"
    anthropic_node = create(client, prefix="c", type="anthropic-compatible", baseUrl="https://c.example/v1/messages")
    assert (anthropic_node["baseUrl"], anthropic_node["apiType"]) == ("https://c.example/v1", "chat")


def test_list_get_put_partial_delete(client: APIClient) -> None:
    node = create(client, chatPath="/v2/chat", modelsPath="/v2/models")
    create(client, prefix="alpha", name="Alpha")
    assert [n["prefix"] for n in client.get("/api/provider-nodes").json()["nodes"]] == ["alpha", "lab"]
    path = f"/api/provider-nodes/{node['id']}"
    assert client.get(path).json()["node"]["chatPath"] == "/v2/chat"

    updated = client.put(path, {"name": "Lab 2", "chatPath": ""}, format="json")
    assert updated.status_code == 200
    body = updated.json()["node"]
    assert (body["name"], body["chatPath"], body["modelsPath"], body["prefix"]) == ("Lab 2", "", "/v2/models", "lab")

    deleted = client.delete(path)
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Node deleted"}
    assert client.get(path).status_code == 404
    assert client.put(path, {"name": "x"}, format="json").status_code == 404


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"prefix": "Lab"}, "prefix", "lowercase"),
        ({"prefix": "-lab"}, "prefix", "starting with"),
        ({"prefix": "l" * 51}, "prefix", "50"),
        ({"prefix": "with space"}, "prefix", "lowercase"),
        ({"prefix": "1234"}, "prefix", "only digits"),
        ({"prefix": "openai"}, "prefix", "catalog provider openai"),
        ({"prefix": "ds"}, "prefix", "catalog provider deepseek"),
        ({"prefix": 7}, "prefix", "string"),
        ({"name": ""}, "name", "blank"),
        ({"baseUrl": ""}, "baseUrl", "blank"),
        ({"baseUrl": "ftp://x.example"}, "baseUrl", "http"),
        ({"type": "gemini-compatible"}, "type", "valid choice"),
        ({"apiType": "completions"}, "apiType", "valid choice"),
        ({"type": "anthropic-compatible", "apiType": "responses"}, "apiType", "anthropic-compatible"),
        ({"chatPath": "v1/chat"}, "chatPath", "start with '/'"),
        ({"modelsPath": "/models list"}, "modelsPath", "start with '/'"),
        ({"compatMode": "cc"}, "compatMode", "unknown"),
    ],
)
def test_bad_input_is_400_naming_the_field(client: APIClient, overrides: dict, field: str, fragment: str) -> None:
    body = {"name": "Lab", "prefix": "lab", "baseUrl": "https://llm.lab.example/v1", **overrides}
    response = client.post("/api/provider-nodes", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    details = {d["field"]: d["message"] for d in error["details"]}
    assert field in details, details
    assert fragment.lower() in (details[field] + error["message"]).lower()
    assert not ProviderNode.objects.exists()


def test_duplicate_prefix_is_refused(client: APIClient) -> None:
    create(client)
    response = client.post(
        "/api/provider-nodes", {"name": "Other", "prefix": "lab", "baseUrl": "https://x.example"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "A provider node with prefix 'lab' already exists"


# --- credentials, renames, deletes ---------------------------------------------------------


def test_connections_name_a_node_by_prefix_or_id(client: APIClient) -> None:
    node = create(client, type="anthropic-compatible")
    for ref in ("lab", "LAB", node["id"], str(node["id"])):
        response = client.post("/api/providers", {"provider": ref, "name": f"k-{ref}", "apiKey": "sk-x"}, format="json")
        assert response.status_code == 201, response.content
        assert response.json()["connection"]["provider"] == "lab"
    unknown = client.post("/api/providers", {"provider": 999999, "name": "x", "apiKey": "sk-x"}, format="json")
    assert unknown.status_code == 400
    assert "no provider node has id 999999" in unknown.json()["error"]["message"]


def test_prefix_rename_carries_connections_and_custom_models(client: APIClient) -> None:
    node = ProviderNodeFactory.create(prefix="old")
    connection = ProviderConnectionFactory.create(provider="old")
    custom = ProviderModelFactory.create(provider="old", model_id="m1")
    other = ProviderConnectionFactory.create(provider="openai")
    response = client.put(f"/api/provider-nodes/{node.pk}", {"prefix": "new"}, format="json")
    assert response.status_code == 200, response.content
    connection.refresh_from_db()
    custom.refresh_from_db()
    other.refresh_from_db()
    assert (connection.provider, custom.provider, other.provider) == ("new", "new", "openai")


@pytest.mark.parametrize("method", ["rename", "delete"])
def test_node_used_by_an_alias_or_combo_is_kept(client: APIClient, method: str) -> None:
    node = ProviderNodeFactory.create(prefix="lab")
    ModelAliasFactory.create(alias="local", model="lab/qwen3")
    ComboFactory.create(name="mix", members=["openai/gpt-4o", {"model": "LAB/llama", "weight": 5}])
    path = f"/api/provider-nodes/{node.pk}"
    response = client.put(path, {"prefix": "lab2"}, format="json") if method == "rename" else client.delete(path)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "alias 'local'" in message and "combo 'mix'" in message
    node.refresh_from_db()
    assert node.prefix == "lab"


def test_delete_removes_the_nodes_connections_and_custom_models(client: APIClient) -> None:
    node = ProviderNodeFactory.create(prefix="lab")
    ProviderConnectionFactory.create(provider="lab")
    ProviderModelFactory.create(provider="lab")
    kept = ProviderConnectionFactory.create(provider="openai")
    ProviderModelFactory.create(provider="openai", model_id="kept")
    assert client.delete(f"/api/provider-nodes/{node.pk}").status_code == 200
    assert list(ProviderConnection.objects.values_list("pk", flat=True)) == [kept.pk]
    assert list(ProviderModel.objects.values_list("model_id", flat=True)) == ["kept"]


def test_connection_checks_use_the_nodes_models_path(client: APIClient, fake_provider: FakeProvider) -> None:
    create(client, baseUrl=fake_provider.url, modelsPath="/v1/models")
    conn = client.post("/api/providers", {"provider": "lab", "name": "k", "apiKey": "sk-node"}, format="json").json()
    result = client.post(f"/api/providers/{conn['connection']['id']}/test").json()
    assert result["valid"] is True, result
    seen = [r for r in fake_provider.requests if r.method == "GET"]
    assert seen[-1].path == "/v1/models"
    assert seen[-1].headers["authorization"] == "Bearer sk-node"


# --- the data plane sees a node as a provider ----------------------------------------------


def test_node_serves_chat_as_prefix_slash_model(gateway: LiveGateway, fake_provider: FakeProvider) -> None:
    api = admin_client()
    create(api, baseUrl=fake_provider.openai_base_url)
    added = api.post("/api/providers", {"provider": "lab", "name": "k", "apiKey": "sk-lab"}, format="json")
    assert added.status_code == 201
    plain = generate_api_key()
    ApiKey.objects.create(name="client", key_hash=hash_api_key(plain), prefix=visible_prefix(plain))
    fake_provider.behave(Behaviour(reply="from the node"))

    response = httpx.post(
        f"{gateway.base_url}/chat/completions",
        json={"model": "lab/Qwen/Qwen3-8B", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {plain}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "from the node"
    upstream = fake_provider.requests[-1]
    assert upstream.json["model"] == "Qwen/Qwen3-8B"
    assert upstream.headers["authorization"] == "Bearer sk-lab"
