"""Reads of request logs: the same filters and pages as the usage log."""

from __future__ import annotations

from ..models import RequestLog
from .records import UsageFilters, filtered, page


def request_log_page(
    *, filters: UsageFilters, limit: int, before_id: int | None = None
) -> tuple[list[RequestLog], int | None]:
    """Up to `limit` request logs, newest first, below `before_id`; and the next page's id."""
    return page(filtered(RequestLog.objects.order_by(), filters), limit=limit, before_id=before_id)
