"""Cost of each usage shape against hand-computed values, the catalog/override merge and the
price table's cache."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.catalog import get_catalog, parse_catalog
from tests.factories import PriceOverrideFactory
from usage.models import PriceOverride
from usage.pricing import (
    ModelPrice,
    PriceTable,
    UsageBreakdown,
    cost_of,
    price_table,
    price_table_build,
    price_table_invalidate,
)

# The numbers of the shipped catalog at the time of writing, pinned here so that a price
# update in catalog.json does not change what these tests compute by hand.
CATALOG = parse_catalog(
    {
        "version": "test",
        "providers": {
            "openai": {
                "format": "openai",
                "baseUrl": "https://api.openai.com/v1",
                "models": [
                    {"id": "gpt-4o", "price": {"input": 2.5, "output": 10.0, "cached": 1.25}},
                    {"id": "o3", "price": {"input": 2.0, "output": 8.0, "cached": 0.5}},
                    {"id": "gpt-5-nano", "price": {"input": 0.05, "output": 0.4, "cached": 0.005}},
                    {"id": "text-embedding-3-small", "type": "embedding", "price": {"input": 0.02}},
                    {"id": "dall-e-3", "type": "image", "price": {"perImage": 0.04}},
                    {"id": "gpt-image-1", "type": "image", "price": {"input": 5.0, "perImage": 0.042}},
                    {"id": "whisper-1", "type": "audio", "price": {"perAudioSecond": 0.0001}},
                    {"id": "no-price"},
                ],
            },
            "anthropic": {
                "format": "anthropic",
                "baseUrl": "https://api.anthropic.com/v1",
                "auth": "x-api-key",
                "models": [
                    {
                        "id": "claude-sonnet-4-5",
                        "price": {"input": 3.0, "output": 15.0, "cached": 0.3, "cacheCreation": 3.75},
                    },
                    {"id": "claude-plain", "price": {"input": 2.0, "output": 10.0}},
                ],
            },
            "perplexity": {
                "format": "openai",
                "baseUrl": "https://api.perplexity.ai",
                "models": [{"id": "sonar-deep-research", "price": {"input": 2.0, "output": 8.0, "reasoning": 3.0}}],
            },
        },
    }
)
TABLE = price_table_build(catalog=CATALOG, overrides=[])


def cost(provider: str, model: str, **usage: int | float) -> Decimal:
    return cost_of(provider=provider, model=model, usage=UsageBreakdown(**usage), prices=TABLE)  # type: ignore[arg-type]


def test_plain_prompt_and_completion() -> None:
    # 1000 x 2.5/1M + 500 x 10/1M = 0.0025 + 0.005
    assert cost("openai", "gpt-4o", prompt_tokens=1000, completion_tokens=500) == Decimal("0.0075")


def test_cached_prompt_tokens_are_priced_at_the_cached_price() -> None:
    # fresh 6000 x 2.5/1M = 0.015; cached 4000 x 1.25/1M = 0.005; output 200 x 10/1M = 0.002
    got = cost("openai", "gpt-4o", prompt_tokens=10_000, cached_tokens=4000, completion_tokens=200)
    assert got == Decimal("0.022")
    # Not the undiscounted 10,000 x 2.5/1M + 0.002 = 0.027.
    assert got != cost("openai", "gpt-4o", prompt_tokens=10_000, completion_tokens=200)


def test_anthropic_cache_read_and_creation() -> None:
    # prompt 12,000 = fresh 2,000 + read 8,000 + written 2,000 (canonical: prompt counts all three)
    # 2000 x 3/1M = 0.006; 8000 x 0.3/1M = 0.0024; 2000 x 3.75/1M = 0.0075; 1000 x 15/1M = 0.015
    got = cost(
        "anthropic",
        "claude-sonnet-4-5",
        prompt_tokens=12_000,
        cached_tokens=8000,
        cache_creation_tokens=2000,
        completion_tokens=1000,
    )
    assert got == Decimal("0.0309")


def test_cache_creation_without_a_price_is_125_percent_of_input_on_anthropic_format_only() -> None:
    # claude-plain: 1000 written x (2.0 x 1.25)/1M = 0.0025
    assert cost("anthropic", "claude-plain", prompt_tokens=1000, cache_creation_tokens=1000) == Decimal("0.0025")
    # OpenAI format: no write premium, 1000 x 2.0/1M (o3 input) = 0.002
    assert cost("openai", "o3", prompt_tokens=1000, cache_creation_tokens=1000) == Decimal("0.002")


def test_reasoning_tokens_at_their_own_price() -> None:
    # input 100 x 2/1M = 0.0002; visible 1000 x 8/1M = 0.008; reasoning 4000 x 3/1M = 0.012
    got = cost("perplexity", "sonar-deep-research", prompt_tokens=100, completion_tokens=5000, reasoning_tokens=4000)
    assert got == Decimal("0.0202")


def test_reasoning_tokens_without_a_price_are_output_tokens() -> None:
    # 1000 x 2/1M = 0.002; all 3000 completion tokens (2500 of them reasoning) x 8/1M = 0.024
    got = cost("openai", "o3", prompt_tokens=1000, completion_tokens=3000, reasoning_tokens=2500)
    assert got == Decimal("0.026")


def test_images() -> None:
    assert cost("openai", "dall-e-3", images=3) == Decimal("0.12")
    # gpt-image-1 bills the prompt too: 50 x 5/1M = 0.00025, plus 2 x 0.042
    assert cost("openai", "gpt-image-1", prompt_tokens=50, images=2) == Decimal("0.08425")


def test_audio_seconds() -> None:
    # 62.5 s x 0.0001
    assert cost("openai", "whisper-1", audio_seconds=62.5) == Decimal("0.00625")


def test_embeddings() -> None:
    # 1,234,567 x 0.02/1M = 0.02469134
    assert cost("openai", "text-embedding-3-small", prompt_tokens=1_234_567) == Decimal("0.02469134")


def test_rounding_to_eight_places_half_up() -> None:
    assert cost("openai", "gpt-5-nano", prompt_tokens=1) == Decimal("0.00000005")
    # One cached token: 0.005/1M = 0.000000005 -> 0.00000001
    assert cost("openai", "gpt-5-nano", prompt_tokens=1, cached_tokens=1) == Decimal("0.00000001")


def test_unpriced_models_cost_nothing() -> None:
    assert cost("openai", "no-price", prompt_tokens=1000, completion_tokens=1000) == 0
    assert cost("openai", "unknown-model", prompt_tokens=1000) == 0
    assert cost("nobody", "gpt-4o", prompt_tokens=1000) == 0
    # An embedding model has no output price: the (odd) completion tokens cost nothing.
    assert cost("openai", "text-embedding-3-small", prompt_tokens=1_000_000, completion_tokens=5) == Decimal("0.02")


def test_dated_snapshots_are_priced_as_their_base_model() -> None:
    base = cost("openai", "gpt-4o", prompt_tokens=1000, completion_tokens=500)
    assert cost("openai", "gpt-4o-2024-08-06", prompt_tokens=1000, completion_tokens=500) == base
    assert cost("anthropic", "claude-sonnet-4-5-20250929", prompt_tokens=1000) == Decimal("0.003")
    assert cost("openai", "gpt-4o-mini-tts", prompt_tokens=1000) == 0


def test_inconsistent_counts_never_price_a_reported_kind_lower() -> None:
    # 5000 cached reported in a 1000-token prompt: the 5000 cached are charged, fresh is 0.
    assert cost("openai", "gpt-4o", prompt_tokens=1000, cached_tokens=5000) == Decimal("0.00625")
    # Reasoning above the completion count: all reasoning charged, no visible output.
    got = cost("perplexity", "sonar-deep-research", completion_tokens=100, reasoning_tokens=1000)
    assert got == Decimal("0.003")


def test_effective_prices_apply_the_fallbacks() -> None:
    price = ModelPrice(provider_format="anthropic", raw={"input": Decimal("2"), "output": Decimal("10")})
    assert price.effective() == {
        "input": Decimal("2"),
        "output": Decimal("10"),
        "cached": Decimal("2"),
        "reasoning": Decimal("10"),
        "cacheCreation": Decimal("2.50"),
        "perImage": None,
        "perAudioSecond": None,
    }
    assert ModelPrice(provider_format="openai", raw={}).effective()["cacheCreation"] is None


@pytest.mark.django_db
def test_overrides_replace_catalog_prices_field_by_field() -> None:
    override = PriceOverride(provider="openai", model="gpt-4o", output=Decimal("20"), cached=Decimal("0"))
    extra = PriceOverride(provider="openai", model="my-finetune", input=Decimal("1"))
    table = price_table_build(catalog=CATALOG, overrides=[override, extra])
    price = table.lookup(provider="openai", model="gpt-4o")
    assert price is not None and price.source == "override" and set(price.overridden) == {"output", "cached"}
    assert price.raw == {"input": Decimal("2.5"), "output": Decimal("20"), "cached": Decimal("0")}
    # Cached tokens now free: 1000 fresh x 2.5/1M + 100 x 20/1M
    usage = UsageBreakdown(prompt_tokens=2000, cached_tokens=1000, completion_tokens=100)
    assert cost_of(provider="openai", model="gpt-4o", usage=usage, prices=table) == Decimal("0.0045")
    assert table.lookup(provider="openai", model="my-finetune") == ModelPrice(
        provider_format="openai", raw={"input": Decimal("1")}, source="override", overridden=("input",)
    )


def test_catalog_prices_are_exact_decimals() -> None:
    table = price_table_build(catalog=get_catalog(), overrides=[])
    whisper = table.lookup(provider="openai", model="whisper-1")
    assert whisper is not None and whisper.raw["perAudioSecond"] == Decimal("0.0001")
    # Every Anthropic-format catalog model has an explicit cache-creation price.
    anthropic = [p for p in get_catalog().providers.values() if p.format == "anthropic"]
    assert anthropic
    for provider in anthropic:
        for model in provider.models:
            price = table.lookup(provider=provider.id, model=model.id)
            assert price is not None and "cacheCreation" in price.raw, f"{provider.id}/{model.id}"


@pytest.mark.django_db
def test_price_table_follows_override_changes() -> None:
    usage = UsageBreakdown(prompt_tokens=1_000_000)
    price_table_invalidate()
    before = price_table()
    assert price_table() is before  # cached
    assert cost_of(provider="openai", model="my-model", usage=usage, prices=before) == 0

    row = PriceOverrideFactory.create(model="my-model", input=Decimal("3"))
    after = price_table()
    assert after is not before
    assert cost_of(provider="openai", model="my-model", usage=usage, prices=after) == Decimal("3")

    row.input = Decimal("4")
    row.save()
    assert cost_of(provider="openai", model="my-model", usage=usage, prices=price_table()) == Decimal("4")
    row.delete()
    assert cost_of(provider="openai", model="my-model", usage=usage, prices=price_table()) == 0


def test_lookup_of_an_empty_table() -> None:
    assert PriceTable(entries={}).lookup(provider="openai", model="gpt-4o") is None
