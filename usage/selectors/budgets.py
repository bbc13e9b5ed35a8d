"""Reads of budgets: what a key spent in its current period, and each budget's status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Sum

from gateway.api.errors import NotFound
from gateway.budget_clock import current_period

from ..models import Budget, UsageRecord


def usage_spent(*, key_id: int, since: datetime, until: datetime) -> Decimal:
    """The cost of the key's recorded requests in [since, until) (a budget period)."""
    rows = UsageRecord.objects.filter(api_key_id=key_id, created_at__gte=since, created_at__lt=until)
    total = rows.aggregate(total=Sum("cost_usd"))
    return total["total"] or Decimal(0)


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    spent: Decimal
    resets_at: datetime

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.budget.limit_usd - self.spent)

    @property
    def warning(self) -> bool:
        return self.spent >= self.budget.warning_threshold * self.budget.limit_usd


def budget_status(budget: Budget) -> BudgetStatus:
    """Spent so far in the current period: the live counter the gateway checks (shared through
    Redis when configured), else — before the key's first request of the period — the records."""
    from gateway.limits import spent_units, units_to_usd

    period = current_period(budget.period, settings.BUDGET_TIMEZONE)
    units = spent_units(budget.api_key_id, period)
    spent = (
        units_to_usd(units)
        if units is not None
        else usage_spent(key_id=budget.api_key_id, since=period.start, until=period.end)
    )
    return BudgetStatus(budget=budget, spent=spent, resets_at=period.end)


def budget_list(*, key_id: int | None = None) -> list[BudgetStatus]:
    rows = Budget.objects.select_related("api_key").order_by("api_key_id")
    if key_id is not None:
        rows = rows.filter(api_key_id=key_id)
    return [budget_status(row) for row in rows]


def budget_get(*, key_id: int) -> Budget:
    row = Budget.objects.filter(api_key_id=key_id).first()
    if row is None:
        raise NotFound(f"API key {key_id} has no budget")
    return row
