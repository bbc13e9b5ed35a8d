"""Reads of the gateway app for the control plane (the data plane reads the snapshot)."""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.models import QuerySet

from .api.errors import NotFound
from .keys import hash_api_key
from .models import ApiKey
from .redis_client import get_sync_redis, redis_configured

# gateway.admin imports this module during django.setup(), so this is close to process start.
_STARTED_AT = time.monotonic()


def api_key_list() -> QuerySet[ApiKey]:
    return ApiKey.objects.all()


def api_key_get(*, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(pk=key_id).first()
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    return key


def api_key_get_by_secret(*, plain: str) -> ApiKey | None:
    if not plain:
        return None
    return ApiKey.objects.filter(key_hash=hash_api_key(plain)).first()


@dataclass(frozen=True)
class HealthReport:
    version: str
    db_ok: bool
    db_latency_ms: float | None
    redis_configured: bool
    redis_ok: bool | None
    uptime_seconds: float

    @property
    def status(self) -> str:
        return "ok" if self.db_ok and self.redis_ok is not False else "degraded"


@lru_cache(maxsize=1)
def app_version() -> str:
    try:
        with open(settings.BASE_DIR / "pyproject.toml", "rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _database_latency_ms() -> float | None:
    started = time.perf_counter()
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return None
    return round((time.perf_counter() - started) * 1000, 3)


def _redis_ok() -> bool | None:
    if not redis_configured():
        return None
    try:
        return bool(get_sync_redis().ping())
    except Exception:  # any client or network error means "not reachable"
        return False


def health_report() -> HealthReport:
    latency = _database_latency_ms()
    return HealthReport(
        version=app_version(),
        db_ok=latency is not None,
        db_latency_ms=latency,
        redis_configured=redis_configured(),
        redis_ok=_redis_ok(),
        uptime_seconds=round(time.monotonic() - _STARTED_AT, 3),
    )
