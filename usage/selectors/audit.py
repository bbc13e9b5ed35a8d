"""Reads of the audit trail."""

from __future__ import annotations

from django.db.models import QuerySet

from ..models import AuditEntry


def audit_entry_list(*, limit: int) -> QuerySet[AuditEntry]:
    """The newest `limit` entries, newest first."""
    return AuditEntry.objects.order_by("-id")[:limit]
