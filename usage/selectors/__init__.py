"""Reads of the usage app, one module per concern; import them from here."""

from .audit import audit_entry_list
from .budgets import BudgetStatus, budget_get, budget_list, budget_status, usage_spent
from .pricing import price_entry, price_list, price_override_get
from .records import (
    BUCKET_LENGTH,
    BUCKETS,
    GROUPS,
    MAX_BUCKETS,
    STATUS_FILTERS,
    UsageFilters,
    UsageHistory,
    usage_connection_history,
    usage_history,
    usage_log_page,
    usage_records,
)
from .request_logs import request_log_page
from .telemetry import DEFAULT_WINDOW, WINDOWS, TelemetrySummary, percentile, telemetry_summary

__all__ = [
    "BUCKETS",
    "BUCKET_LENGTH",
    "DEFAULT_WINDOW",
    "GROUPS",
    "MAX_BUCKETS",
    "STATUS_FILTERS",
    "WINDOWS",
    "BudgetStatus",
    "TelemetrySummary",
    "UsageFilters",
    "UsageHistory",
    "audit_entry_list",
    "budget_get",
    "budget_list",
    "budget_status",
    "percentile",
    "price_entry",
    "price_list",
    "price_override_get",
    "request_log_page",
    "telemetry_summary",
    "usage_connection_history",
    "usage_history",
    "usage_log_page",
    "usage_records",
    "usage_spent",
]
