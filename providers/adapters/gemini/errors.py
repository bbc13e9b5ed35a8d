"""Gemini error bodies: `{"error": {"code", "message", "status", "details": [...]}}`.

A 429 carries its wait in a `google.rpc.RetryInfo` detail (`"retryDelay": "20s"`), not in a
Retry-After header. An invalid API key is a 400 with an `ErrorInfo` reason API_KEY_INVALID:
the connection's credential is wrong, not the client's request, so it is reported as a 401
and another connection may be tried.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from providers.adapters.base import ProviderError, is_retryable, parse_retry_after

_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
# 400s that depend on the account (key, region, billing), not on the request.
_ACCOUNT_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "BILLING_DISABLED"})


def _error_object(body: bytes) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(obj, list) and obj:  # the JSON-array stream wraps errors in a list
        obj = obj[0]
    if isinstance(obj, dict) and isinstance(obj.get("error"), dict):
        return obj["error"]
    return None


def _details(error: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    details = error.get("details")
    if not isinstance(details, list):
        return []
    return [d for d in details if isinstance(d, dict) and str(d.get("@type", "")).endswith(kind)]


def retry_delay(error: dict[str, Any]) -> float | None:
    for detail in _details(error, "google.rpc.RetryInfo"):
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and (match := _DELAY.match(delay)):
            return float(match.group(1))
        if isinstance(delay, dict):  # the proto form {"seconds": 20, "nanos": 0}
            return float(delay.get("seconds") or 0) + float(delay.get("nanos") or 0) / 1e9
    return None


def _reasons(error: dict[str, Any]) -> set[str]:
    return {str(d.get("reason")) for d in _details(error, "google.rpc.ErrorInfo")}


def provider_error(status: int, headers: dict[str, str], body: bytes) -> ProviderError:
    error = _error_object(body)
    if error is None:
        text = body.decode("utf-8", "replace").strip()[:500] or "empty response body"
        return ProviderError(status, text, retryable=is_retryable(status), retry_after=parse_retry_after(headers, text))
    message = str(error.get("message") or f"HTTP {status}")
    code = error.get("status") if isinstance(error.get("status"), str) else None
    retryable = is_retryable(status)
    if status == 400 and _reasons(error) & _ACCOUNT_REASONS:
        status, retryable = 401, True
    elif code == "FAILED_PRECONDITION":  # e.g. "User location is not supported": another account may work
        retryable = True
    delay = retry_delay(error)
    if delay is None:
        delay = parse_retry_after(headers, message)
    return ProviderError(status, message, retryable=retryable, retry_after=delay, code=code)


def stream_error(obj: dict[str, Any]) -> ProviderError:
    """An error event inside a stream (before the first byte it still lets the router fall back)."""
    error = obj.get("error")
    error = error if isinstance(error, dict) else {"message": str(error)}
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    return provider_error(status, {}, orjson.dumps({"error": error}))
