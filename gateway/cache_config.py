"""The response cache's settings, in one place.

Read from Django settings (environment) on every call, so a change made by tests or, later,
by the DB-backed `/api/settings` is seen at once: switching the source means changing only
`cache_config()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True, slots=True)
class CacheConfig:
    enabled: bool
    ttl_seconds: int
    max_entries: int
    max_bytes: int
    non_deterministic: bool
    semantic: bool  # on, and an embedding model is named
    embedding_model: str
    threshold: float


def cache_enabled() -> bool:
    """The one check every chat request pays for when the cache is off."""
    return bool(settings.RESPONSE_CACHE_ENABLED)


def cache_config() -> CacheConfig:
    model = str(settings.SEMANTIC_CACHE_EMBEDDING_MODEL or "").strip()
    return CacheConfig(
        enabled=bool(settings.RESPONSE_CACHE_ENABLED),
        ttl_seconds=int(settings.RESPONSE_CACHE_TTL_SECONDS),
        max_entries=int(settings.RESPONSE_CACHE_MAX_ENTRIES),
        max_bytes=int(settings.RESPONSE_CACHE_MAX_BYTES),
        non_deterministic=bool(settings.RESPONSE_CACHE_NON_DETERMINISTIC),
        semantic=bool(settings.SEMANTIC_CACHE_ENABLED) and bool(model),
        embedding_model=model,
        threshold=float(settings.SEMANTIC_CACHE_THRESHOLD),
    )
