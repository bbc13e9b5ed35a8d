"""The provider catalog: the shipped catalog.json is sane, and parse_catalog rejects bad entries."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import orjson
import pytest

from providers.catalog import CATALOG_PATH, MODEL_TYPES, Catalog, CatalogError, parse_catalog

REQUIRED_PROVIDERS = {
    "openai",
    "anthropic",
    "claude",
    "gemini",
    "groq",
    "deepseek",
    "mistral",
    "together",
    "fireworks",
    "openrouter",
    "xai",
    "nebius",
    "nvidia",
    "cerebras",
    "perplexity",
    "github",
}
# Providers that serve only non-chat modalities (e.g. speech-to-text) and so need no chat model.
PURE_MODALITY_PROVIDERS: set[str] = {"deepgram", "assemblyai"}
PRICE_KEYS = {"input", "output", "cached", "cacheCreation", "reasoning", "perImage", "perAudioSecond"}


def raw_catalog() -> dict[str, Any]:
    return orjson.loads(CATALOG_PATH.read_bytes())


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return parse_catalog(raw_catalog())


def minimal(**extra: Any) -> dict[str, Any]:
    """A one-provider catalog that parses; `extra` overrides the provider entry."""
    entry = {"format": "openai", "baseUrl": "https://example.com/v1", "auth": "bearer", "models": [{"id": "m"}]}
    entry.update(extra)
    return {"version": "test", "providers": {"acme": entry}}


def test_real_catalog_parses(catalog: Catalog) -> None:
    assert catalog.version
    assert not REQUIRED_PROVIDERS - set(catalog.providers)


def test_every_provider_has_a_chat_model(catalog: Catalog) -> None:
    for provider in catalog.providers.values():
        if provider.id in PURE_MODALITY_PROVIDERS:
            continue
        assert any(m.type == "chat" for m in provider.models), provider.id


@pytest.mark.parametrize(
    ("alias", "provider_id"), [("cc", "claude"), ("ds", "deepseek"), ("gh", "github"), ("pplx", "perplexity")]
)
def test_aliases_resolve(catalog: Catalog, alias: str, provider_id: str) -> None:
    assert catalog.aliases[alias] == provider_id
    resolved = catalog.resolve_provider(alias)
    assert resolved is not None and resolved.id == provider_id
    upper = catalog.resolve_provider(alias.upper())
    assert upper is not None and upper.id == provider_id
    # Full ids resolve too.
    by_id = catalog.resolve_provider(provider_id)
    assert by_id is not None and by_id.id == provider_id


def test_no_duplicate_model_ids_within_a_provider(catalog: Catalog) -> None:
    for provider in catalog.providers.values():
        counts = Counter(m.id for m in provider.models)
        duplicates = sorted(model_id for model_id, n in counts.items() if n > 1)
        assert not duplicates, f"{provider.id}: {duplicates}"


def test_prices_are_known_and_non_negative(catalog: Catalog) -> None:
    for provider in catalog.providers.values():
        for model in provider.models:
            assert set(model.price) <= PRICE_KEYS, f"{provider.id}/{model.id}: {set(model.price) - PRICE_KEYS}"
            for key, value in model.price.items():
                assert value >= 0, f"{provider.id}/{model.id} {key}={value}"


def test_base_urls_are_https(catalog: Catalog) -> None:
    for provider in catalog.providers.values():
        assert provider.base_url.startswith("https://"), provider.id
        assert not provider.base_url.endswith("/"), provider.id


def test_model_types_and_modality_fields(catalog: Catalog) -> None:
    for provider in catalog.providers.values():
        for model in provider.models:
            where = f"{provider.id}/{model.id}"
            assert model.type in MODEL_TYPES, where
            if model.type == "embedding":
                assert isinstance(model.dimensions, int) and model.dimensions > 0, where
            if model.type == "image" and model.price:
                assert "perImage" in model.price, where
            if model.type == "audio" and model.price:
                assert "perAudioSecond" in model.price, where
            if model.context_length is not None:
                assert isinstance(model.context_length, int) and model.context_length > 0, where


def test_wire_details(catalog: Catalog) -> None:
    anthropic = catalog.providers["anthropic"]
    assert (anthropic.format, anthropic.auth) == ("anthropic", "x-api-key")
    assert anthropic.headers["anthropic-version"] == "2023-06-01"
    assert catalog.providers["claude"].format == "anthropic"
    assert catalog.providers["claude"].headers["anthropic-version"] == "2023-06-01"
    gemini = catalog.providers["gemini"]
    assert (gemini.format, gemini.auth) == ("gemini", "x-goog-api-key")
    assert catalog.providers["github"].base_url == "https://api.githubcopilot.com"
    assert catalog.providers["openai"].model("gpt-4o-mini") is not None
    assert catalog.providers["groq"].model("llama-3.3-70b-versatile") is not None
    whisper = catalog.providers["openai"].model("whisper-1")
    assert whisper is not None and whisper.price["perAudioSecond"] == pytest.approx(0.006 / 60)


def test_minimal_catalog_parses() -> None:
    parsed = parse_catalog(minimal(aliases=["ac"]))
    assert parsed.version == "test"
    assert parsed.resolve_provider("ac") is parsed.providers["acme"]


def test_rejects_unknown_format() -> None:
    with pytest.raises(CatalogError, match="acme") as info:
        parse_catalog(minimal(format="soap"))
    assert "soap" in str(info.value)


def test_rejects_unknown_auth_style() -> None:
    with pytest.raises(CatalogError, match="acme") as info:
        parse_catalog(minimal(auth="basic"))
    assert "basic" in str(info.value)


def test_rejects_duplicate_alias() -> None:
    data = minimal(aliases=["ac"])
    data["providers"]["rival"] = copy.deepcopy(data["providers"]["acme"])
    with pytest.raises(CatalogError, match="rival") as info:
        parse_catalog(data)
    assert "'ac'" in str(info.value)


def test_rejects_alias_that_is_another_provider_id() -> None:
    data = minimal()
    data["providers"]["rival"] = {**copy.deepcopy(data["providers"]["acme"]), "aliases": ["acme"]}
    with pytest.raises(CatalogError, match="rival"):
        parse_catalog(data)


def test_real_catalog_rejects_a_stolen_alias() -> None:
    data = raw_catalog()
    data["providers"]["deepseek"]["aliases"] = ["ds", "cc"]
    with pytest.raises(CatalogError, match="provider deepseek"):
        parse_catalog(data)
