"""The Django admin for custom nodes and custom models: validation and writes go through the
services; a node's connections appear in the connection form's provider choices."""

from __future__ import annotations

import pytest
from django.test import Client

from providers.models import ProviderConnection, ProviderModel, ProviderNode
from tests.factories import (
    ModelAliasFactory,
    ProviderConnectionFactory,
    ProviderModelFactory,
    ProviderNodeFactory,
)

pytestmark = pytest.mark.django_db


def node_form(**overrides: str) -> dict[str, str]:
    data = {
        "name": "Lab",
        "prefix": "lab",
        "type": "openai-compatible",
        "api_type": "chat",
        "base_url": "https://lab.example/v1/chat/completions",
        "chat_path": "",
        "models_path": "",
    }
    data.update(overrides)
    return data


def test_node_add_normalises_and_offers_it_for_connections(staff: Client) -> None:
    response = staff.post("/admin/providers/providernode/add/", node_form())
    assert response.status_code == 302, response.content.decode()[:3000]
    node = ProviderNode.objects.get()
    assert (node.prefix, node.base_url) == ("lab", "https://lab.example/v1")
    connection_page = staff.get("/admin/providers/providerconnection/add/").content.decode()
    assert '<option value="lab">Lab (lab, custom node)</option>' in connection_page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prefix": "openai"}, "taken by the catalog provider openai"),
        ({"prefix": "UPPER"}, "lowercase"),
        ({"type": "anthropic-compatible", "api_type": "responses"}, "must be &#x27;chat&#x27;"),
        ({"chat_path": "no-slash"}, "must start with"),
    ],
)
def test_node_form_errors_come_from_the_service(staff: Client, overrides: dict[str, str], message: str) -> None:
    response = staff.post("/admin/providers/providernode/add/", node_form(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ProviderNode.objects.exists()


def test_node_rename_in_admin_moves_connections(staff: Client) -> None:
    node = ProviderNodeFactory.create(prefix="old", base_url="https://old.example/v1")
    connection = ProviderConnectionFactory.create(provider="old")
    url = f"/admin/providers/providernode/{node.pk}/change/"
    response = staff.post(url, node_form(prefix="new", base_url="https://old.example/v1"))
    assert response.status_code == 302, response.content.decode()[:3000]
    connection.refresh_from_db()
    assert connection.provider == "new"


def test_node_delete_page_lists_its_connections(staff: Client) -> None:
    node = ProviderNodeFactory.create(prefix="lab")
    ProviderConnectionFactory.create(provider="lab", name="lab key")
    page = staff.get(f"/admin/providers/providernode/{node.pk}/delete/").content.decode()
    assert "Connection: lab: lab key" in page


def test_node_used_by_an_alias_is_protected(staff: Client) -> None:
    node = ProviderNodeFactory.create(prefix="lab")
    ModelAliasFactory.create(alias="local", model="lab/qwen")
    page = staff.get(f"/admin/providers/providernode/{node.pk}/delete/").content.decode()
    assert "alias &#x27;local&#x27; routes to lab" in page
    staff.post(f"/admin/providers/providernode/{node.pk}/delete/", {"post": "yes"})
    assert ProviderNode.objects.exists()


def test_node_delete_takes_its_connections(staff: Client) -> None:
    node = ProviderNodeFactory.create(prefix="lab")
    ProviderConnectionFactory.create(provider="lab")
    response = staff.post(f"/admin/providers/providernode/{node.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ProviderNode.objects.exists()
    assert not ProviderConnection.objects.exists()


def test_custom_model_add_change_and_validation(staff: Client) -> None:
    ProviderNodeFactory.create(prefix="lab")
    form = {"provider": "lab", "model_id": "lab-large", "model_name": "", "api_format": "chat-completions"}
    response = staff.post("/admin/providers/providermodel/add/", {**form, "supported_endpoints": ["chat", "audio"]})
    assert response.status_code == 302, response.content.decode()[:3000]
    row = ProviderModel.objects.get()
    assert (row.provider, row.model_id, row.supported_endpoints) == ("lab", "lab-large", ["chat", "audio"])

    url = f"/admin/providers/providermodel/{row.pk}/change/"
    changed = staff.post(url, {**form, "model_id": "lab-xl", "supported_endpoints": ["embeddings"]})
    assert changed.status_code == 302
    row.refresh_from_db()
    assert (row.model_id, row.supported_endpoints) == ("lab-xl", ["embeddings"])

    bad = staff.post(
        "/admin/providers/providermodel/add/",
        {**form, "provider": "anthropic", "api_format": "responses", "supported_endpoints": ["chat"]},
    )
    assert bad.status_code == 200
    assert "needs an OpenAI-format provider" in bad.content.decode()


def test_custom_model_list_filters(staff: Client) -> None:
    ProviderModelFactory.create(provider="openai", model_id="find-this")
    ProviderModelFactory.create(provider="deepseek", model_id="not-this")
    page = staff.get("/admin/providers/providermodel/?provider=openai").content.decode()
    assert "find-this" in page and "not-this" not in page
