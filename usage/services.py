from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .models import UsageRecord

if TYPE_CHECKING:
    from gateway.recorder import Record


def usage_record_batch(*, records: Sequence[Record]) -> int:
    """Write a batch of gateway records; returns how many rows were created."""
    rows = [
        UsageRecord(
            created_at=datetime.fromtimestamp(r.created_at, tz=UTC),
            request_id=r.request_id,
            endpoint=r.endpoint,
            api_key_id=r.api_key_id,
            provider=r.provider,
            model=r.model,
            connection_id=r.connection_id,
            status_code=r.status_code,
            stream=r.stream,
            prompt_tokens=r.prompt_tokens,
            completion_tokens=r.completion_tokens,
            cached_tokens=r.cached_tokens,
            reasoning_tokens=r.reasoning_tokens,
            latency_ms=round(r.latency_ms, 3),
            ttfb_ms=None if r.ttfb_ms is None else round(r.ttfb_ms, 3),
            error=r.error[:2000],
        )
        for r in records
    ]
    UsageRecord.objects.bulk_create(rows, batch_size=500)
    return len(rows)
