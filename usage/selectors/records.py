"""Reads of usage records for the dashboard: totals, time series, breakdowns, the log.

Everything is aggregated by the database (portable ORM: SQLite and PostgreSQL) over the
indexed columns (created_at, provider, model, api_key_id, connection_id); nothing reads an
unbounded set of rows into Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.db.models import Avg, BigIntegerField, Count, DecimalField, Max, Model, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDay, TruncHour

from gateway.api.errors import NotFound

from ..models import UsageRecord

M = TypeVar("M", bound=Model)

BUCKETS = {"hour": TruncHour, "day": TruncDay}
BUCKET_LENGTH = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_BUCKETS = 1000
MAX_BREAKDOWN_ROWS = 1000
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


def _aggregates() -> dict[str, Any]:
    def total(column: str) -> Coalesce:
        return Coalesce(Sum(column), Value(0), output_field=BigIntegerField())

    return {
        "requests": Count("id"),
        "errors": Count("id", filter=_ERROR),
        "prompt_tokens": total("prompt_tokens"),
        "completion_tokens": total("completion_tokens"),
        "cached_tokens": total("cached_tokens"),
        "reasoning_tokens": total("reasoning_tokens"),
        "cost_usd": Coalesce(
            Sum("cost_usd"), Value(Decimal(0)), output_field=DecimalField(max_digits=20, decimal_places=8)
        ),
        "avg_latency_ms": Avg("latency_ms", filter=~_ERROR),
    }


@dataclass(frozen=True)
class UsageHistory:
    totals: dict[str, Any]
    series: list[dict[str, Any]]
    breakdown: list[dict[str, Any]]


def _group_key(group_by: str, row: dict[str, Any]) -> Any:
    if group_by == "model":
        provider, model = row["provider"], row["model"]
        return f"{provider}/{model}" if provider and model else (model or provider or None)
    value = row[GROUPS[group_by][0]]
    return value if value != "" else None


def _breakdown(qs: QuerySet[UsageRecord], group_by: str) -> list[dict[str, Any]]:
    extra: dict[str, Any] = {"name": Max("api_key_name")} if group_by == "key" else {}
    rows = (
        qs.values(*GROUPS[group_by])
        .annotate(**_aggregates(), **extra)
        .order_by("-cost_usd", "-requests", *GROUPS[group_by])[:MAX_BREAKDOWN_ROWS]
    )
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


def usage_history(*, filters: UsageFilters, bucket: str, group_by: str | None) -> UsageHistory:
    """Totals, a series by `bucket` (in the operator's time zone) and a breakdown by
    `group_by` (most expensive first) of the records that match `filters`."""
    qs = usage_records(filters=filters)
    totals = qs.aggregate(**_aggregates())
    series = [
        dict(row)
        for row in qs.annotate(bucket_start=BUCKETS[bucket]("created_at"))
        .values("bucket_start")
        .annotate(**_aggregates())
        .order_by("bucket_start")
    ]
    breakdown = _breakdown(qs, group_by) if group_by else []
    return UsageHistory(totals=totals, series=series, breakdown=breakdown)


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
    nor has any record."""
    from providers.selectors import connection_list

    filters = UsageFilters(start=start, end=end, connection_id=connection_id)
    exists = connection_list().filter(pk=connection_id).exists()
    if not exists and not UsageRecord.objects.filter(connection_id=connection_id).exists():
        raise NotFound(f"Connection {connection_id} not found and has no usage")
    return usage_history(filters=filters, bucket="hour", group_by=None)
