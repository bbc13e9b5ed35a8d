"""Writing the audit trail: one entry per change of an audited model, and per login event.

Called by the signal receivers in usage/signals.py, so the admin, the API, management
commands and the shell are all audited alike. An entry is written in the transaction of the
change it describes: a rolled-back change leaves no entry.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Model
from django.http import HttpRequest

from gateway.api.fields import to_camel

from ..audit import ALWAYS_IGNORED, SECRET_CHANGED, Actor, AuditSpec, actor_from, current_actor
from ..models import AuditEntry
from ..redaction import json_redact

MAX_VALUE_LENGTH = 2000


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return "[binary]"
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return json_redact(value)
    return str(value)


def _clip(value: Any) -> Any:
    """Long strings are cut; big JSON values are kept whole (they are configuration)."""
    return value[:MAX_VALUE_LENGTH] if isinstance(value, str) else value


def audit_field_values(instance: Model) -> dict[str, Any]:
    """The instance's concrete field values, by field name, as stored."""
    return {f.name: f.value_from_object(instance) for f in instance._meta.concrete_fields}


def _public_name(spec: AuditSpec, name: str) -> str:
    return spec.secret.get(name) or spec.renames.get(name) or to_camel(name)


def _is_empty(value: Any) -> bool:
    return value is None or value == ""


def audit_changes(*, spec: AuditSpec, before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """`{publicName: [before, after]}` of the fields that differ; secrets as "[changed]".

    `before` None = created, `after` None = deleted (secrets are then left out).
    """
    changes: dict[str, Any] = {}
    names = (after or before or {}).keys()
    for name in names:
        if name in spec.ignored or name in ALWAYS_IGNORED:
            continue
        old = None if before is None else before.get(name)
        new = None if after is None else after.get(name)
        if old == new or (before is None and _is_empty(new)) or (after is None and _is_empty(old)):
            continue
        if name in spec.secret:
            if after is not None:
                changes[_public_name(spec, name)] = SECRET_CHANGED
            continue
        changes[_public_name(spec, name)] = [_clip(_jsonable(old)), _clip(_jsonable(new))]
    return changes


def audit_entry_create(
    *,
    action: str,
    actor: Actor,
    target_type: str = "",
    target_id: str = "",
    target_repr: str = "",
    changes: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor.name[:200],
        actor_ip=actor.ip,
        action=action,
        target_type=target_type,
        target_id=target_id[:64],
        target_repr=target_repr[:300],
        changes=changes or {},
        request_id=actor.request_id,
    )


def audit_model_changed(
    *, spec: AuditSpec, instance: Model, before: dict[str, Any] | None, deleted: bool = False
) -> AuditEntry | None:
    """Record a create (before None), update or delete of an audited row; None when an update
    changed nothing that is reported."""
    after = None if deleted else audit_field_values(instance)
    if deleted:
        before = audit_field_values(instance)
    changes = audit_changes(spec=spec, before=before, after=after)
    action = "delete" if deleted else "create" if before is None else "update"
    if action == "update" and not changes:
        return None
    return audit_entry_create(
        action=action,
        actor=current_actor(),
        target_type=spec.label,
        target_id=str(instance.pk),
        target_repr=str(instance),
        changes=changes,
    )


def audit_login(*, request: HttpRequest | None, user: AbstractBaseUser | None, action: str) -> AuditEntry:
    """A login or logout of an operator."""
    username = user.get_username() if user is not None else ""
    actor = actor_from(request, name=username or "anonymous") if request is not None else Actor(username)
    return audit_entry_create(
        action=action,
        actor=actor,
        target_type=user._meta.label if user is not None else "",
        target_id=str(user.pk) if user is not None else "",
        target_repr=username,
    )


def audit_login_failed(*, request: HttpRequest | None, username: str) -> AuditEntry:
    """A failed login; the attempted username is the actor (never the password)."""
    name = username[:150] or "anonymous"
    actor = actor_from(request, name=name) if request is not None else Actor(name)
    return audit_entry_create(action="login_failed", actor=actor, target_type="auth.User", target_repr=name)
