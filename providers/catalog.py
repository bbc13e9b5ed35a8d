"""The provider catalog: which providers exist, how to reach them, what they serve.

It is data (`catalog.json` beside this file); adding an OpenAI-compatible provider is adding
an entry there, not code. Loaded once per process.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)
CATALOG_PATH = Path(__file__).resolve().parent / "catalog.json"

# Wire formats an adapter exists for (see providers/adapters).
WIRE_FORMATS = {"openai", "anthropic", "gemini", "responses", "deepgram", "assemblyai"}
# "authorization": the bare key in Authorization (AssemblyAI; set by its adapter).
AUTH_STYLES = {"bearer", "x-api-key", "x-goog-api-key", "token", "authorization", "none"}
MODEL_TYPES = {"chat", "embedding", "image", "audio"}


@dataclass(frozen=True)
class ModelInfo:
    id: str
    type: str = "chat"
    name: str = ""
    context_length: int | None = None
    dimensions: int | None = None
    # USD per 1M tokens (input, output, cached, reasoning, cacheCreation), per image, per audio second.
    price: dict[str, float] = field(default_factory=dict)
    # Operator-added models (/api/provider-models): "responses" forces the Responses API for
    # this model; `endpoints` lists the /v1 endpoints it serves (chat, embeddings, images, audio).
    custom: bool = False
    api_format: str = ""
    endpoints: tuple[str, ...] = ()
    # Accepts its wire format's reasoning control (reasoning_effort, reasoning.effort, thinking,
    # thinkingConfig). Catalog models: true or false; None: unknown (operator-added), assumed true.
    reasoning: bool | None = None


@dataclass(frozen=True)
class ProviderInfo:
    id: str
    name: str
    format: str
    base_url: str
    auth: str
    aliases: tuple[str, ...] = ()
    models: tuple[ModelInfo, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)
    # Custom nodes (/api/provider-nodes) may override the format's default paths, e.g. "/v2/chat".
    chat_path: str = ""
    models_path: str = ""
    is_node: bool = False

    def model(self, model_id: str) -> ModelInfo | None:
        for model in self.models:
            if model.id == model_id:
                return model
        return None


@dataclass(frozen=True)
class Catalog:
    version: str
    providers: dict[str, ProviderInfo]
    aliases: dict[str, str]

    def resolve_provider(self, name: str) -> ProviderInfo | None:
        """A provider by id or short alias (case-insensitive)."""
        key = name.lower()
        provider_id = self.aliases.get(key, key)
        return self.providers.get(provider_id)

    def with_additions(
        self, *, providers: Iterable[ProviderInfo] = (), models: Mapping[str, Iterable[ModelInfo]] | None = None
    ) -> Catalog:
        """A new catalog with extra providers (custom nodes) and models (custom models).

        A custom model replaces the catalog model of the same id but keeps its context length,
        dimensions and prices. An extra provider whose id is already a provider id or alias is
        skipped: the shipped catalog wins.
        """
        merged = dict(self.providers)
        for info in providers:
            if info.id in merged or info.id in self.aliases:
                log.warning("Custom provider %r collides with the catalog; skipped", info.id)
                continue
            merged[info.id] = info
        for provider_id, extra in (models or {}).items():
            provider = merged.get(provider_id)
            if provider is None:
                continue
            by_id = {m.id: m for m in provider.models}
            for model in extra:
                shipped = by_id.get(model.id)
                by_id[model.id] = _overlay(shipped, model) if shipped else model
            merged[provider_id] = replace(provider, models=tuple(by_id.values()))
        return Catalog(version=self.version, providers=merged, aliases=dict(self.aliases))


def _overlay(shipped: ModelInfo, custom: ModelInfo) -> ModelInfo:
    return replace(
        custom,
        name=custom.name or shipped.name,
        context_length=custom.context_length or shipped.context_length,
        dimensions=custom.dimensions or shipped.dimensions,
        price=custom.price or shipped.price,
        reasoning=custom.reasoning if custom.reasoning is not None else shipped.reasoning,
    )


class CatalogError(ValueError):
    """catalog.json is malformed; the message names the entry."""


def _model(provider_id: str, raw: dict[str, Any]) -> ModelInfo:
    if not isinstance(raw.get("id"), str) or not raw["id"]:
        raise CatalogError(f"provider {provider_id}: a model has no id")
    kind = raw.get("type", "chat")
    if kind not in MODEL_TYPES:
        raise CatalogError(f"provider {provider_id}, model {raw['id']}: unknown type {kind!r}")
    return ModelInfo(
        id=raw["id"],
        type=kind,
        name=raw.get("name", ""),
        context_length=raw.get("contextLength"),
        dimensions=raw.get("dimensions"),
        price={k: float(v) for k, v in raw.get("price", {}).items()},
        reasoning=bool(raw.get("reasoning", False)),
    )


def parse_catalog(data: dict[str, Any]) -> Catalog:
    providers: dict[str, ProviderInfo] = {}
    aliases: dict[str, str] = {}
    for provider_id, raw in data["providers"].items():
        if raw.get("format") not in WIRE_FORMATS:
            raise CatalogError(f"provider {provider_id}: unknown format {raw.get('format')!r}")
        if raw.get("auth", "bearer") not in AUTH_STYLES:
            raise CatalogError(f"provider {provider_id}: unknown auth style {raw.get('auth')!r}")
        info = ProviderInfo(
            id=provider_id,
            name=raw.get("name", provider_id),
            format=raw["format"],
            base_url=raw["baseUrl"].rstrip("/"),
            auth=raw.get("auth", "bearer"),
            aliases=tuple(raw.get("aliases", [])),
            models=tuple(_model(provider_id, m) for m in raw.get("models", [])),
            headers=dict(raw.get("headers", {})),
        )
        providers[provider_id] = info
        for alias in info.aliases:
            if alias in aliases or alias in data["providers"]:
                raise CatalogError(f"provider {provider_id}: alias {alias!r} is already taken")
            aliases[alias] = provider_id
    return Catalog(version=str(data.get("version", "")), providers=providers, aliases=aliases)


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    return parse_catalog(orjson.loads(CATALOG_PATH.read_bytes()))
