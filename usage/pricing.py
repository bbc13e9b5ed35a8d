"""Prices and the cost of one request.

Prices come from the shipped catalog (`providers/catalog.json`, per model: `input`,
`output`, `cached`, `cacheCreation`, `reasoning` in USD per 1M tokens, `perImage`,
`perAudioSecond`) overlaid field by field with the operator's PriceOverride rows.

Usage follows the canonical (OpenAI) convention that every adapter normalises to:
`prompt_tokens` counts all input tokens, cached and cache-creation ones included, and
`completion_tokens` counts the reasoning tokens too. Each kind is priced once:

- fresh input = prompt - cached - cache creation, at `input`;
- cached input at `cached`, else `input`;
- cache creation at `cacheCreation`, else 1.25 * `input` for Anthropic-format providers
  (Anthropic bills 5-minute cache writes at 1.25 times input), else `input` (OpenAI and Gemini
  charge no write premium per request);
- reasoning at `reasoning`, else `output`; the rest of the completion at `output`;
- images at `perImage` each, audio seconds at `perAudioSecond` each.

A kind without a price costs nothing; a model without any price costs 0. Inconsistent
counts (cached > prompt) never price a reported kind lower: the remainder is clamped at 0.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

from providers.catalog import Catalog

from .models import PriceOverride

# Wire name -> PriceOverride field, in the order prices are shown.
PRICE_FIELDS: dict[str, str] = {
    "input": "input",
    "output": "output",
    "cached": "cached",
    "cacheCreation": "cache_creation",
    "reasoning": "reasoning",
    "perImage": "per_image",
    "perAudioSecond": "per_audio_second",
}
TOKEN_PRICES = ("input", "output", "cached", "reasoning", "cacheCreation")
ANTHROPIC_CACHE_WRITE_MULTIPLIER = Decimal("1.25")
COST_QUANTUM = Decimal("0.00000001")  # the precision of UsageRecord.cost_usd
_PER_MILLION = Decimal(1_000_000)
# A dated snapshot id (gpt-4o-2024-08-06, claude-3-5-sonnet-20241022) is priced as its base model.
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8})$")


class UsageLike(Protocol):
    """What cost_of reads; the recorder's Record and UsageBreakdown both fit."""

    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def cached_tokens(self) -> int: ...
    @property
    def cache_creation_tokens(self) -> int: ...
    @property
    def reasoning_tokens(self) -> int: ...
    @property
    def images(self) -> int: ...
    @property
    def audio_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class UsageBreakdown:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0
    images: int = 0
    audio_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model's prices: `raw` holds the fields that are set (wire names)."""

    provider_format: str
    raw: Mapping[str, Decimal]
    source: str = "catalog"  # or "override"
    overridden: tuple[str, ...] = ()

    def effective(self) -> dict[str, Decimal | None]:
        """Every price as charged, fallbacks applied; None = not priced."""
        input_ = self.raw.get("input")
        output = self.raw.get("output")
        creation = self.raw.get("cacheCreation")
        if creation is None and input_ is not None:
            anthropic = self.provider_format == "anthropic"
            creation = input_ * ANTHROPIC_CACHE_WRITE_MULTIPLIER if anthropic else input_
        return {
            "input": input_,
            "output": output,
            "cached": self.raw.get("cached", input_),
            "reasoning": self.raw.get("reasoning", output),
            "cacheCreation": creation,
            "perImage": self.raw.get("perImage"),
            "perAudioSecond": self.raw.get("perAudioSecond"),
        }


@dataclass(frozen=True)
class PriceTable:
    entries: Mapping[tuple[str, str], ModelPrice]

    def lookup(self, *, provider: str, model: str) -> ModelPrice | None:
        price = self.entries.get((provider, model))
        if price is None:
            base = _DATE_SUFFIX.sub("", model)
            price = self.entries.get((provider, base)) if base != model else None
        return price


def _tokens(count: int, rate: Decimal | None) -> Decimal:
    return Decimal(count) * rate / _PER_MILLION if rate is not None and count > 0 else Decimal(0)


def cost_of(*, provider: str, model: str, usage: UsageLike, prices: PriceTable) -> Decimal:
    """The cost in USD of one request, rounded to 8 decimal places (see the module docstring)."""
    price = prices.lookup(provider=provider, model=model)
    if price is None:
        return Decimal(0)
    rate = price.effective()
    cached = max(0, usage.cached_tokens)
    creation = max(0, usage.cache_creation_tokens)
    reasoning = max(0, usage.reasoning_tokens)
    fresh = max(0, usage.prompt_tokens - cached - creation)
    visible = max(0, usage.completion_tokens - reasoning)
    total = (
        _tokens(fresh, rate["input"])
        + _tokens(cached, rate["cached"])
        + _tokens(creation, rate["cacheCreation"])
        + _tokens(visible, rate["output"])
        + _tokens(reasoning, rate["reasoning"])
    )
    if usage.images > 0 and rate["perImage"] is not None:
        total += usage.images * rate["perImage"]
    if usage.audio_seconds > 0 and rate["perAudioSecond"] is not None:
        total += Decimal(str(usage.audio_seconds)) * rate["perAudioSecond"]
    return total.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def decimal_price(value: float | int | Decimal) -> Decimal:
    """A catalog number as the Decimal it was written as (0.075, not 0.07499999…)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def override_prices(row: PriceOverride) -> dict[str, Decimal]:
    """The fields an override sets, by wire name."""
    values = {wire: getattr(row, field) for wire, field in PRICE_FIELDS.items()}
    return {wire: value for wire, value in values.items() if value is not None}


def price_table_build(*, catalog: Catalog, overrides: Iterable[PriceOverride]) -> PriceTable:
    entries: dict[tuple[str, str], ModelPrice] = {}
    for provider_id, provider in catalog.providers.items():
        for model in provider.models:
            raw = {k: decimal_price(v) for k, v in model.price.items() if k in PRICE_FIELDS}
            if raw:
                entries[(provider_id, model.id)] = ModelPrice(provider_format=provider.format, raw=raw)
    for row in overrides:
        provider_info = catalog.providers.get(row.provider)
        shipped = entries.get((row.provider, row.model))
        values = override_prices(row)
        entries[(row.provider, row.model)] = ModelPrice(
            provider_format=provider_info.format if provider_info else "",
            raw={**(shipped.raw if shipped else {}), **values},
            source="override",
            overridden=tuple(values),
        )
    return PriceTable(entries=entries)


class _Cache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        # The snapshot and generation the cached table was built for.
        self.snapshot: object = None
        self.built_generation = -1
        self.table: PriceTable | None = None


_cache = _Cache()


def price_table_invalidate() -> None:
    """Drop the cached table (PriceOverride signals call this)."""
    with _cache.lock:
        _cache.generation += 1


def price_table_cached(snapshot: object) -> PriceTable | None:
    """The cached table if it was built for `snapshot` and is current; never does I/O (for the
    event loop: gateway.limits prices requests of keys with a budget)."""
    with _cache.lock:
        if _cache.table is not None and _cache.snapshot is snapshot and _cache.built_generation == _cache.generation:
            return _cache.table
    return None


def price_table() -> PriceTable:
    """The current prices: the config snapshot's catalog plus the overrides.

    Cached until the snapshot is rebuilt (any configuration change, in any process: price
    overrides bump the config version too) or an override changes in this process. Reads the
    database on a miss, so call it off the request path (the recorder's writer thread).
    """
    from gateway.snapshot import get_snapshot_sync

    snapshot = get_snapshot_sync()
    with _cache.lock:
        generation = _cache.generation
        if _cache.table is not None and _cache.snapshot is snapshot and _cache.built_generation == generation:
            return _cache.table
    table = price_table_build(catalog=snapshot.catalog, overrides=PriceOverride.objects.all())
    with _cache.lock:
        if _cache.generation == generation:  # no override changed while building
            _cache.snapshot, _cache.built_generation, _cache.table = snapshot, generation, table
    return table
