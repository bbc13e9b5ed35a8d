"""Fixtures of the gateway app's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from gateway.cache_stats import cache_clear


@pytest.fixture
def cache_on(settings: Any, gateway: Any) -> Iterator[Any]:
    """The response cache on (exact mode), every tier empty before and after the test."""
    settings.RESPONSE_CACHE_ENABLED = True
    settings.RESPONSE_CACHE_TTL_SECONDS = 300
    settings.RESPONSE_CACHE_MAX_ENTRIES = 100
    settings.RESPONSE_CACHE_MAX_BYTES = 1024 * 1024
    settings.RESPONSE_CACHE_NON_DETERMINISTIC = False
    settings.SEMANTIC_CACHE_ENABLED = False
    cache_clear()
    yield settings
    gateway.wait_idle()
    cache_clear()
