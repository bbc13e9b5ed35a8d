"""/api/combos: CRUD in camelCase and the validation on save (members, nesting, cycles,
names, references), each refusal a 400 that names the problem and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

from gateway.models import Combo
from tests.factories import ApiKeyFactory, ComboFactory, ModelAliasFactory, ProviderNodeFactory
from tests.live_server import LiveGateway

pytestmark = pytest.mark.django_db

COMBO_FIELDS = {"id", "name", "models", "strategy", "config", "isActive", "sortOrder", "createdAt", "updatedAt"}


@pytest.fixture
def client(admin_api: APIClient) -> APIClient:
    return admin_api


def create(client: APIClient, **body: Any) -> dict[str, Any]:
    body.setdefault("models", ["openai/gpt-4o-mini"])
    response = client.post("/api/combos", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["combo"]


def refused(client: APIClient, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    before = list(Combo.objects.order_by("pk").values())
    response = getattr(client, method)(path, body, format="json")
    assert response.status_code == 400, response.content
    assert list(Combo.objects.order_by("pk").values()) == before
    return response.json()["error"]


# --- CRUD ---------------------------------------------------------------------------------


def test_create_returns_the_combo_in_camel_case(client: APIClient) -> None:
    response = client.post(
        "/api/combos",
        {
            "name": "coding",
            "models": [
                "openai/gpt-4o",
                {"model": "cc/claude-sonnet-4-5", "weight": 30},
                " groq/llama-3.3-70b-versatile ",
            ],
            "strategy": "weighted",
            "config": {"maxAttempts": 2, "timeoutMs": 30000},
            "isActive": False,
        },
        format="json",
    )
    assert response.status_code == 201
    combo = response.json()["combo"]
    assert set(combo) == COMBO_FIELDS
    assert combo["name"] == "coding"
    assert combo["models"] == [
        "openai/gpt-4o",
        {"model": "cc/claude-sonnet-4-5", "weight": 30},
        "groq/llama-3.3-70b-versatile",
    ]
    assert (combo["strategy"], combo["isActive"]) == ("weighted", False)
    assert combo["config"] == {"maxAttempts": 2, "timeoutMs": 30000}


def test_defaults_and_sort_order_appends(client: APIClient) -> None:
    first = create(client, name="a")
    second = create(client, name="b")
    assert (first["strategy"], first["config"], first["isActive"]) == ("priority", {}, True)
    assert second["sortOrder"] == first["sortOrder"] + 1
    explicit = create(client, name="c", sortOrder=-5)
    assert explicit["sortOrder"] == -5


def test_member_object_weight_defaults_to_zero(client: APIClient) -> None:
    combo = create(client, name="w", models=[{"model": "openai/gpt-4o"}])
    assert combo["models"] == [{"model": "openai/gpt-4o", "weight": 0}]


def test_list_is_in_sort_order_then_name(client: APIClient) -> None:
    ComboFactory.create(name="zeta", sort_order=1)
    ComboFactory.create(name="alpha", sort_order=2)
    ComboFactory.create(name="beta", sort_order=1)
    response = client.get("/api/combos")
    assert [c["name"] for c in response.json()["combos"]] == ["beta", "zeta", "alpha"]
    assert all(set(c) == COMBO_FIELDS for c in response.json()["combos"])


def test_get_put_partial_delete(client: APIClient) -> None:
    combo = create(client, name="main", models=["openai/gpt-4o", "openai/gpt-4o-mini"])
    path = f"/api/combos/{combo['id']}"
    assert client.get(path).json()["combo"]["name"] == "main"

    updated = client.put(path, {"strategy": "round-robin", "isActive": False}, format="json")
    assert updated.status_code == 200
    body = updated.json()["combo"]
    assert (body["strategy"], body["isActive"], body["models"]) == (
        "round-robin",
        False,
        ["openai/gpt-4o", "openai/gpt-4o-mini"],
    )
    assert client.patch(path, {"name": "renamed"}, format="json").json()["combo"]["name"] == "renamed"

    deleted = client.delete(path)
    assert deleted.status_code == 200
    assert deleted.json() == {"message": "Combo deleted"}
    assert client.get(path).status_code == 404


def test_put_ignores_echoed_output_fields(client: APIClient) -> None:
    combo = create(client, name="echo")
    combo["strategy"] = "random"
    response = client.put(f"/api/combos/{combo['id']}", combo, format="json")
    assert response.status_code == 200
    assert response.json()["combo"]["strategy"] == "random"


def test_unknown_id_is_404(client: APIClient) -> None:
    response = client.get("/api/combos/424242")
    assert response.status_code == 404
    assert response.json()["error"] == {"message": "Combo 424242 not found", "type": "not_found_error"}
    assert client.put("/api/combos/424242", {"name": "x"}, format="json").status_code == 404
    assert client.delete("/api/combos/424242").status_code == 404


def test_members_may_name_nodes_and_other_combos(client: APIClient) -> None:
    ProviderNodeFactory.create(prefix="lab")
    create(client, name="inner", models=["lab/Qwen/Qwen3-8B"])
    outer = create(client, name="outer", models=["inner"])
    assert outer["models"] == ["inner"]
    weighted = create(client, name="weighted", models=[{"model": "inner", "weight": 3}, "LAB/other"])
    assert weighted["models"] == [{"model": "inner", "weight": 3}, "LAB/other"]


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"models": ["openai/gpt-4o"]}, "name", "required"),
        ({"name": "x"}, "models", "required"),
        ({"name": "has space", "models": ["openai/gpt-4o"]}, "name", "letters"),
        ({"name": "bad!", "models": ["openai/gpt-4o"]}, "name", "letters"),
        ({"name": "n" * 101, "models": ["openai/gpt-4o"]}, "name", "100"),
        ({"name": "x", "models": []}, "models", "non-empty"),
        ({"name": "x", "models": "openai/gpt-4o"}, "models", "list"),
        ({"name": "x", "models": ["gpt-4o"]}, "models[0]", "neither a combo nor provider/model"),
        ({"name": "x", "models": ["openai/gpt-4o", "nosuch/m"]}, "models[1]", "nosuch"),
        ({"name": "x", "models": ["openai/"]}, "models[0]", "provider/model"),
        ({"name": "x", "models": [5]}, "models[0]", "provider/model"),
        ({"name": "x", "models": [None]}, "models[0]", "null"),
        ({"name": "x", "models": ["openai/gpt-4o", "openai/gpt-4o"]}, "models[1]", "repeats"),
        ({"name": "x", "models": [{"model": "openai/gpt-4o", "weight": 101}]}, "models[0].weight", "0 to 100"),
        ({"name": "x", "models": [{"model": "openai/gpt-4o", "weight": -1}]}, "models[0].weight", "0 to 100"),
        ({"name": "x", "models": [{"model": "openai/gpt-4o", "weight": "5"}]}, "models[0].weight", "integer"),
        ({"name": "x", "models": [{"model": "openai/gpt-4o", "weight": True}]}, "models[0].weight", "integer"),
        ({"name": "x", "models": [{"weight": 5}]}, "models[0].model", "provider/model"),
        ({"name": "x", "models": [{"model": "openai/gpt-4o", "w": 5}]}, "models[0]", "unknown key"),
        ({"name": "x", "models": ["openai/gpt-4o"], "strategy": "fastest"}, "strategy", "valid choice"),
        ({"name": "x", "models": ["openai/gpt-4o"], "config": []}, "config", "dictionary"),
        ({"name": "x", "models": ["openai/gpt-4o"], "config": {"retries": 3}}, "config", "unknown key"),
        ({"name": "x", "models": ["openai/gpt-4o"], "config": {"maxAttempts": 0}}, "config.maxAttempts", "1 to 100"),
        ({"name": "x", "models": ["openai/gpt-4o"], "config": {"timeoutMs": "5"}}, "config.timeoutMs", "integer"),
        ({"name": "x", "models": ["openai/gpt-4o"], "isActive": "yes"}, "isActive", "true or false"),
        ({"name": "x", "models": ["openai/gpt-4o"], "sortOrder": 1.5}, "sortOrder", "integer"),
        ({"name": "x", "models": ["openai/gpt-4o"], "is_active": True}, "is_active", "isActive"),
    ],
)
def test_bad_input_is_400_naming_the_field(client: APIClient, body: dict[str, Any], field: str, fragment: str) -> None:
    error = refused(client, "post", "/api/combos", body)
    details = {d["field"]: d["message"] for d in error["details"]}
    assert field in details, details
    assert fragment.lower() in (details[field] + error["message"]).lower()


def test_duplicate_name_is_refused(client: APIClient) -> None:
    create(client, name="dup")
    error = refused(client, "post", "/api/combos", {"name": "dup", "models": ["openai/gpt-4o"]})
    assert error["message"] == "A combo named 'dup' already exists"


def test_name_equal_to_an_alias_is_refused(client: APIClient) -> None:
    ModelAliasFactory.create(alias="smart")
    error = refused(client, "post", "/api/combos", {"name": "smart", "models": ["openai/gpt-4o"]})
    assert "alias" in error["message"]


def test_self_reference_is_a_cycle(client: APIClient) -> None:
    combo = create(client, name="loop")
    error = refused(client, "put", f"/api/combos/{combo['id']}", {"models": ["openai/gpt-4o", "loop"]})
    assert error["message"] == "models: combos form a cycle: loop → loop"
    assert error["details"][0]["field"] == "models"


def test_cycle_through_other_combos_names_the_path(client: APIClient) -> None:
    a = create(client, name="a")
    create(client, name="b", models=["a"])
    create(client, name="c", models=["b"])
    error = refused(client, "put", f"/api/combos/{a['id']}", {"models": [{"model": "c", "weight": 5}]})
    assert error["message"] == "models: combos form a cycle: a → c → b → a"


def test_nesting_three_levels_is_fine_four_is_refused(client: APIClient) -> None:
    create(client, name="l3")
    create(client, name="l2", models=["l3"])
    create(client, name="l1", models=["l2", "openai/gpt-4o"])
    error = refused(client, "post", "/api/combos", {"name": "l0", "models": ["l1"]})
    assert error["message"] == "models: combos nest 4 levels deep, at most 3: l0 → l1 → l2 → l3"


def test_update_that_deepens_a_user_is_refused(client: APIClient) -> None:
    create(client, name="leaf")
    create(client, name="mid", models=["openai/gpt-4o"])
    create(client, name="top", models=["mid"])
    mid_id = Combo.objects.get(name="mid").pk
    create(client, name="leaf2", models=["leaf"])
    # top → mid → leaf2 → leaf would be four levels, though mid itself is only three deep.
    error = refused(client, "put", f"/api/combos/{mid_id}", {"models": ["leaf2"]})
    assert "top → mid → leaf2 → leaf" in error["message"]


def test_delete_of_a_used_combo_names_the_user(client: APIClient) -> None:
    inner = create(client, name="inner")
    create(client, name="outer", models=[{"model": "inner", "weight": 10}])
    response = client.delete(f"/api/combos/{inner['id']}")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Cannot delete combo 'inner': used by combo outer; remove it there first"
    )
    assert Combo.objects.filter(name="inner").exists()


def test_rename_of_a_used_combo_is_refused(client: APIClient) -> None:
    inner = create(client, name="inner")
    create(client, name="outer", models=["inner"])
    error = refused(client, "put", f"/api/combos/{inner['id']}", {"name": "inner2"})
    assert error["message"] == "Cannot rename combo 'inner': used by combo outer"
    assert error["details"] == [{"field": "name", "message": error["message"]}]


def test_a_combo_name_with_a_slash_wins_over_provider_parsing(client: APIClient) -> None:
    create(client, name="team/fast")
    outer = create(client, name="outer", models=["team/fast"])
    assert outer["models"] == ["team/fast"]


@pytest.mark.e2e
def test_v1_models_lists_active_combos_first(gateway: LiveGateway) -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="admin")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    create(api, name="shown", models=["openai/gpt-4o"])
    create(api, name="hidden", models=["openai/gpt-4o"], isActive=False)
    response = httpx.get(f"{gateway.base_url}/models", headers={"Authorization": f"Bearer {plain}"}, timeout=10)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data[0] == {
        "id": "shown",
        "object": "model",
        "created": data[0]["created"],
        "owned_by": "combo",
        "type": "chat",
    }
    assert "hidden" not in {m["id"] for m in data}
