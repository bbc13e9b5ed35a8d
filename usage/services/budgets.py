"""Writes of budgets. The gateway's snapshot (which carries them) is rebuilt by model signals."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import transaction

from gateway.api.errors import InvalidInput, NotFound
from gateway.budget_clock import PERIODS
from gateway.models import ApiKey

from ..models import Budget

MAX_BUDGET = Decimal(10_000_000)  # USD per period; the column holds 8 integer digits
_LIMIT_QUANTUM = Decimal("0.00000001")
_THRESHOLD_QUANTUM = Decimal("0.0001")


def _decimal(value: Decimal | float | int | str, field: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput(f"{field} must be a number", field=field) from exc
    if not number.is_finite():
        raise InvalidInput(f"{field} must be a finite number", field=field)
    return number


def budget_values_clean(
    *, limit: Decimal | float | int, period: str, warning_threshold: Decimal | float | None
) -> tuple[Decimal, str, Decimal]:
    """limit: USD per period, 0 (blocks every request) to MAX_BUDGET; period: daily, weekly or
    monthly; warning_threshold: the fraction of the limit from which `warning` is set, above
    0 and at most 1 (default 0.8)."""
    amount = _decimal(limit, "limit")
    if amount < 0 or amount > MAX_BUDGET:
        raise InvalidInput(f"limit must be between 0 and {MAX_BUDGET} USD", field="limit")
    if period not in PERIODS:
        raise InvalidInput(f"period must be one of {', '.join(PERIODS)}", field="period")
    threshold = Decimal("0.8") if warning_threshold is None else _decimal(warning_threshold, "warning_threshold")
    if not Decimal(0) < threshold <= Decimal(1):
        raise InvalidInput("warningThreshold must be a fraction above 0 and at most 1", field="warning_threshold")
    return amount.quantize(_LIMIT_QUANTUM), period, threshold.quantize(_THRESHOLD_QUANTUM)


def budget_set(
    *, key_id: int, limit: Decimal | float | int, period: str, warning_threshold: Decimal | float | None = None
) -> Budget:
    """Create or replace the budget of an API key (one per key); see budget_values_clean."""
    amount, period, threshold = budget_values_clean(limit=limit, period=period, warning_threshold=warning_threshold)
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(pk=key_id).first()
        if key is None:
            raise NotFound(f"No API key with id {key_id}")
        row = Budget.objects.filter(api_key=key).first() or Budget(api_key=key)
        row.limit_usd, row.period, row.warning_threshold = amount, period, threshold
        row.full_clean()
        row.save()
    return row


def budget_delete(*, budget: Budget) -> None:
    budget.delete()
