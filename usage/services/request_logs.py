"""Request log rows: a record's captured headers and bodies, scrubbed of secrets.

Runs in the batch writer (the recorder's thread or the stream consumer), never on the
event loop: scrubbing a 64 KiB body costs about a millisecond.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..redaction import REDACTED, text_redact

if TYPE_CHECKING:
    from gateway.recorder import Record

# Dropped at capture already (gateway.usage_capture.SECRET_HEADERS); here too, for entries
# written by another version.
_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"}
)


def _headers(headers: Any, secrets: Iterable[str]) -> dict[str, str]:
    if not isinstance(headers, dict):
        return {}
    clean = {
        str(name): REDACTED if str(name).lower() in _SECRET_HEADERS else str(value) for name, value in headers.items()
    }
    joined = "\n".join(clean.values())
    if text_redact(joined, secrets=secrets) == joined:  # the usual case: one scan for all values
        return clean
    return {name: text_redact(value, secrets=secrets) for name, value in clean.items()}


def request_log_row(
    record: Record, usage_row: dict[str, Any], *, secrets: tuple[str, ...], no_log: bool
) -> dict[str, Any]:
    """Column values of the RequestLog of `record` (whose UsageRecord columns are `usage_row`)."""
    captured = record.body_log if isinstance(record.body_log, dict) else record.body_log.as_dict()
    logged = bool(captured) and not no_log
    return dict(
        created_at=usage_row["created_at"],
        request_id=record.request_id,
        endpoint=record.endpoint,
        client_format=record.client_format,
        api_key_id=record.api_key_id,
        provider=record.provider,
        model=record.model,
        connection_id=record.connection_id,
        status_code=record.status_code,
        stream=record.stream,
        latency_ms=usage_row["latency_ms"],
        bodies_logged=logged,
        request_headers=_headers(captured.get("headers"), secrets) if logged else None,
        request_body=text_redact(str(captured.get("requestBody") or ""), secrets=secrets) if logged else "",
        response_body=text_redact(str(captured.get("responseBody") or ""), secrets=secrets) if logged else "",
        request_truncated=bool(captured.get("requestTruncated")) if logged else False,
        response_truncated=bool(captured.get("responseTruncated")) if logged else False,
    )
