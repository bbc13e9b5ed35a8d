"""The usage admin is a read-only view with filters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client

from usage.models import UsageRecord

pytestmark = pytest.mark.django_db


def record(**kwargs: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "created_at": datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
        "request_id": "req-1",
        "endpoint": "chat",
        "provider": "openai",
        "model": "gpt-4o",
        "status_code": 200,
        **kwargs,
    }
    return UsageRecord.objects.create(**values)


def test_changelist_lists_and_filters(staff: Client) -> None:
    record(request_id="ok-openai")
    record(request_id="fail-groq", provider="groq", model="llama-3", status_code=502, stream=True)
    everything = staff.get("/admin/usage/usagerecord/")
    assert everything.status_code == 200
    assert b"llama-3" in everything.content and b"gpt-4o" in everything.content

    errors = staff.get("/admin/usage/usagerecord/", {"status": "5xx"}).content
    assert b"llama-3" in errors and b"gpt-4o" not in errors
    openai_only = staff.get("/admin/usage/usagerecord/", {"provider": "openai"}).content
    assert b"gpt-4o" in openai_only and b"llama-3" not in openai_only
    streams = staff.get("/admin/usage/usagerecord/", {"stream__exact": "1"}).content
    assert b"llama-3" in streams and b"gpt-4o" not in streams
    by_day = staff.get("/admin/usage/usagerecord/", {"created_at__year": "2026", "created_at__month": "11"})
    assert by_day.status_code == 200


def test_records_are_read_only(staff: Client) -> None:
    row = record()
    assert staff.get("/admin/usage/usagerecord/add/").status_code == 403
    detail = staff.get(f"/admin/usage/usagerecord/{row.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert staff.post(f"/admin/usage/usagerecord/{row.pk}/change/", {"model": "x"}).status_code == 403
    assert staff.post(f"/admin/usage/usagerecord/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    row.refresh_from_db()
    assert row.model == "gpt-4o"


def test_anonymous_is_sent_to_login() -> None:
    response = Client().get("/admin/usage/usagerecord/")
    assert response.status_code == 302
    assert "/admin/login/" in response.headers["Location"]


def test_request_logs_are_listed_read_only(staff: Client) -> None:
    from usage.models import RequestLog

    log = RequestLog.objects.create(
        created_at=datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
        request_id="req-logged",
        endpoint="/v1/chat/completions",
        status_code=200,
        request_body='{"model":"x"}',
    )
    listing = staff.get("/admin/usage/requestlog/")
    assert listing.status_code == 200 and b"req-logged" in listing.content
    assert staff.get("/admin/usage/requestlog/add/").status_code == 403
    assert staff.post(f"/admin/usage/requestlog/{log.pk}/delete/", {"post": "yes"}).status_code == 403
    assert RequestLog.objects.filter(pk=log.pk).exists()
