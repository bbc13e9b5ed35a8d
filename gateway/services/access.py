"""Writes about access: API keys, operator login, the admin user.

Snapshot invalidation happens in model signals (gateway/signals.py), not here.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest

from ..api.errors import AuthenticationFailed, InvalidInput, TooManyAttempts
from ..keys import generate_api_key, hash_api_key, visible_prefix
from ..models import ApiKey, InitialPasswordMark
from ..options.netfilter import request_client_ip

# What an operator may set on a key, in the order forms show it.
API_KEY_FIELDS = (
    "name",
    "scope",
    "is_active",
    "allowed_models",
    "max_requests_per_minute",
    "max_requests_per_day",
    "max_tokens_per_minute",
    "max_sessions",
    "no_log",
)
API_KEY_EDITABLE_FIELDS = frozenset(API_KEY_FIELDS)
LOGIN_MAX_FAILURES = 10
LOGIN_WINDOW_SECONDS = 5 * 60


def _clean_allowed_models(value: Iterable[Any] | None) -> list[str]:
    models: list[str] = []
    for item in value or []:
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput("allowedModels entries must be non-empty strings", field="allowed_models")
        models.append(item.strip())
    return models


def _api_key_validate(key: ApiKey) -> None:
    key.name = key.name.strip()
    key.allowed_models = _clean_allowed_models(key.allowed_models)
    key.full_clean()


def api_key_create(
    *,
    name: str,
    scope: str = ApiKey.SCOPE_INFERENCE,
    is_active: bool = True,
    allowed_models: Iterable[str] | None = None,
    max_requests_per_minute: int | None = None,
    max_requests_per_day: int | None = None,
    max_tokens_per_minute: int | None = None,
    max_sessions: int | None = None,
    no_log: bool = False,
) -> tuple[ApiKey, str]:
    """A new key and its plain secret; the secret exists only in the return value."""
    plain = generate_api_key()
    key = ApiKey(
        name=name,
        scope=scope,
        is_active=is_active,
        allowed_models=list(allowed_models or []),
        max_requests_per_minute=max_requests_per_minute,
        max_requests_per_day=max_requests_per_day,
        max_tokens_per_minute=max_tokens_per_minute,
        max_sessions=max_sessions,
        no_log=no_log,
        key_hash=hash_api_key(plain),
        prefix=visible_prefix(plain),
    )
    _api_key_validate(key)
    key.save()
    return key, plain


def api_key_update(*, api_key: ApiKey, data: Mapping[str, Any]) -> ApiKey:
    unknown = set(data) - API_KEY_EDITABLE_FIELDS
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} of an API key", field=sorted(unknown)[0])
    for field, value in data.items():
        setattr(api_key, field, value)
    _api_key_validate(api_key)
    api_key.save()
    return api_key


def api_key_delete(*, api_key: ApiKey) -> None:
    api_key.delete()


def _client_ip(request: HttpRequest) -> str:
    return request_client_ip(request) or "unknown"


def session_login(*, request: HttpRequest, username: str, password: str) -> AbstractBaseUser:
    """Log an operator (staff user) in; 10 failures per IP in 5 minutes block further tries.

    The counter lives in Django's cache, so it is per process unless a shared cache is set.
    """
    cache_key = f"omniroute:login-failures:{_client_ip(request)}"
    state: dict[str, float] = cache.get(cache_key) or {}
    now = time.time()
    if state.get("count", 0) >= LOGIN_MAX_FAILURES and state.get("reset_at", 0) > now:
        wait = max(1, int(state["reset_at"] - now))
        raise TooManyAttempts(f"Too many failed login attempts; try again in {wait} seconds", retry_after=wait)
    user = authenticate(request, username=username, password=password)
    if user is None or not getattr(user, "is_staff", False):
        if not state or state.get("reset_at", 0) <= now:
            state = {"count": 0, "reset_at": now + LOGIN_WINDOW_SECONDS}
        state["count"] += 1
        cache.set(cache_key, state, timeout=max(1, int(state["reset_at"] - now)))
        raise AuthenticationFailed("Invalid password")
    cache.delete(cache_key)
    login(request, user)
    return user


def session_logout(*, request: HttpRequest) -> None:
    logout(request)


AdminOutcome = Literal["created", "updated", "unchanged", "kept"]


def admin_user_ensure(*, password: str, username: str = "admin", reset: bool = False) -> AdminOutcome:
    """The superuser `username` exists and is active; its password is `password` (from
    INITIAL_PASSWORD) unless an operator has changed it since ensure_admin last set it.

    "kept": the account's password was changed by someone else (in the admin, or before
    ensure_admin ever ran on this database) and is left as it is; `reset` sets it anyway.
    Idempotent.
    """
    user_model = get_user_model()
    with transaction.atomic():
        return _admin_user_ensure(user_model, username=username, password=password, reset=reset)


def _password_digest(user: Any) -> str:
    return hashlib.sha256(user.password.encode()).hexdigest()


def _admin_user_ensure(user_model: Any, *, username: str, password: str, reset: bool) -> AdminOutcome:
    user, created = user_model.objects.select_for_update().get_or_create(**{user_model.USERNAME_FIELD: username})
    mark = InitialPasswordMark.objects.select_for_update().filter(username=username).first()
    changed = created
    for flag in ("is_staff", "is_superuser", "is_active"):
        if not getattr(user, flag):
            setattr(user, flag, True)
            changed = True
    ours = created or reset or (mark is not None and mark.password_digest == _password_digest(user))
    differs = not user.check_password(password)
    kept = differs and not ours
    if differs and ours:
        user.set_password(password)
        changed = True
    if changed:
        user.save()
    if not kept:
        InitialPasswordMark.objects.update_or_create(
            username=username, defaults={"password_digest": _password_digest(user)}
        )
    if created:
        return "created"
    if kept:
        return "kept"
    return "updated" if changed else "unchanged"
