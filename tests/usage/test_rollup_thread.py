"""The in-process hourly roll-up of embedded mode (one process at a time, on schedule), and
the read-only admin list of the roll-ups."""

from __future__ import annotations

import fcntl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.telemetry.rollups import run_once, seconds_to_next_run, start_rollup_thread
from tests.factories import UsageRecordFactory
from usage.models import UsageRecord, UsageRollup

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _own_lock_file(settings: Any, tmp_path: Path) -> None:
    """run_once locks DATA_DIR/rollup.lock, which the two pytest workers would share (one test
    holds it on purpose): each test gets a DATA_DIR of its own."""
    settings.DATA_DIR = tmp_path


def test_run_once_rolls_up_unless_another_process_holds_the_lock(settings: Any) -> None:
    settings.ROLLUP_RETENTION_DAYS = 30
    UsageRecordFactory.create(created_at=datetime.now(UTC) - timedelta(hours=3))
    UsageRollup.objects.create(hour=datetime.now(UTC) - timedelta(days=31), provider="old")  # past retention
    with open(Path(settings.DATA_DIR) / "rollup.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert run_once() is None  # someone else is rolling up
        assert UsageRollup.objects.get().provider == "old"
        fcntl.flock(held, fcntl.LOCK_UN)
    assert run_once() == 3  # the record's hour, then the two most recent ones
    assert UsageRollup.objects.get().requests == 1


def test_run_once_also_does_beats_deletions(settings: Any) -> None:
    """Embedded mode has no beat: the same run deletes old records and expired cache rows."""
    from gateway.models import CacheEntry

    settings.USAGE_RETENTION_DAYS = 30
    now = datetime.now(UTC)
    old = UsageRecordFactory.create(created_at=now - timedelta(days=31))
    kept = UsageRecordFactory.create(created_at=now - timedelta(days=29))
    for key, expires in (("expired", now - timedelta(seconds=1)), ("fresh", now + timedelta(hours=1))):
        CacheEntry.objects.create(
            key=key, model="openai/gpt-4o", requested="x", body=b"{}", created_at=now, expires_at=expires
        )
    run_once()
    assert list(UsageRecord.objects.values_list("id", flat=True)) == [kept.pk]
    assert old.pk != kept.pk
    assert list(CacheEntry.objects.values_list("key", flat=True)) == ["fresh"]


def test_schedule_is_minute_4_of_each_hour() -> None:
    hour = datetime(2026, 1, 1, 10, tzinfo=UTC).timestamp()
    assert seconds_to_next_run(hour) == 240
    assert seconds_to_next_run(hour + 240) == 3600
    assert seconds_to_next_run(hour + 241) == 3599


def test_thread_only_when_configured(settings: Any) -> None:
    settings.ROLLUP_IN_GATEWAY = False
    assert start_rollup_thread() is False


def test_rollups_are_listed_read_only_in_the_admin(staff: Any) -> None:
    UsageRecordFactory.create(created_at=datetime.now(UTC) - timedelta(hours=3), model="gpt-rolled")
    run_once()
    row = UsageRollup.objects.get()
    listing = staff.get("/admin/usage/usagerollup/", {"provider": "openai"})
    assert listing.status_code == 200 and b"gpt-rolled" in listing.content
    assert staff.get("/admin/usage/usagerollup/add/").status_code == 403
    assert staff.post(f"/admin/usage/usagerollup/{row.pk}/delete/", {"post": "yes"}).status_code == 403
