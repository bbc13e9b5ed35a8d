"""The price override admin saves through the service (provider aliases resolved, at least
one price, audited) and keeps provider/model fixed once created."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from tests.factories import PriceOverrideFactory
from usage.models import AuditEntry, PriceOverride

pytestmark = pytest.mark.django_db


def form(**values: str) -> dict[str, str]:
    data = {"provider": "anthropic", "model": "claude-sonnet-4-5", "input": "", "output": ""}
    data.update(values)
    return data


def test_add_and_change(staff: Client) -> None:
    assert staff.get("/admin/usage/priceoverride/add/").status_code == 200
    response = staff.post("/admin/usage/priceoverride/add/", form(input="2.5", cache_creation="3"))
    assert response.status_code == 302, response.content.decode()[:2000]
    row = PriceOverride.objects.get()
    assert (row.provider, row.model, row.input, row.cache_creation) == ("anthropic", "claude-sonnet-4-5", 2.5, 3)
    assert AuditEntry.objects.filter(target_type="usage.PriceOverride", action="create", actor="admin").exists()

    url = f"/admin/usage/priceoverride/{row.pk}/change/"
    page = staff.get(url).content.decode()
    assert 'name="provider"' not in page and 'name="model"' not in page  # fixed once created
    assert staff.post(url, {"input": "", "output": "20"}).status_code == 302
    row.refresh_from_db()
    assert (row.input, row.output, row.cache_creation) == (None, Decimal("20"), None)


def test_form_errors(staff: Client) -> None:
    empty = staff.post("/admin/usage/priceoverride/add/", form())
    assert empty.status_code == 200 and "Give at least one price." in empty.content.decode()
    negative = staff.post("/admin/usage/priceoverride/add/", form(input="-1"))
    assert negative.status_code == 200 and "must be between 0 and" in negative.content.decode()
    assert not PriceOverride.objects.exists()


def test_delete(staff: Client) -> None:
    row = PriceOverrideFactory.create()
    assert staff.post(f"/admin/usage/priceoverride/{row.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not PriceOverride.objects.exists()
    assert AuditEntry.objects.filter(target_type="usage.PriceOverride", action="delete").exists()
