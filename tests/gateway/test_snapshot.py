"""build_snapshot on database rows: aliases, combos, resilience profiles, custom nodes and
models in the catalog view, /v1/models, and invalidation when routing rows change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from gateway.models import ResilienceProfile
from gateway.services import alias_set, combo_create, resilience_profiles_update
from gateway.snapshot import ComboMember, Snapshot, build_snapshot, get_snapshot_sync, snapshot_mark_dirty
from providers.catalog import get_catalog
from providers.services import node_create, provider_model_set
from tests.factories import (
    ComboFactory,
    ModelAliasFactory,
    ProviderConnectionFactory,
    ProviderModelFactory,
    ProviderNodeFactory,
)

pytestmark = pytest.mark.django_db


def model_ids(snap: Snapshot) -> list[tuple[str, str]]:
    return [(m["id"], m["owned_by"]) for m in orjson.loads(snap.models_body)["data"]]


def test_aliases_split_into_exact_and_globs_most_specific_first() -> None:
    for alias in ("*", "gpt-*", "gpt-4?", "gpt-4*", "claude-*-sonnet-*", "gpt-4o*", "fast"):
        ModelAliasFactory.create(alias=alias, model=f"openai/{alias.strip('*?') or 'x'}")
    snap = build_snapshot()
    assert snap.aliases == {"fast": "openai/fast"}
    assert [pattern for pattern, _ in snap.alias_globs] == [
        "claude-*-sonnet-*",
        "gpt-4o*",
        "gpt-4*",
        "gpt-4?",
        "gpt-*",
        "*",
    ]
    assert dict(snap.alias_globs)["gpt-4o*"] == "openai/gpt-4o"


def test_combos_with_members_weights_and_nesting() -> None:
    ComboFactory.create(name="inner", members=["openai/gpt-4o"], sort_order=2, is_active=False)
    ComboFactory.create(
        name="outer",
        members=["inner", {"model": "groq/llama-3.3-70b-versatile", "weight": 40}, "cc/claude-sonnet-4-5"],
        strategy="weighted",
        config={"maxAttempts": 2},
        sort_order=1,
    )
    snap = build_snapshot()
    assert list(snap.combos) == ["outer", "inner"]
    outer = snap.combos["outer"]
    assert (outer.strategy, outer.config, outer.is_active) == ("weighted", {"maxAttempts": 2}, True)
    assert outer.members == (
        ComboMember(model="inner", weight=None, is_combo=True),
        ComboMember(model="groq/llama-3.3-70b-versatile", weight=40, is_combo=False),
        ComboMember(model="cc/claude-sonnet-4-5", weight=None, is_combo=False),
    )
    assert snap.combos["inner"].is_active is False
    assert snap.combos["inner"].id > 0


def test_profiles_always_have_default() -> None:
    resilience_profiles_update(changes={"oauth": {"breaker_failure_threshold": 3, "breaker_reset_seconds": 60}})
    snap = build_snapshot()
    assert set(snap.profiles) == {"default", "oauth"}
    assert (snap.profiles["oauth"].breaker_failure_threshold, snap.profiles["oauth"].breaker_reset_seconds) == (3, 60.0)
    assert snap.profiles["oauth"].cooldown_max_seconds == 300.0

    ResilienceProfile.objects.all().delete()
    bare = build_snapshot().profiles
    assert list(bare) == ["default"]
    assert bare["default"].credit_error_cooldown_seconds == 3600.0
    assert bare["default"].backoff_multiplier == 2.0


def test_a_snapshot_built_by_hand_has_the_default_profile() -> None:
    snap = Snapshot(version=1, catalog=get_catalog(), keys_by_hash={}, credentials={})
    assert snap.profiles["default"].breaker_failure_threshold == 5
    assert (snap.aliases, snap.alias_globs, snap.combos) == ({}, (), {})


def test_nodes_are_providers_and_custom_models_join_their_provider() -> None:
    node_create(
        name="Lab",
        prefix="lab",
        type="anthropic-compatible",
        base_url="https://lab.example/v1",
        chat_path="/v1/messages",
    )
    node_create(name="Resp", prefix="resp", api_type="responses", base_url="https://resp.example/v1")
    provider_model_set(provider="lab", model_id="lab-large", supported_endpoints=["chat"])
    provider_model_set(provider="openai", model_id="o-next", api_format="responses")
    ProviderConnectionFactory.create(provider="lab", api_key="sk-lab-key")
    static_openai_models = get_catalog().providers["openai"].models

    snap = build_snapshot()
    lab = snap.catalog.providers["lab"]
    assert (lab.format, lab.auth, lab.base_url, lab.chat_path, lab.is_node) == (
        "anthropic",
        "x-api-key",
        "https://lab.example/v1",
        "/v1/messages",
        True,
    )
    assert lab.headers == {"anthropic-version": "2023-06-01"}
    assert [m.id for m in lab.models] == ["lab-large"]
    assert snap.catalog.providers["resp"].format == "responses"
    assert snap.catalog.providers["resp"].auth == "bearer"
    assert snap.catalog.resolve_provider("LAB") is lab

    custom = snap.catalog.providers["openai"].model("o-next")
    assert custom is not None and (custom.custom, custom.api_format) == (True, "responses")
    assert get_catalog().providers["openai"].models is static_openai_models, "the cached catalog is untouched"
    assert get_catalog().providers["openai"].model("o-next") is None
    assert "lab" not in get_catalog().providers

    (credential,) = snap.credentials["lab"]
    assert credential.provider is lab
    assert credential.headers == {"anthropic-version": "2023-06-01", "x-api-key": "sk-lab-key"}
    assert credential.base_url == "https://lab.example/v1"


def test_models_body_lists_active_combos_first_then_models_with_custom_ones() -> None:
    ComboFactory.create(name="b-combo", sort_order=2)
    ComboFactory.create(name="a-combo", sort_order=1)
    ComboFactory.create(name="hidden", is_active=False)
    ProviderNodeFactory.create(prefix="lab")
    ProviderModelFactory.create(provider="lab", model_id="lab-small")
    ProviderModelFactory.create(provider="deepseek", model_id="no-credentials")
    ProviderConnectionFactory.create(provider="lab")
    ProviderConnectionFactory.create(provider="openai")

    ids = model_ids(build_snapshot())
    assert ids[:2] == [("a-combo", "combo"), ("b-combo", "combo")]
    assert ("hidden", "combo") not in ids
    assert ("lab/lab-small", "lab") in ids
    assert ("openai/gpt-4o-mini", "openai") in ids
    assert not any(model_id.startswith("deepseek/") for model_id, _ in ids)


@pytest.mark.parametrize(
    "change",
    [
        lambda: alias_set(alias="quick", model="openai/gpt-4o-mini"),
        lambda: combo_create(name="fresh", members=["openai/gpt-4o"]),
        lambda: resilience_profiles_update(changes={"default": {"cooldown_base_seconds": 4}}),
        lambda: node_create(name="N", prefix="newnode", base_url="https://n.example"),
        lambda: provider_model_set(provider="openai", model_id="brand-new"),
    ],
    ids=["alias", "combo", "profile", "node", "custom-model"],
)
def test_routing_changes_rebuild_the_snapshot(
    change: Callable[[], Any], django_capture_on_commit_callbacks: Any
) -> None:
    snapshot_mark_dirty()
    before = get_snapshot_sync()
    assert get_snapshot_sync() is before
    with django_capture_on_commit_callbacks(execute=True):
        change()
    after = get_snapshot_sync()
    assert after is not before
    assert after.version > before.version
