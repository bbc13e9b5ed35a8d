"""What `/api/cache` reports and clears (docs/API.md §11 and §12): the response cache's tiers
and the idempotency store."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from . import idempotency
from .cache_config import cache_config
from .cache_redis import RedisTier
from .cache_store import counts, memory, persistent_tier
from .snapshot import snapshot_invalidate


def idempotency_stats() -> dict[str, int]:
    """`{"activeKeys", "windowMs"}`: keys in flight or still replayed, and the replay window."""
    return {"activeKeys": idempotency.active_keys(), "windowMs": int(settings.IDEMPOTENCY_WINDOW_MS)}


def idempotency_clear() -> None:
    """Forget the kept answers (DELETE /api/cache): later duplicates run again."""
    idempotency.clear()


def semantic_cache_stats() -> dict[str, Any]:
    tier = persistent_tier()
    hits, misses = tier.hit_counts() if isinstance(tier, RedisTier) else (counts["hits"], counts["misses"])
    lookups = hits + misses
    return {
        "memorySize": len(memory),
        "memoryMaxSize": cache_config().max_entries,
        "dbSize": tier.count(),
        "hitRate": round(100 * hits / lookups, 1) if lookups else 0.0,
    }


def cache_overview() -> dict[str, Any]:
    return {"semanticCache": semantic_cache_stats(), "idempotency": idempotency_stats()}


def cache_clear(model: str | None = None) -> dict[str, Any]:
    """Clear every tier (or one model's entries: by the model that answered or the name the
    client sent), and, when clearing everything, the idempotency store's kept answers. Other
    processes drop their in-memory tier when they see the bumped configuration version."""
    tier = persistent_tier()
    cleared = tier.clear(model)
    memory.clear(model)
    if model is None:
        counts.update(hits=0, misses=0)
        if isinstance(tier, RedisTier):
            tier.reset_counts()
        idempotency_clear()
    snapshot_invalidate()
    return {"ok": True, "cleared": cleared, "scope": "model" if model is not None else "all"}
