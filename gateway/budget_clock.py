"""Calendar periods of budgets and per-day limits, in the operator's time zone.

A period starts at local midnight (daily), Monday midnight (weekly) or midnight of the 1st
(monthly) in BUDGET_TIMEZONE, so "daily" means the operator's day, not UTC's. Periods are
computed from wall-clock dates and converted back to instants, so a period that spans a DST
change is 23 or 25 hours long, as the operator's calendar says.

`current_period` caches the period it last computed per (kind, zone): on the request path a
period costs one comparison until it ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PERIODS = ("daily", "weekly", "monthly")


@dataclass(frozen=True, slots=True)
class Period:
    kind: str
    start: datetime  # aware, in the period's zone
    end: datetime  # exclusive; the next period's start
    start_ts: float
    end_ts: float
    label: str  # names the period in counter keys: "d2026-11-27", "w2026-11-23", "m2026-11"

    def seconds_left(self, now: float) -> float:
        return max(0.0, self.end_ts - now)


def _first_day(kind: str, day: date) -> date:
    if kind == "daily":
        return day
    if kind == "weekly":
        return day - timedelta(days=day.weekday())
    if kind == "monthly":
        return day.replace(day=1)
    raise ValueError(f"Unknown period {kind!r}; use one of {', '.join(PERIODS)}")


def _next_first_day(kind: str, first: date) -> date:
    if kind == "daily":
        return first + timedelta(days=1)
    if kind == "weekly":
        return first + timedelta(days=7)
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)


def period_at(kind: str, moment: datetime, zone: ZoneInfo) -> Period:
    """The period of `kind` that contains `moment` (an aware datetime)."""
    first = _first_day(kind, moment.astimezone(zone).date())
    start, end = _midnight(first, zone), _midnight(_next_first_day(kind, first), zone)
    label = {"daily": "d", "weekly": "w", "monthly": "m"}[kind] + (
        first.strftime("%Y-%m") if kind == "monthly" else first.isoformat()
    )
    return Period(kind=kind, start=start, end=end, start_ts=start.timestamp(), end_ts=end.timestamp(), label=label)


@lru_cache(maxsize=64)
def zone_named(name: str) -> ZoneInfo:
    return ZoneInfo(name)


_current: dict[tuple[str, str], Period] = {}


def current_period(kind: str, zone_name: str, now: float | None = None) -> Period:
    """The period of `kind` containing `now` (default: the current time) in zone `zone_name`."""
    now = time.time() if now is None else now
    cached = _current.get((kind, zone_name))
    if cached is not None and cached.start_ts <= now < cached.end_ts:
        return cached
    zone = zone_named(zone_name)
    period = period_at(kind, datetime.fromtimestamp(now, tz=zone), zone)
    _current[(kind, zone_name)] = period
    return period
