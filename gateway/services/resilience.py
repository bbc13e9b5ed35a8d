"""Writes of resilience profiles: cooldown and circuit-breaker numbers per auth type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from ..api.errors import InvalidInput
from ..api.fields import to_camel
from ..models import ResilienceProfile
from ..selectors import resilience_profile_list

ONE_DAY = 86_400.0
ONE_YEAR = 365 * ONE_DAY
# field -> (lowest, lowest is allowed, highest, integer)
PROFILE_RULES: dict[str, tuple[float, bool, float, bool]] = {
    "cooldown_base_seconds": (0, False, ONE_DAY, False),
    "cooldown_max_seconds": (0, False, ONE_YEAR, False),
    "backoff_multiplier": (1, True, 100, False),
    "breaker_failure_threshold": (1, True, 1000, True),
    "breaker_reset_seconds": (0, False, ONE_DAY, False),
    "breaker_half_open_probes": (1, True, 100, True),
    "credit_error_cooldown_seconds": (0, False, ONE_YEAR, False),
}


def _check_number(field: str, value: Any) -> None:
    low, low_allowed, high, integer = PROFILE_RULES[field]
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or value != value:  # value != value: NaN
        raise InvalidInput(f"{to_camel(field)} must be {kind}", field=field)
    bottom = f"at least {low:g}" if low_allowed else f"greater than {low:g}"
    if value < low or (value == low and not low_allowed) or value > high:
        raise InvalidInput(f"{to_camel(field)} must be {kind} {bottom} and at most {high:g}", field=field)


def resilience_profile_validate(profile: ResilienceProfile) -> None:
    """Positive, bounded numbers, and a maximum cooldown not below the base one."""
    if profile.auth_type not in dict(ResilienceProfile.AUTH_TYPES):
        raise InvalidInput(
            f"Unknown auth type {profile.auth_type!r}; use {', '.join(dict(ResilienceProfile.AUTH_TYPES))}",
            field="auth_type",
        )
    for field in PROFILE_RULES:
        _check_number(field, getattr(profile, field))
    if profile.cooldown_max_seconds < profile.cooldown_base_seconds:
        raise InvalidInput("cooldownMaxSeconds must not be below cooldownBaseSeconds", field="cooldown_max_seconds")


def resilience_profiles_update(*, changes: Mapping[str, Mapping[str, Any]]) -> list[ResilienceProfile]:
    """Partial update of one or more profiles, all or nothing; a missing profile is created
    from the defaults first. Errors name `profiles.<authType>.<field>`."""
    if not changes:
        raise InvalidInput("profiles must name at least one auth type", field="profiles")
    with transaction.atomic():
        for auth_type, values in changes.items():
            _profile_update(auth_type, values)
    return resilience_profile_list()


def _profile_update(auth_type: str, values: Mapping[str, Any]) -> None:
    if auth_type not in dict(ResilienceProfile.AUTH_TYPES):
        raise InvalidInput(
            f"Unknown auth type {auth_type!r}; use {', '.join(dict(ResilienceProfile.AUTH_TYPES))}",
            field=f"profiles.{auth_type}",
        )
    profile = ResilienceProfile.objects.filter(auth_type=auth_type).first() or ResilienceProfile(auth_type=auth_type)
    for field, value in values.items():
        if field not in PROFILE_RULES:
            raise InvalidInput(f"Unknown profile field {to_camel(field)!r}", field=f"profiles.{auth_type}.{field}")
        setattr(profile, field, value)
    try:
        resilience_profile_validate(profile)
    except InvalidInput as exc:
        raise InvalidInput(f"profiles.{auth_type}: {exc.message}", field=f"profiles.{auth_type}.{exc.field}") from exc
    profile.save()


def resilience_profile_delete(*, profile: ResilienceProfile) -> None:
    """Its auth type falls back to "default", which itself cannot be deleted."""
    if profile.auth_type == "default":
        raise InvalidInput("The default resilience profile cannot be deleted", field="auth_type")
    profile.delete()
