"""Retention: usage_purge deletes records older than the given days, in batches; the daily
task reads USAGE_RETENTION_DAYS and is scheduled in the one Celery beat schedule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gateway.api.errors import InvalidInput
from omniroute_site.celery import app as celery_app
from tests.factories import UsageRecordFactory
from usage.models import AuditEntry, UsageRecord
from usage.services import usage_purge
from usage.tasks import usage_purge_old

pytestmark = pytest.mark.django_db


def make(count: int, age: timedelta) -> None:
    created_at = timezone.now() - age
    UsageRecord.objects.bulk_create(
        [
            UsageRecord(created_at=created_at, request_id=f"{age}-{n}", endpoint="e", status_code=200)
            for n in range(count)
        ]
    )


def test_purge_deletes_only_old_records_in_batches() -> None:
    make(23, timedelta(days=91))
    make(5, timedelta(days=89))
    with CaptureQueriesContext(connection) as queries:
        assert usage_purge(older_than_days=90, batch_size=10) == 23
    deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 3  # 10 + 10 + 3
    assert UsageRecord.objects.count() == 5
    assert usage_purge(older_than_days=90) == 0


def test_purge_keeps_the_audit_log() -> None:
    make(3, timedelta(days=400))
    AuditEntry.objects.create(actor="system", action="create", created_at=timezone.now() - timedelta(days=400))
    usage_purge(older_than_days=1)
    assert UsageRecord.objects.count() == 0 and AuditEntry.objects.count() == 1


def test_purge_refuses_nonsense() -> None:
    with pytest.raises(InvalidInput):
        usage_purge(older_than_days=0)


def test_task_uses_the_retention_setting(settings: Any) -> None:
    settings.USAGE_RETENTION_DAYS = 30
    make(2, timedelta(days=31))
    UsageRecordFactory.create(created_at=timezone.now() - timedelta(days=29))
    assert usage_purge_old.apply().get() == 2
    assert UsageRecord.objects.count() == 1


def test_task_is_scheduled_daily() -> None:
    [entry] = [e for e in celery_app.conf.beat_schedule.values() if e["task"] == "usage.tasks.usage_purge_old"]
    schedule = entry["schedule"]
    assert schedule.hour == {3} and schedule.minute == {17} and len(schedule.day_of_week) == 7
    assert "usage.tasks.usage_purge_old" in celery_app.tasks


def test_purge_deletes_old_request_logs_in_batches_too() -> None:
    from usage.models import RequestLog

    def logs(count: int, age: timedelta) -> None:
        created_at = timezone.now() - age
        RequestLog.objects.bulk_create(
            [
                RequestLog(created_at=created_at, request_id=f"{age}-{n}", endpoint="e", status_code=200)
                for n in range(count)
            ]
        )

    logs(12, timedelta(days=31))
    logs(2, timedelta(days=29))
    make(1, timedelta(days=31))
    with CaptureQueriesContext(connection) as queries:
        assert usage_purge(older_than_days=30, batch_size=5) == 13
    deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 4  # records: 1; request logs: 5 + 5 + 2
    assert RequestLog.objects.count() == 2
