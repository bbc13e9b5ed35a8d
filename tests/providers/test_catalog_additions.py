"""Catalog.with_additions: custom nodes become providers, custom models join (or overlay)
their provider's models, and the shipped catalog always wins and is never changed."""

from __future__ import annotations

from providers.catalog import ModelInfo, ProviderInfo, get_catalog


def node(provider_id: str) -> ProviderInfo:
    return ProviderInfo(id=provider_id, name="Node", format="openai", base_url="https://n.example", auth="bearer")


def test_nodes_are_added_and_colliding_ones_skipped() -> None:
    base = get_catalog()
    merged = base.with_additions(providers=[node("lab"), node("openai"), node("ds")])
    assert merged.providers["lab"].name == "Node"
    assert merged.providers["openai"] is base.providers["openai"]
    assert merged.resolve_provider("ds") is base.providers["deepseek"]
    assert "lab" not in base.providers
    assert merged.aliases == base.aliases and merged.aliases is not base.aliases


def test_custom_models_append_or_overlay_keeping_shipped_numbers() -> None:
    base = get_catalog()
    shipped = base.providers["openai"].model("gpt-4o-mini")
    assert shipped is not None and shipped.price
    extra = [
        ModelInfo(id="gpt-4o-mini", custom=True, api_format="responses", endpoints=("chat",)),
        ModelInfo(id="brand-new", custom=True),
    ]
    merged = base.with_additions(models={"openai": extra, "not-a-provider": extra})
    overlay = merged.providers["openai"].model("gpt-4o-mini")
    assert overlay is not None
    assert (overlay.custom, overlay.api_format, overlay.price, overlay.context_length, overlay.name) == (
        True,
        "responses",
        shipped.price,
        shipped.context_length,
        shipped.name,
    )
    ids = [m.id for m in merged.providers["openai"].models]
    assert ids == [m.id for m in base.providers["openai"].models] + ["brand-new"]
    assert base.providers["openai"].model("gpt-4o-mini") is shipped
    assert "not-a-provider" not in merged.providers
