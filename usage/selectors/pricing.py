"""Reads of prices for operators: the catalog merged with the overrides, and overrides."""

from __future__ import annotations

import contextlib

from gateway.api.errors import InvalidInput, NotFound

from ..models import PriceOverride
from ..pricing import ModelPrice, price_table_build


def price_list() -> dict[str, dict[str, ModelPrice]]:
    """Every priced model by provider (sorted), read fresh from the database."""
    from providers.selectors import catalog_current

    table = price_table_build(catalog=catalog_current(), overrides=PriceOverride.objects.all())
    result: dict[str, dict[str, ModelPrice]] = {}
    for (provider, model), price in sorted(table.entries.items()):
        result.setdefault(provider, {})[model] = price
    return result


def price_entry(*, provider: str, model: str) -> ModelPrice | None:
    return price_list().get(provider, {}).get(model)


def price_override_get(*, provider: str, model: str) -> PriceOverride:
    """The override of provider (id, alias or node prefix; a deleted node's prefix as stored)/model."""
    from providers.selectors import provider_resolve

    names = {provider.strip()}
    with contextlib.suppress(InvalidInput):  # a deleted node's prefix: match it as stored
        names.add(provider_resolve(name=provider).id)
    row = PriceOverride.objects.filter(provider__in=names, model=model.strip()).first()
    if row is None:
        raise NotFound(f"No price override for {provider}/{model}")
    return row
