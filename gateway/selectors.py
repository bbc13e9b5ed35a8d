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
from .models import ApiKey, Combo, ModelAlias, ResilienceProfile
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


def alias_list() -> QuerySet[ModelAlias]:
    return ModelAlias.objects.order_by("alias")


def alias_get(*, alias: str) -> ModelAlias:
    row = ModelAlias.objects.filter(alias=alias).first()
    if row is None:
        raise NotFound(f"Alias {alias!r} not found")
    return row


def combo_list() -> QuerySet[Combo]:
    return Combo.objects.order_by("sort_order", "name")


def combo_get(*, combo_id: int) -> Combo:
    combo = Combo.objects.filter(pk=combo_id).first()
    if combo is None:
        raise NotFound(f"Combo {combo_id} not found")
    return combo


def combo_referrers(*, name: str) -> list[str]:
    """Names of the combos that list the combo `name` as a member."""
    return [c.name for c in combo_list() if c.name != name and name in c.member_models()]


def provider_references(*, provider_id: str) -> list[str]:
    """Aliases and combos that route to `provider_id/...`, described for an error message."""
    combo_names = set(Combo.objects.values_list("name", flat=True))

    def uses(model: str) -> bool:
        return model not in combo_names and model.partition("/")[0].lower() == provider_id

    found = [f"alias {a.alias!r}" for a in alias_list() if uses(a.model)]
    found += [f"combo {c.name!r}" for c in combo_list() if any(uses(m) for m in c.member_models())]
    return found


def resilience_profile_list() -> list[ResilienceProfile]:
    """The stored profiles; "default" is always there (with the built-in numbers if its row is gone)."""
    profiles = list(ResilienceProfile.objects.order_by("auth_type"))
    if not any(p.auth_type == "default" for p in profiles):
        profiles.insert(0, ResilienceProfile(auth_type="default"))
    return profiles


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
