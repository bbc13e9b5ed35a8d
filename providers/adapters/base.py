"""The adapter contract: one adapter per provider wire format.

An adapter turns the gateway's request into the provider's HTTP request and reads the
provider's answers (usage, errors, retry hints). It never retries or falls back: that loop
lives once, in the gateway router.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from providers.catalog import ProviderInfo


@dataclass(frozen=True, slots=True)
class Credential:
    """What an adapter needs of a connection: decrypted key and effective base URL."""

    connection_id: int | None
    provider: ProviderInfo
    api_key: str
    base_url: str
    data: dict[str, Any] = field(default_factory=dict)
    # Auth and fixed headers, computed once when the snapshot is built.
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls, *, connection_id: int | None, provider: ProviderInfo, api_key: str, base_url: str, data: dict[str, Any]
    ) -> Credential:
        return cls(
            connection_id=connection_id,
            provider=provider,
            api_key=api_key,
            base_url=base_url.rstrip("/"),
            data=data,
            headers=auth_headers(provider, api_key),
        )


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0  # Anthropic's cache_creation_input_tokens (priced apart)


class ProviderError(Exception):
    """An upstream failure, with what the router needs to decide on fallback."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code


# Statuses after which another connection or provider may well succeed.
RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529})
# Provider-scoped 4xx: the account, not the request, is the problem.
ACCOUNT_STATUSES = frozenset({401, 402, 403})
_RETRY_HINT = re.compile(
    r"(?:retry|try again)\D{0,20}?(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|sec|seconds?|m|min|minutes?)\b", re.I
)


def auth_headers(provider: ProviderInfo, api_key: str) -> dict[str, str]:
    headers = dict(provider.headers)
    if not api_key or provider.auth == "none":
        return headers
    if provider.auth == "bearer":
        headers["Authorization"] = f"Bearer {api_key}"
    elif provider.auth == "x-api-key":
        headers["x-api-key"] = api_key
    elif provider.auth == "x-goog-api-key":
        headers["x-goog-api-key"] = api_key
    elif provider.auth == "token":
        headers["Authorization"] = f"Token {api_key}"
    return headers


def parse_retry_after(headers: dict[str, str], body_text: str = "") -> float | None:
    """Seconds to wait, from Retry-After (seconds or HTTP date), rate-limit reset headers or a body hint."""
    raw = headers.get("retry-after")
    if raw:
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            try:
                from datetime import UTC, datetime

                return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                pass
    retry_ms = headers.get("retry-after-ms")
    if retry_ms:
        try:
            return max(0.0, float(retry_ms) / 1000)
        except ValueError:
            pass
    match = _RETRY_HINT.search(body_text) if body_text else None
    if match:
        value, unit = float(match.group(1)), match.group(2).lower()
        if unit.startswith("ms") or unit.startswith("milli"):
            return value / 1000
        if unit.startswith("m"):
            return value * 60
        return value
    return None


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def _duration_seconds(value: str) -> float | None:
    """`1s`, `6m0s`, `20ms`, `1h2m3.5s` (OpenAI's reset format) or plain seconds."""
    value = value.strip().lower()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(number) * scale[unit] for number, unit in parts)


def ratelimit_reset(headers: dict[str, str]) -> float | None:
    """Seconds until an exhausted OpenAI-style limit resets, for a 429 without Retry-After:
    `x-ratelimit-reset-requests` / `-tokens` (durations; the limits whose `-remaining` is 0
    are the ones that were hit) or `x-ratelimit-reset` (seconds, or a Unix time in s or ms)."""
    exhausted: list[float] = []
    others: list[float] = []
    for kind in ("requests", "tokens"):
        raw = headers.get(f"x-ratelimit-reset-{kind}")
        seconds = _duration_seconds(raw) if raw else None
        if seconds is not None:
            remaining = headers.get(f"x-ratelimit-remaining-{kind}", "").strip()
            (exhausted if remaining == "0" else others).append(seconds)
    if exhausted:
        return max(exhausted)
    if others:
        return min(others)
    raw = headers.get("x-ratelimit-reset", "").strip()
    try:
        value = float(raw)
    except ValueError:
        return None
    if value > 1e12:  # Unix time in milliseconds
        return max(0.0, value / 1000 - time.time())
    if value > 1e9:  # Unix time in seconds
        return max(0.0, value - time.time())
    return max(0.0, value)


def error_message_from_body(body: bytes) -> tuple[str, str | None]:
    """The provider's own message and code from an error body of any common shape."""
    text = body.decode("utf-8", "replace").strip()
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (text[:500] or "empty response body"), None
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            message = err.get("message") or err.get("detail") or text[:500]
            code = err.get("code") or err.get("type")
            return str(message), (str(code) if code is not None else None)
        if isinstance(err, str):
            return err, None
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):  # Gemini wraps errors in a list
        return error_message_from_body(orjson.dumps(obj[0]))
    return text[:500], None


def is_retryable(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status in ACCOUNT_STATUSES or status >= 500


class StreamRelay:
    """Reads a provider stream and yields the client's bytes; notes usage on the way."""

    usage: Usage | None = None

    def feed(self, data: bytes) -> bytes:
        raise NotImplementedError

    def finish(self) -> bytes:
        """Bytes that close the client's stream after the provider's stream ended normally."""
        raise NotImplementedError

    def failure(self, message: str) -> bytes | None:
        """The event that ends the client's stream after a mid-stream failure, when it depends on
        what was relayed so far; None: the client format's stateless `stream_error`."""
        return None


class StreamDecoder:
    """Turns a provider's stream bytes into canonical (OpenAI chunk) dicts."""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        raise NotImplementedError

    def finish(self) -> list[dict[str, Any]]:
        """Chunks still owed when the provider's stream ends (e.g. a final usage chunk)."""
        return []


class ChatAdapter:
    """Contract of a chat adapter. One instance per wire format, stateless.

    - `chat_request`: canonical (OpenAI chat) request -> provider HTTP request.
    - `passthrough_request`: a request already in this provider's own format (the client
      speaks it too) -> provider HTTP request, body otherwise untouched.
    - `to_canonical_response` / `stream_decoder`: provider answers -> canonical.
    - `passthrough_relay`: provider stream -> the same bytes for a client of this format,
      reading usage on the way.
    - `error_from_response`: status, message and retry hints of a failed call.
    """

    format: str = ""

    def chat_request(self, cred: Credential, model_id: str, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        raise NotImplementedError

    def passthrough_request(
        self, cred: Credential, model_id: str, payload: dict[str, Any], *, stream: bool
    ) -> UpstreamRequest:
        raise NotImplementedError

    def to_canonical_response(self, obj: dict[str, Any], *, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def stream_decoder(self, *, model: str) -> StreamDecoder:
        raise NotImplementedError

    def passthrough_relay(self, *, client_wants_usage: bool) -> StreamRelay:
        raise NotImplementedError

    def usage_from_response(self, obj: dict[str, Any]) -> Usage:
        """Usage of a native (non-stream) response body."""
        raise NotImplementedError

    def response_error(self, obj: dict[str, Any]) -> str | None:
        """A 200 answer that is really an error: its message, else None."""
        return None

    def rate_limit_reset(self, headers: dict[str, str]) -> float | None:
        """Seconds until the provider's exhausted limit resets, from its own headers."""
        return ratelimit_reset(headers)

    def error_from_response(self, status: int, headers: dict[str, str], body: bytes) -> ProviderError:
        message, code = error_message_from_body(body)
        retry_after = parse_retry_after(headers, message)
        if retry_after is None and status == 429:
            retry_after = self.rate_limit_reset(headers)
        return ProviderError(status, message, retryable=is_retryable(status), retry_after=retry_after, code=code)

    def models_url(self, cred: Credential) -> str:
        return f"{cred.base_url}/models"
