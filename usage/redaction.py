"""Keeping secrets out of what the usage app stores: error texts of usage records and the
values of audit entries.

Provider errors can echo a key (Gemini puts `?key=` in URLs, some providers quote the
`Authorization` header); the known keys of the configured connections are replaced
verbatim, and anything shaped like a key is replaced by pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
_MIN_SECRET_LENGTH = 8

# (pattern, replacement, triggers): a pattern can only match a text whose lower-cased form
# contains one of its triggers. Checking those substrings first makes clean text (most
# request and response bodies) cost a few microseconds instead of ~100 µs of regex scans.
_PATTERNS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    # ?key=…, &api_key=…, access_token=… in URLs and messages
    (
        re.compile(r"(?i)\b((?:api[_-]?)?key|access[_-]?token|token|secret)=[^&\s\"'#]+"),
        rf"\1={REDACTED}",
        ("key=", "token=", "secret="),
    ),
    # Authorization: Bearer …, x-api-key: …, "x-goog-api-key": "…"
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}", ("bearer", "basic")),
    (
        re.compile(r"(?i)\b(x-api-key|x-goog-api-key|api-key|authorization)([\"']?\s*[:=]\s*[\"']?)[^\s\"',;}]+"),
        rf"\1\2{REDACTED}",
        ("api-key", "authorization"),
    ),
    # OpenAI/Anthropic/OmniRoute (sk-…), Google (AIza…), GitHub (ghp_…), Groq (gsk_…), xAI (xai-…)
    (re.compile(r"\b(?:sk|xai)-[A-Za-z0-9_-]{12,}"), REDACTED, ("sk-", "xai-")),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), REDACTED, ("aiza",)),
    (re.compile(r"\b(?:gh[pousr]|gsk|nvapi)[_-][A-Za-z0-9_-]{16,}"), REDACTED, ("gh", "gsk", "nvapi")),
)
# JSON keys whose values are never stored in an audit entry.
_SECRET_KEY = re.compile(r"(?i)(secret|password|passwd|token|api[_-]?key|apikey|authorization|credential|private)")


def text_redact(text: str, *, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets or anything shaped like a key."""
    if not text:
        return text
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_LENGTH and secret in text:
            text = text.replace(secret, REDACTED)
    lowered = text.lower()
    for pattern, replacement, triggers in _PATTERNS:
        if any(t in lowered for t in triggers):
            text = pattern.sub(replacement, text)
    return text


def json_redact(value: Any) -> Any:
    """A JSON value whose secret-named keys are masked and whose strings are redacted."""
    if isinstance(value, dict):
        return {
            str(k): REDACTED if _SECRET_KEY.search(str(k)) and v not in (None, "") else json_redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [json_redact(item) for item in value]
    if isinstance(value, str):
        return text_redact(value)
    return value
