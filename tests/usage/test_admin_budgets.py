"""The budget admin saves through the service (validation, one budget per key, audited) and
shows the current spend and reset time."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from tests.factories import ApiKeyFactory
from tests.gateway.test_key_limits import fresh_counters  # noqa: F401 (autouse)
from usage.models import AuditEntry, Budget

pytestmark = pytest.mark.django_db


def test_add_list_and_errors(staff: Client) -> None:
    key = ApiKeyFactory.create(name="reports")
    assert staff.get("/admin/usage/budget/add/").status_code == 200
    bad = staff.post(
        "/admin/usage/budget/add/",
        {"api_key": key.pk, "limit_usd": "5", "period": "daily", "warning_threshold": "1.5"},
    )
    assert bad.status_code == 200 and "warningThreshold must be a fraction" in bad.content.decode()
    response = staff.post(
        "/admin/usage/budget/add/",
        {"api_key": key.pk, "limit_usd": "5", "period": "weekly", "warning_threshold": "0.9"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = Budget.objects.get()
    assert (row.api_key_id, row.limit_usd, row.period, row.warning_threshold) == (
        key.pk,
        Decimal(5),
        "weekly",
        Decimal("0.9"),
    )
    assert AuditEntry.objects.filter(target_type="usage.Budget", action="create", actor="admin").exists()
    page = staff.get("/admin/usage/budget/").content.decode()
    assert "reports" in page and "Spent this period" in page

    assert staff.post(f"/admin/usage/budget/{row.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Budget.objects.exists()


def test_api_key_admin_has_tokens_per_minute(staff: Client) -> None:
    page = staff.get("/admin/gateway/apikey/add/").content.decode()
    assert 'name="max_tokens_per_minute"' in page
