"""The data plane's view of the configuration: an immutable in-memory snapshot.

Requests never query the ORM. The snapshot is rebuilt (in a worker thread) when the
configuration version moves: at once in the process that made the change, and within
CONFIG_POLL_INTERVAL in every other process (the version lives in the database and, when
Redis is configured, in a Redis key that is cheaper to poll).
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from providers.adapters.base import Credential
from providers.catalog import Catalog
from providers.crypto import SecretDecryptionError

from .models import ApiKey, Combo, ConfigVersion, ModelAlias, ResilienceProfile
from .options import Options, load_options
from .redis_client import get_async_redis, get_sync_redis, redis_configured

log = logging.getLogger(__name__)
REDIS_VERSION_KEY = "omniroute:config:version"


@dataclass(frozen=True, slots=True)
class BudgetEntry:
    """A key's spending cap (usage.Budget); amounts in integer cost units (gateway.limits)."""

    limit_usd: Decimal
    limit_units: int
    period: str
    warning_threshold: Decimal


@dataclass(frozen=True, slots=True)
class KeyEntry:
    id: int
    name: str
    scope: str
    is_active: bool
    allowed_models: tuple[str, ...]
    no_log: bool
    max_requests_per_minute: int | None
    max_requests_per_day: int | None
    max_tokens_per_minute: int | None = None
    budget: BudgetEntry | None = None
    # Any limit or budget: only such keys cost the limiter any work (gateway.limits).
    limited: bool = False
    max_sessions: int | None = None

    def allows_model(self, model: str) -> bool:
        """Empty list = all models. Entries are exact ids, `provider/*` or glob patterns."""
        if not self.allowed_models:
            return True
        return any(model == pattern or fnmatch.fnmatchcase(model, pattern) for pattern in self.allowed_models)


@dataclass(frozen=True, slots=True)
class ComboMember:
    model: str  # "provider/model" or, when is_combo, the name of a nested combo
    weight: int | None  # None when the member was written as a plain string
    is_combo: bool


@dataclass(frozen=True, slots=True)
class ComboEntry:
    id: int
    name: str
    strategy: str
    config: dict[str, Any]
    members: tuple[ComboMember, ...]
    is_active: bool


@dataclass(frozen=True, slots=True)
class ResilienceProfileEntry:
    cooldown_base_seconds: float
    cooldown_max_seconds: float
    backoff_multiplier: float
    breaker_failure_threshold: int
    breaker_reset_seconds: float
    breaker_half_open_probes: int
    credit_error_cooldown_seconds: float

    @classmethod
    def from_row(cls, row: ResilienceProfile) -> ResilienceProfileEntry:
        return cls(
            cooldown_base_seconds=float(row.cooldown_base_seconds),
            cooldown_max_seconds=float(row.cooldown_max_seconds),
            backoff_multiplier=float(row.backoff_multiplier),
            breaker_failure_threshold=int(row.breaker_failure_threshold),
            breaker_reset_seconds=float(row.breaker_reset_seconds),
            breaker_half_open_probes=int(row.breaker_half_open_probes),
            credit_error_cooldown_seconds=float(row.credit_error_cooldown_seconds),
        )


def _default_profiles() -> dict[str, ResilienceProfileEntry]:
    # An unsaved row carries the model's defaults; no database access.
    return {"default": ResilienceProfileEntry.from_row(ResilienceProfile(auth_type="default"))}


@dataclass(frozen=True)
class Snapshot:
    version: int
    catalog: Catalog
    keys_by_hash: dict[str, KeyEntry]
    # provider id -> active credentials in priority order
    credentials: dict[str, tuple[Credential, ...]]
    models_body: bytes = b""
    # The shared version token seen when this snapshot was built (Redis key or DB version).
    shared_token: str = ""
    built_at: float = field(default_factory=time.time)
    # Exact aliases, and glob aliases most specific first (most literal characters, then fewest wildcards).
    aliases: dict[str, str] = field(default_factory=dict)
    alias_globs: tuple[tuple[str, str], ...] = ()
    # By name, in the operator's order (sort order, then name).
    combos: dict[str, ComboEntry] = field(default_factory=dict)
    # By auth type ("default", "apikey", "oauth"); "default" is always present.
    profiles: dict[str, ResilienceProfileEntry] = field(default_factory=_default_profiles)
    # The operator's runtime settings (system prompt, thinking budget, IP filter, ...).
    options: Options = field(default_factory=Options)


def _build_models_body(
    catalog: Catalog,
    credentials: dict[str, tuple[Credential, ...]],
    created: int,
    combos: Iterable[ComboEntry] = (),
) -> bytes:
    data: list[dict[str, object]] = [
        {"id": c.name, "object": "model", "created": created, "owned_by": "combo", "type": "chat"}
        for c in combos
        if c.is_active
    ]
    for provider_id in credentials:
        provider = catalog.providers[provider_id]
        for model in provider.models:
            entry: dict[str, object] = {
                "id": f"{provider_id}/{model.id}",
                "object": "model",
                "created": created,
                "owned_by": provider_id,
                "type": model.type,
            }
            if model.context_length:
                entry["context_length"] = model.context_length
            data.append(entry)
    return orjson.dumps({"object": "list", "data": data})


def _credentials(catalog: Catalog) -> dict[str, tuple[Credential, ...]]:
    from providers.models import ProviderConnection

    result: dict[str, list[Credential]] = {}
    for conn in ProviderConnection.objects.filter(is_active=True).order_by("priority", "id"):
        provider = catalog.providers.get(conn.provider)
        if provider is None:
            log.warning("Connection %s names unknown provider %r; skipped", conn.pk, conn.provider)
            continue
        try:
            api_key = conn.api_key
        except SecretDecryptionError as exc:
            log.error("Connection %s skipped: %s", conn.pk, exc)
            continue
        result.setdefault(provider.id, []).append(
            Credential.build(
                connection_id=conn.pk,
                provider=provider,
                api_key=api_key,
                base_url=conn.base_url or provider.base_url,
                data=dict(conn.provider_specific_data or {}),
            )
        )
    return {k: tuple(v) for k, v in result.items()}


def _glob_specificity(pattern: str) -> tuple[int, int, str]:
    """Sort key, most specific first: most literal characters, then fewest wildcards.

    Counting literals first keeps a catch-all "*" behind "claude-*-sonnet-*".
    """
    wildcards = pattern.count("*") + pattern.count("?")
    return (-(len(pattern) - wildcards), wildcards, pattern)


def _aliases() -> tuple[dict[str, str], tuple[tuple[str, str], ...]]:
    exact: dict[str, str] = {}
    globs: list[tuple[str, str]] = []
    for row in ModelAlias.objects.order_by("alias"):
        if "*" in row.alias or "?" in row.alias:
            globs.append((row.alias, row.model))
        else:
            exact[row.alias] = row.model
    globs.sort(key=lambda item: _glob_specificity(item[0]))
    return exact, tuple(globs)


def _combos() -> dict[str, ComboEntry]:
    rows = list(Combo.objects.order_by("sort_order", "name"))
    names = {row.name for row in rows}
    result: dict[str, ComboEntry] = {}
    for row in rows:
        members = []
        for raw in row.members or []:
            model = raw.get("model", "") if isinstance(raw, dict) else str(raw)
            weight = raw.get("weight", 0) if isinstance(raw, dict) else None
            members.append(ComboMember(model=model, weight=weight, is_combo=model in names))
        result[row.name] = ComboEntry(
            id=row.pk,
            name=row.name,
            strategy=row.strategy,
            config=dict(row.config or {}),
            members=tuple(members),
            is_active=row.is_active,
        )
    return result


def _budgets() -> dict[int, BudgetEntry]:
    from usage.models import Budget

    from .limits import usd_to_units

    return {
        row.api_key_id: BudgetEntry(
            limit_usd=row.limit_usd,
            limit_units=usd_to_units(row.limit_usd),
            period=row.period,
            warning_threshold=row.warning_threshold,
        )
        for row in Budget.objects.all()
    }


def _profiles() -> dict[str, ResilienceProfileEntry]:
    profiles = _default_profiles()
    profiles.update({row.auth_type: ResilienceProfileEntry.from_row(row) for row in ResilienceProfile.objects.all()})
    return profiles


def build_snapshot() -> Snapshot:
    from providers.selectors import catalog_current

    # Read the version and token first: a change racing with this build leaves them behind
    # and triggers another rebuild.
    version = ConfigVersion.objects.filter(pk=1).values_list("version", flat=True).first() or 0
    shared_token = _read_shared_token_sync()
    catalog = catalog_current()
    budgets = _budgets()
    keys = {
        k.key_hash: KeyEntry(
            id=k.pk,
            name=k.name,
            scope=k.scope,
            is_active=k.is_active,
            allowed_models=tuple(k.allowed_models or ()),
            no_log=k.no_log,
            max_requests_per_minute=k.max_requests_per_minute,
            max_requests_per_day=k.max_requests_per_day,
            max_tokens_per_minute=k.max_tokens_per_minute,
            budget=budgets.get(k.pk),
            limited=k.pk in budgets
            or any(n is not None for n in (k.max_requests_per_minute, k.max_requests_per_day, k.max_tokens_per_minute)),
            max_sessions=k.max_sessions,
        )
        for k in ApiKey.objects.all()
    }
    credentials = _credentials(catalog)
    aliases, alias_globs = _aliases()
    combos = _combos()
    return Snapshot(
        version=version,
        shared_token=shared_token,
        catalog=catalog,
        keys_by_hash=keys,
        credentials=credentials,
        models_body=_build_models_body(catalog, credentials, int(time.time()), combos.values()),
        aliases=aliases,
        alias_globs=alias_globs,
        combos=combos,
        profiles=_profiles(),
        options=load_options(),
    )


class _State:
    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.dirty = True
        self.lock = threading.Lock()
        # One poller task per event loop; kept here so the tasks are not garbage-collected.
        self.pollers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}


_state = _State()


def _rebuild() -> Snapshot:
    with _state.lock:
        if _state.snapshot is None or _state.dirty:
            _state.dirty = False
            try:
                _state.snapshot = build_snapshot()
            except Exception:
                _state.dirty = True
                raise
        return _state.snapshot


async def get_snapshot() -> Snapshot:
    snap = _state.snapshot
    # A rebuild in progress (lock held) has already cleared `dirty`: wait for its result.
    if snap is not None and not _state.dirty and not _state.lock.locked():
        return snap
    loop = asyncio.get_running_loop()
    if loop not in _state.pollers:
        _state.pollers[loop] = loop.create_task(_poll_version(), name="omniroute-config-poller")
    return await asyncio.to_thread(_rebuild)


def get_snapshot_sync() -> Snapshot:
    """For code that runs outside the event loop (management commands, tests)."""
    snap = _state.snapshot
    if snap is not None and not _state.dirty:
        return snap
    return _rebuild()


def _bump_version() -> None:
    # updated_at moves with every bump, so the token never repeats even if the counter
    # restarts (a restored or emptied database).
    updated = ConfigVersion.objects.filter(pk=1).update(version=F("version") + 1, updated_at=timezone.now())
    if not updated:
        ConfigVersion.objects.get_or_create(pk=1, defaults={"version": 1})
    _state.dirty = True
    if redis_configured():
        try:
            get_sync_redis().set(REDIS_VERSION_KEY, secrets.token_hex(8))
        except Exception as exc:  # Redis down: other processes fall back to polling the database
            log.warning("Could not publish config version to Redis: %s", exc)


def snapshot_invalidate() -> None:
    """Mark the configuration changed, once the current transaction commits."""
    transaction.on_commit(_bump_version)


def _read_db_token() -> str:
    row = ConfigVersion.objects.filter(pk=1).values_list("version", "updated_at").first()
    return f"d:{row[0]}:{row[1].timestamp()}" if row else "d:0"


def _text(raw: object) -> str:
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _read_shared_token_sync() -> str:
    if redis_configured():
        try:
            return "r:" + _text(get_sync_redis().get(REDIS_VERSION_KEY))
        except Exception as exc:
            log.warning("Redis unavailable for config versions, polling the database: %s", exc)
    return _read_db_token()


async def _read_shared_token() -> str:
    if redis_configured():
        try:
            return "r:" + _text(await get_async_redis().get(REDIS_VERSION_KEY))
        except Exception as exc:
            log.debug("Redis version poll failed, using the database: %s", exc)
    return await asyncio.to_thread(_read_db_token)


async def _poll_version() -> None:
    while True:
        await asyncio.sleep(settings.CONFIG_POLL_INTERVAL)
        snap = _state.snapshot
        try:
            token = await _read_shared_token()
        except Exception as exc:
            log.warning("Config version poll failed: %s", exc)
            continue
        if snap is not None and token != snap.shared_token:
            _state.dirty = True


def peek_snapshot() -> Snapshot | None:
    """The snapshot as built so far, without building one (for code outside the request path)."""
    return _state.snapshot


def snapshot_mark_dirty() -> None:
    """Force a rebuild on next use (tests that reset the database behind the signals' back)."""
    _state.dirty = True
