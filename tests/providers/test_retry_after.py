from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from providers.adapters.base import parse_retry_after


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"retry-after": "7"}, "", 7.0),
        ({"retry-after": "1.5"}, "", 1.5),
        ({"retry-after-ms": "2500"}, "", 2.5),
        ({}, "Rate limit reached. Please retry after 20s.", 20.0),
        ({}, "Please try again in 1.5 seconds", 1.5),
        ({}, "try again in 2 minutes", 120.0),
        ({}, "retry in 300ms", 0.3),
        ({}, "quota exceeded", None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], body: str, expected: float | None) -> None:
    assert parse_retry_after(headers, body) == expected


def test_http_date() -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    value = parse_retry_after({"retry-after": format_datetime(when, usegmt=True)})
    assert value is not None and 25 <= value <= 31
