"""Writes of price overrides. The price table's caches are invalidated by model signals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db import transaction

from gateway.api.errors import InvalidInput
from providers.selectors import provider_resolve

from ..models import PriceOverride
from ..pricing import PRICE_FIELDS

PRICE_OVERRIDE_FIELDS = frozenset(PRICE_FIELDS.values())
MAX_PRICE = Decimal(1_000_000)
_QUANTUM = Decimal("0.0000000001")  # PriceOverride's decimal places


def _provider_id(provider: str) -> str:
    return provider_resolve(name=provider).id


def _clean_model(model: str) -> str:
    model = model.strip()
    if not model:
        raise InvalidInput("model must be a non-empty model id", field="model")
    return model


def price_value_clean(field: str, value: Decimal | float | int | None) -> Decimal | None:
    """A price as stored: a finite Decimal from 0 to MAX_PRICE (USD), or None."""
    if value is None:
        return None
    try:
        price = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput(f"{field} must be a number", field=field) from exc
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise InvalidInput(f"{field} must be between 0 and {MAX_PRICE} USD", field=field)
    return price.quantize(_QUANTUM)


@dataclass(frozen=True)
class OverrideOutcome:
    provider: str  # the canonical provider id
    model: str
    row: PriceOverride | None  # None: no override is left
    created: bool


def price_override_set(
    *, provider: str, model: str, prices: Mapping[str, Decimal | float | int | None]
) -> OverrideOutcome:
    """Create or update the override of provider (id, alias or node prefix)/model, field by field.

    `prices` is keyed by PriceOverride field; a given None clears that field (the catalog
    price applies again); fields not given keep their value. An override left with no price
    is deleted.
    """
    unknown = set(prices) - PRICE_OVERRIDE_FIELDS
    if unknown:
        raise InvalidInput(f"Unknown price field {sorted(unknown)[0]!r}", field=sorted(unknown)[0])
    if not prices:
        raise InvalidInput(f"Give at least one price: {', '.join(PRICE_FIELDS)}")
    cleaned = {field: price_value_clean(field, value) for field, value in prices.items()}
    provider_id, model = _provider_id(provider), _clean_model(model)
    with transaction.atomic():
        row = PriceOverride.objects.select_for_update().filter(provider=provider_id, model=model).first()
        created = row is None
        row = row or PriceOverride(provider=provider_id, model=model)
        for field, value in cleaned.items():
            setattr(row, field, value)
        if all(getattr(row, field) is None for field in PRICE_OVERRIDE_FIELDS):
            if not created:
                row.delete()
            return OverrideOutcome(provider_id, model, None, False)
        row.full_clean()
        row.save()
    return OverrideOutcome(provider_id, model, row, created)


def price_override_delete(*, row: PriceOverride) -> None:
    row.delete()
