"""Signal receivers of the usage app: the audit trail of every audited model (see
usage.audit.AUDITED), operator login events, and price-table invalidation.

Signals rather than calls in each service so that the admin, the API, management commands
and the shell are audited alike. Queryset `update()` bypasses them (no service uses it for
configuration, except the connection rename that follows a node's audited prefix change).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models import Model
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from gateway.snapshot import snapshot_invalidate

from .audit import AUDITED, AuditSpec
from .models import Budget, PriceOverride
from .pricing import price_table_invalidate
from .services.audit import audit_field_values, audit_login, audit_login_failed, audit_model_changed

_BEFORE = "_omniroute_audit_before"
_specs: dict[type[Model], AuditSpec] = {}


def _capture_before(sender: type[Model], instance: Model, raw: bool = False, **_: Any) -> None:
    if raw or instance.pk is None:
        return
    stored = sender._default_manager.filter(pk=instance.pk).first()
    setattr(instance, _BEFORE, audit_field_values(stored) if stored is not None else None)


def _after_save(sender: type[Model], instance: Model, created: bool, raw: bool = False, **_: Any) -> None:
    if raw:
        return
    before = None if created else getattr(instance, _BEFORE, None)
    if not created and before is None:
        before = {}  # saved without a stored row to compare with: report nothing as "before"
    audit_model_changed(spec=_specs[sender], instance=instance, before=before)
    instance.__dict__.pop(_BEFORE, None)


def _after_delete(sender: type[Model], instance: Model, **_: Any) -> None:
    audit_model_changed(spec=_specs[sender], instance=instance, before=None, deleted=True)


def connect_audit() -> None:
    """Connect the audit receivers to every audited model that exists (called from ready())."""
    for spec in AUDITED:
        try:
            model = apps.get_model(spec.label)
        except LookupError:
            continue
        _specs[model] = spec
        pre_save.connect(_capture_before, sender=model, dispatch_uid=f"audit-before-{spec.label}")
        post_save.connect(_after_save, sender=model, dispatch_uid=f"audit-save-{spec.label}")
        post_delete.connect(_after_delete, sender=model, dispatch_uid=f"audit-delete-{spec.label}")


@receiver(user_logged_in, dispatch_uid="audit-login")
def _logged_in(sender: Any, request: Any, user: Any, **_: Any) -> None:
    audit_login(request=request, user=user, action="login")


@receiver(user_logged_out, dispatch_uid="audit-logout")
def _logged_out(sender: Any, request: Any, user: Any, **_: Any) -> None:
    if user is not None:
        audit_login(request=request, user=user, action="logout")


@receiver(user_login_failed, dispatch_uid="audit-login-failed")
def _login_failed(sender: Any, credentials: dict[str, Any], request: Any = None, **_: Any) -> None:
    audit_login_failed(request=request, username=str(credentials.get("username") or ""))


@receiver([post_save, post_delete], sender=PriceOverride, dispatch_uid="price-override-changed")
def _price_override_changed(**_: object) -> None:
    # At once in this process; other processes see the config version move.
    price_table_invalidate()
    snapshot_invalidate()


@receiver([post_save, post_delete], sender=Budget, dispatch_uid="budget-changed")
def _budget_changed(**_: object) -> None:
    snapshot_invalidate()  # budgets are enforced from the snapshot
