"""Numbers for GET /api/cache (and its DELETE) that live in the gateway's request stores.

The response cache's part is built by the cache module; this one reports idempotency.
"""

from __future__ import annotations

from django.conf import settings

from . import idempotency


def idempotency_stats() -> dict[str, int]:
    """`{"activeKeys", "windowMs"}`: keys in flight or still replayed, and the replay window."""
    return {"activeKeys": idempotency.active_keys(), "windowMs": int(settings.IDEMPOTENCY_WINDOW_MS)}


def idempotency_clear() -> None:
    """Forget the kept answers (DELETE /api/cache): later duplicates run again."""
    idempotency.clear()
