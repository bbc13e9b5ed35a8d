"""Reads of usage records for the dashboard: totals, time series, breakdowns, the log.

Everything is aggregated by the database (portable ORM: SQLite and PostgreSQL) over the
indexed columns (created_at, provider, model, api_key_id, connection_id); nothing reads an
unbounded set of rows into Python.

The history reaches back past the records' retention through the hourly roll-ups: the whole
hours of a range before the oldest record come from UsageRollup, the rest from the records
(see `usage_history`). The two parts are aggregated by the database separately (at most
MAX_BUCKETS buckets and MAX_BREAKDOWN_ROWS groups each) and merged here. Roll-ups keep the
sum of their successful requests' latencies, so the mean latency stays exact; rows rolled
up before that sum was kept have only a histogram (which the database cannot add up
portably): theirs are estimated from the histograms streamed in one pass (accumulated into
the buckets and groups already found, never held).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.db.models import (
    Avg,
    BigIntegerField,
    Count,
    DecimalField,
    F,
    FloatField,
    Max,
    Model,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncDay, TruncHour
from django.utils import timezone

from gateway.api.errors import NotFound
from gateway.telemetry.histogram import estimated_sum

from ..models import UsageRecord, UsageRollup

M = TypeVar("M", bound=Model)

BUCKETS = {"hour": TruncHour, "day": TruncDay}
BUCKET_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_BUCKETS = 1000
MAX_BREAKDOWN_ROWS = 1000
HOUR = timedelta(hours=1)
# The aggregates that add up across parts; avg_latency_ms is combined weighted by successes.
_SUMS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_usd")
# groupBy -> the columns grouped by
GROUPS: dict[str, tuple[str, ...]] = {
    "provider": ("provider",),
    "model": ("provider", "model"),
    "key": ("api_key_id",),
    "connection": ("connection_id",),
}
_ERROR = Q(status_code__gte=400) | Q(status_code__lt=100)
STATUS_FILTERS: dict[str, Q] = {
    "success": ~_ERROR,
    "error": _ERROR,
    **{f"{n}xx": Q(status_code__gte=n * 100, status_code__lt=n * 100 + 100) for n in range(1, 6)},
}


@dataclass(frozen=True)
class UsageFilters:
    start: datetime | None = None
    end: datetime | None = None
    provider: str | None = None
    model: str | None = None
    key_id: int | None = None
    connection_id: int | None = None
    status: str | None = None  # a STATUS_FILTERS name or a 3-digit code


def usage_records(*, filters: UsageFilters) -> QuerySet[UsageRecord]:
    return filtered(UsageRecord.objects.order_by(), filters)


def filtered(qs: QuerySet[M], filters: UsageFilters) -> QuerySet[M]:
    """`qs` (usage records or request logs: same column names) narrowed by `filters`."""
    f = filters
    if f.start is not None:
        qs = qs.filter(created_at__gte=f.start)
    if f.end is not None:
        qs = qs.filter(created_at__lt=f.end)
    if f.provider is not None:
        qs = qs.filter(provider=f.provider)
    if f.model is not None:
        qs = qs.filter(model=f.model)
    if f.key_id is not None:
        qs = qs.filter(api_key_id=f.key_id)
    if f.connection_id is not None:
        qs = qs.filter(connection_id=f.connection_id)
    if f.status is not None:
        qs = qs.filter(STATUS_FILTERS[f.status] if f.status in STATUS_FILTERS else Q(status_code=int(f.status)))
    return qs


def _total(column: str) -> Coalesce:
    return Coalesce(Sum(column), Value(0), output_field=BigIntegerField())


def _cost_total() -> Coalesce:
    return Coalesce(Sum("cost_usd"), Value(Decimal(0)), output_field=DecimalField(max_digits=20, decimal_places=8))


def _aggregates() -> dict[str, Any]:
    return {
        "requests": Count("id"),
        "errors": Count("id", filter=_ERROR),
        "prompt_tokens": _total("prompt_tokens"),
        "completion_tokens": _total("completion_tokens"),
        "cached_tokens": _total("cached_tokens"),
        "reasoning_tokens": _total("reasoning_tokens"),
        "cost_usd": _cost_total(),
        "avg_latency_ms": Avg("latency_ms", filter=~_ERROR),
    }


def _rollup_aggregates() -> dict[str, Any]:
    """The sums of `_aggregates` over roll-up rows, plus what their mean latency is made of:
    the latency sums and success counts of the rows that keep a sum (`_latency_*`); rows
    rolled up before sums were kept are estimated apart from their histograms."""
    kept = Q(latency_ms_sum__isnull=False)
    # First: the names of the sums below shadow the columns for the expressions after them.
    latency = {
        "_latency_sum": Coalesce(Sum("latency_ms_sum"), Value(0.0), output_field=FloatField()),
        "_latency_count": Coalesce(
            Sum(F("requests") - F("errors"), filter=kept), Value(0), output_field=BigIntegerField()
        ),
    }
    return latency | {name: _total(name) for name in _SUMS if name != "cost_usd"} | {"cost_usd": _cost_total()}


@dataclass(frozen=True)
class UsageHistory:
    totals: dict[str, Any]
    series: list[dict[str, Any]]
    breakdown: list[dict[str, Any]]
    # Where the roll-ups end and the records begin, when roll-ups contributed; else None.
    rolled_up_before: datetime | None = None


def _group_key(group_by: str, row: dict[str, Any]) -> Any:
    if group_by == "model":
        provider, model = row["provider"], row["model"]
        return f"{provider}/{model}" if provider and model else (model or provider or None)
    value = row[GROUPS[group_by][0]]
    return value if value != "" else None


def _order(group_by: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """The breakdown's order: most expensive, then most requests, then by the group's
    columns (null last, never compared with a value)."""
    columns = tuple((row[column] is None, row[column]) for column in GROUPS[group_by])
    return (-row["cost_usd"], -row["requests"], *columns)


def _breakdown_rows(qs: QuerySet[Any], group_by: str, aggregates: dict[str, Any]) -> list[dict[str, Any]]:
    return list(
        qs.values(*GROUPS[group_by])
        .annotate(**aggregates)
        .order_by("-cost_usd", "-requests", *GROUPS[group_by])[:MAX_BREAKDOWN_ROWS]
    )


def _named(group_by: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Breakdown rows with their `key` and `name`."""
    result = [{"key": _group_key(group_by, row), **row} for row in rows]
    if group_by == "connection":
        _name_connections(result)
    elif group_by in {"provider", "model"}:
        for item in result:
            item["name"] = item[GROUPS[group_by][-1]] or None
    return result


def _name_connections(items: list[dict[str, Any]]) -> None:
    from providers.selectors import connection_list

    ids = [item["key"] for item in items if item["key"] is not None]
    names = dict(connection_list().filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    for item in items:
        item["name"] = names.get(item["key"])


def _name_keys(items: list[dict[str, Any]]) -> None:
    """Roll-ups keep no key name: a key without a recorded one is named as it is now
    (None once deleted)."""
    from gateway.selectors import api_key_list

    ids = [item["key"] for item in items if not item.get("name") and item["key"] is not None]
    names = dict(api_key_list().filter(pk__in=ids).values_list("pk", "name")) if ids else {}
    for item in items:
        if item["key"] in names:
            item["name"] = names[item["key"]]
        item.setdefault("name", None)


@dataclass(frozen=True)
class _Part:
    """One source's aggregates: totals, series rows (by bucket_start) and breakdown rows (by
    the group's columns, unnamed)."""

    totals: dict[str, Any]
    series: list[dict[str, Any]] = field(default_factory=list)
    breakdown: list[dict[str, Any]] = field(default_factory=list)


def _records_part(qs: QuerySet[UsageRecord], bucket: str, group_by: str | None) -> _Part:
    series = (
        qs.annotate(bucket_start=BUCKETS[bucket]("created_at"))
        .values("bucket_start")
        .annotate(**_aggregates())
        .order_by("bucket_start")
    )
    extra: dict[str, Any] = {"name": Max("api_key_name")} if group_by == "key" else {}
    breakdown = _breakdown_rows(qs, group_by, {**_aggregates(), **extra}) if group_by else []
    return _Part(qs.aggregate(**_aggregates()), [dict(row) for row in series], breakdown)


@dataclass
class _Mean:
    total: float = 0.0
    count: int = 0

    @classmethod
    def kept(cls, row: dict[str, Any]) -> _Mean:
        """From the exact sums of an aggregate row (`_rollup_aggregates`)."""
        return cls(float(row.pop("_latency_sum")), int(row.pop("_latency_count")))

    def add(self, histogram: list[int]) -> None:
        self.total += estimated_sum(histogram)
        self.count += sum(histogram)

    def value(self) -> float | None:
        return self.total / self.count if self.count else None


def _rollups_part(qs: QuerySet[UsageRollup], bucket: str, group_by: str | None) -> _Part | None:
    """The roll-ups' aggregates with their mean latencies (exact from the kept sums; for rows
    rolled up before sums were kept, estimated from their histograms); None when no roll-up
    matches."""
    totals = qs.aggregate(**_rollup_aggregates())
    if not totals["requests"]:
        return None
    trunc = BUCKETS[bucket]("hour")
    series = qs.annotate(bucket_start=trunc).values("bucket_start").annotate(**_rollup_aggregates())
    part = _Part(
        totals,
        [dict(row) for row in series.order_by("bucket_start")],
        _breakdown_rows(qs, group_by, _rollup_aggregates()) if group_by else [],
    )
    columns = GROUPS[group_by] if group_by else ()
    total = _Mean.kept(totals)
    buckets = {row["bucket_start"]: _Mean.kept(row) for row in part.series}
    groups = {tuple(row[c] for c in columns): _Mean.kept(row) for row in part.breakdown}
    histograms = (
        qs.filter(requests__gt=F("errors"), latency_ms_sum__isnull=True)
        .annotate(bucket_start=trunc)
        .values_list("bucket_start", "latency_histogram", *columns)
        .iterator(chunk_size=5000)
    )
    for bucket_start, histogram, *group in histograms:
        for mean in (total, buckets.get(bucket_start), groups.get(tuple(group))):
            if mean is not None:
                mean.add(histogram)
    totals["avg_latency_ms"] = total.value()
    for row in part.series:
        row["avg_latency_ms"] = buckets[row["bucket_start"]].value()
    for row in part.breakdown:
        row["avg_latency_ms"] = groups[tuple(row[c] for c in columns)].value()
    return part


def _combined(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two aggregate rows as one: sums add up; the mean latencies weigh by the successful
    requests (requests - errors) behind each."""
    weighted = [
        (row["avg_latency_ms"], row["requests"] - row["errors"])
        for row in (first, second)
        if row["avg_latency_ms"] is not None
    ]
    successes = sum(count for _, count in weighted)
    mean = sum(value * count for value, count in weighted) / successes if successes else None
    return {**second, **first, **{name: first[name] + second[name] for name in _SUMS}, "avg_latency_ms": mean}


def _merged_rows(
    rows: list[dict[str, Any]], more: list[dict[str, Any]], columns: tuple[str, ...]
) -> list[dict[str, Any]]:
    """`rows` and `more` with the rows of equal `columns` combined (unordered)."""
    by_key = {tuple(row[c] for c in columns): row for row in rows}
    for row in more:
        key = tuple(row[c] for c in columns)
        by_key[key] = _combined(by_key[key], row) if key in by_key else row
    return list(by_key.values())


def _hour_ceil(moment: datetime) -> datetime:
    floor = _hour_floor(moment)
    return floor if floor == moment else floor + HOUR


def _hour_floor(moment: datetime) -> datetime:
    """The start of the UTC hour of `moment` (the hours roll-ups are kept by)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _records_start(end: datetime | None) -> datetime:
    """Where the records begin: the hour of the oldest one (or of `end` when there is none),
    at most `end`. Before it, only roll-ups are left."""
    oldest = UsageRecord.objects.order_by("created_at").values_list("created_at", flat=True).first()
    cutoff = _hour_floor(oldest or end or timezone.now())
    return min(cutoff, end) if end is not None else cutoff


def _rollups_before(filters: UsageFilters, cutoff: datetime) -> QuerySet[UsageRollup] | None:
    """The roll-ups of the range's whole hours that end by `cutoff` and match `filters`;
    None when the range has no such hour or a filter roll-ups do not keep (the status)."""
    last = cutoff - HOUR
    first = _hour_ceil(filters.start) if filters.start is not None else None
    if filters.status is not None or (first is not None and first > last):
        return None
    qs = UsageRollup.objects.order_by().filter(hour__lte=last)
    if first is not None:
        qs = qs.filter(hour__gte=first)
    columns = {
        "provider": filters.provider,
        "model": filters.model,
        "api_key_id": filters.key_id,
        "connection_id": filters.connection_id,
    }
    return qs.filter(**{column: value for column, value in columns.items() if value is not None})


def usage_history(*, filters: UsageFilters, bucket: str, group_by: str | None) -> UsageHistory:
    """Totals, a series by `bucket` (in the operator's time zone) and a breakdown by
    `group_by` (most expensive first) of the usage that matches `filters`.

    Two sources, so that the history outlives the records' retention: the hourly roll-ups
    for the range's whole (UTC) hours before `_records_start` (the records of those hours are
    gone), the records from there on. An hour is never taken from both. A status filter
    (not kept by roll-ups) reads the records only.
    """
    cutoff = _records_start(filters.end)
    rollups = _rollups_before(filters, cutoff)
    if rollups is None:
        return _history(_records_part(usage_records(filters=filters), bucket, group_by), group_by)
    start = max(filters.start, cutoff) if filters.start is not None else cutoff
    records = _records_part(usage_records(filters=replace(filters, start=start)), bucket, group_by)
    rolled = _rollups_part(rollups, bucket, group_by)
    if rolled is None:
        return _history(records, group_by)
    series = _merged_rows(records.series, rolled.series, ("bucket_start",))
    breakdown: list[dict[str, Any]] = []
    if group_by:
        merged = _merged_rows(records.breakdown, rolled.breakdown, GROUPS[group_by])
        breakdown = _named(group_by, sorted(merged, key=lambda row: _order(group_by, row))[:MAX_BREAKDOWN_ROWS])
        if group_by == "key":
            _name_keys(breakdown)
    return UsageHistory(
        totals=_combined(records.totals, rolled.totals),
        series=sorted(series, key=lambda row: row["bucket_start"]),
        breakdown=breakdown,
        rolled_up_before=cutoff,
    )


def _history(part: _Part, group_by: str | None) -> UsageHistory:
    breakdown = _named(group_by, part.breakdown) if group_by else []
    return UsageHistory(totals=part.totals, series=part.series, breakdown=breakdown)


def usage_log_page(
    *, filters: UsageFilters, limit: int, before_id: int | None = None
) -> tuple[list[UsageRecord], int | None]:
    """Up to `limit` records, newest (highest id) first, with ids below `before_id`; and the
    id to continue before, or None on the last page."""
    return page(usage_records(filters=filters), limit=limit, before_id=before_id)


def page(qs: QuerySet[M], *, limit: int, before_id: int | None) -> tuple[list[M], int | None]:
    qs = qs.order_by("-id")
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    rows = list(qs[: limit + 1])
    return rows[:limit], rows[limit - 1].pk if len(rows) > limit else None


def usage_connection_history(*, connection_id: int, start: datetime, end: datetime) -> UsageHistory:
    """One connection's totals and hourly series; NotFound when the connection neither exists
    nor has any usage (records or roll-ups)."""
    from providers.selectors import connection_list

    filters = UsageFilters(start=start, end=end, connection_id=connection_id)
    exists = connection_list().filter(pk=connection_id).exists()
    if not (
        exists
        or UsageRecord.objects.filter(connection_id=connection_id).exists()
        or UsageRollup.objects.filter(connection_id=connection_id).exists()
    ):
        raise NotFound(f"Connection {connection_id} not found and has no usage")
    return usage_history(filters=filters, bucket="hour", group_by=None)
