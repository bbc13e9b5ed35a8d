"""Writes of the usage app, one module per concern; import them from here."""

from .audit import audit_entry_create, audit_login, audit_login_failed, audit_model_changed
from .budgets import MAX_BUDGET, budget_delete, budget_set, budget_values_clean
from .pricing import (
    PRICE_OVERRIDE_FIELDS,
    OverrideOutcome,
    price_override_delete,
    price_override_set,
    price_value_clean,
)
from .records import usage_record_batch
from .retention import PURGE_BATCH_SIZE, usage_purge
from .rollups import rollup_covered_until, usage_rollup, usage_rollup_hour, usage_rollup_purge
from .stream import usage_stream_consume

__all__ = [
    "MAX_BUDGET",
    "PRICE_OVERRIDE_FIELDS",
    "PURGE_BATCH_SIZE",
    "OverrideOutcome",
    "audit_entry_create",
    "audit_login",
    "audit_login_failed",
    "audit_model_changed",
    "budget_delete",
    "budget_set",
    "budget_values_clean",
    "price_override_delete",
    "price_override_set",
    "price_value_clean",
    "rollup_covered_until",
    "usage_purge",
    "usage_record_batch",
    "usage_rollup",
    "usage_rollup_hour",
    "usage_rollup_purge",
    "usage_stream_consume",
]
