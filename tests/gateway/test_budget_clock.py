"""Budget periods are calendar periods of the operator's time zone (pure functions)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.budget_clock import current_period, period_at

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def at(text: str, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def test_daily_starts_at_local_midnight_not_utc() -> None:
    # 23:30 UTC on the 26th is already the 27th in Berlin (UTC+1 in November).
    period = period_at("daily", at("2026-11-26T23:30:00", UTC), BERLIN)
    assert period.start == at("2026-11-27T00:00:00")
    assert period.end == at("2026-11-28T00:00:00")
    assert period.start.astimezone(UTC) == at("2026-11-26T23:00:00", UTC)
    assert period.label == "d2026-11-27"


def test_weekly_starts_on_monday() -> None:
    period = period_at("weekly", at("2026-11-29T23:59:59"), BERLIN)  # a Sunday
    assert period.start == at("2026-11-23T00:00:00") and period.start.weekday() == 0
    assert period.end == at("2026-11-30T00:00:00")
    assert period_at("weekly", at("2026-11-30T00:00:00"), BERLIN).start == at("2026-11-30T00:00:00")


@pytest.mark.parametrize(
    ("moment", "start", "end"),
    [
        ("2026-01-31T12:00:00", "2026-01-01T00:00:00", "2026-02-01T00:00:00"),
        ("2026-02-28T23:59:59", "2026-02-01T00:00:00", "2026-03-01T00:00:00"),
        ("2028-02-29T10:00:00", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
        ("2026-12-31T23:00:00", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
    ],
)
def test_monthly_runs_from_the_first_to_the_first(moment: str, start: str, end: str) -> None:
    period = period_at("monthly", at(moment), BERLIN)
    assert (period.start, period.end) == (at(start), at(end))


def test_a_day_with_a_dst_change_is_23_or_25_hours() -> None:
    spring = period_at("daily", at("2026-03-29T12:00:00"), BERLIN)
    autumn = period_at("daily", at("2026-10-25T12:00:00"), BERLIN)
    assert spring.end_ts - spring.start_ts == 23 * 3600
    assert autumn.end_ts - autumn.start_ts == 25 * 3600


def test_current_period_moves_on_at_the_boundary() -> None:
    end = at("2026-11-28T00:00:00").timestamp()
    before = current_period("daily", "Europe/Berlin", end - 1)
    after = current_period("daily", "Europe/Berlin", end)
    assert before.label == "d2026-11-27" and after.label == "d2026-11-28"
    assert before.seconds_left(end - 1) == 1
    assert current_period("daily", "Europe/Berlin", end - 0.5) == before


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="Unknown period"):
        period_at("hourly", at("2026-11-27T10:00:00"), BERLIN)
