"""Budgets and per-key rate limits on the /v1 request path (docs/API.md §8).

Two hooks: `admit` after authentication (before routing) and `settle` when the request has
finished. Keys without limits or budget (`KeyEntry.limited` false) cost one attribute read.

Counters are fixed windows named by key id and window:

- `r:<key>:<minute>` requests per minute and `q:<key>:<day>` requests per day, incremented
  at admission together with the check, atomically (one Lua script in Redis), so N
  processes sharing Redis admit exactly the limit between them; refused requests don't count;
- `t:<key>:<minute>` tokens (prompt + completion) of requests finished in that minute;
- `b:<key>:<period>` spend in cost units (1e-8 USD, the precision of usage costs) of
  the budget period, added when a request finishes. A missing budget counter is seeded once
  from the usage records of the period (in a worker thread), so a restart or an emptied
  Redis does not forget what was spent.

Checks happen before a request and its cost is added after it, so concurrent requests can
overspend a budget (or a token limit) by at most what they cost themselves.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

from .budget_clock import Period, current_period
from .counters import Check, LocalCounters, RedisCounters, counters
from .errors import GatewayError
from .recorder import Record
from .snapshot import KeyEntry, Snapshot

log = logging.getLogger(__name__)
COST_UNITS_PER_USD = 10**8
_MINUTE = 60.0
_PERIOD_WORDS = {"daily": "today", "weekly": "this week", "monthly": "this month"}


def usd_to_units(value: Decimal) -> int:
    return int((value * COST_UNITS_PER_USD).to_integral_value(rounding=ROUND_HALF_UP))


def units_to_usd(units: int) -> Decimal:
    return (Decimal(units) / COST_UNITS_PER_USD).quantize(Decimal("0.00000001"))


def _unavailable() -> GatewayError:
    return GatewayError(
        503, "The key's budget cannot be checked right now; try again", code="budget_unavailable", retry_after=1
    )


class LimitExceeded(GatewayError):
    """A 429 of the limiter: Retry-After plus the headers that say which limit."""

    def __init__(self, message: str, *, code: str, retry_after: float, extra: list[tuple[bytes, bytes]]) -> None:
        super().__init__(429, message, code=code, retry_after=max(1.0, retry_after))
        self.extra = extra

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [*super().headers(), *self.extra]


@dataclass(slots=True)
class _Admitted:
    entry: KeyEntry
    snapshot: Snapshot


# Requests admitted and not yet settled, by id(record): settle needs the key entry and the
# snapshot (prices) the request ran with.
_inflight: dict[int, _Admitted] = {}


def minute_window(now: float) -> tuple[int, float]:
    """The current minute (a UTC-aligned fixed window) and the seconds left in it."""
    minute = int(now // _MINUTE)
    return minute, (minute + 1) * _MINUTE - now


def budget_period(entry: KeyEntry, now: float | None = None) -> Period | None:
    return current_period(entry.budget.period, settings.BUDGET_TIMEZONE, now) if entry.budget else None


def budget_counter(key_id: int, period: Period) -> str:
    return f"b:{key_id}:{period.label}"


async def admit(entry: KeyEntry | None, snap: Snapshot, record: Record) -> None:
    """Refuse (429) a request of a key over a limit or budget; count it otherwise."""
    if entry is None or not entry.limited:
        return
    now = time.time()
    checks = _checks(entry, now)
    store = counters()
    for _ in range(3):
        refused = await store.admit(checks)
        if refused is None:
            _inflight[id(record)] = _Admitted(entry, snap)
            return
        check, value = refused
        if value is not None:
            raise _refusal(entry, check, value, now)
        await _seed(store, entry, check, now)
    raise _unavailable()


def _checks(entry: KeyEntry, now: float) -> list[Check]:
    minute, minute_left = minute_window(now)
    checks: list[Check] = []
    if entry.budget is not None:
        period = current_period(entry.budget.period, settings.BUDGET_TIMEZONE, now)
        checks.append(
            Check(
                "budget",
                budget_counter(entry.id, period),
                entry.budget.limit_units,
                period.seconds_left(now),
                seed=True,
            )
        )
    if entry.max_tokens_per_minute is not None:
        checks.append(Check("tpm", f"t:{entry.id}:{minute}", entry.max_tokens_per_minute, minute_left))
    if entry.max_requests_per_minute is not None:
        checks.append(Check("rpm", f"r:{entry.id}:{minute}", entry.max_requests_per_minute, minute_left, count=True))
    if entry.max_requests_per_day is not None:
        day = current_period("daily", settings.BUDGET_TIMEZONE, now)
        checks.append(
            Check("rpd", f"q:{entry.id}:{day.label}", entry.max_requests_per_day, day.seconds_left(now), count=True)
        )
    return checks


def _refusal(entry: KeyEntry, check: Check, value: int, now: float) -> LimitExceeded:
    wait = check.seconds_left
    if check.kind == "budget":
        assert entry.budget is not None
        period = current_period(entry.budget.period, settings.BUDGET_TIMEZONE, now)
        limit = entry.budget.limit_usd.normalize()
        message = (
            f"API key '{entry.name}' has used its {entry.budget.period} budget of {limit:f} USD"
            f" (spent {units_to_usd(value).normalize():f} USD {_PERIOD_WORDS[entry.budget.period]});"
            f" it resets at {period.end.isoformat()}"
        )
        extra = [
            (b"x-omniroute-budget-limit", f"{limit:f}".encode()),
            (b"x-omniroute-budget-remaining", b"0"),
            (b"x-omniroute-budget-resets-at", period.end.isoformat().encode()),
        ]
        return LimitExceeded(message, code="budget_exceeded", retry_after=wait, extra=extra)
    per, unit, kind = {
        "rpm": ("minute", "requests", b"requests"),
        "rpd": ("day", "requests", b"requests"),
        "tpm": ("minute", "tokens", b"tokens"),
    }[check.kind]
    seconds = max(1, math.ceil(wait))  # as Retry-After says
    message = f"API key '{entry.name}' reached its limit of {check.limit} {unit} per {per}; retry in {seconds} s"
    extra = [
        (b"x-ratelimit-limit-" + kind, str(check.limit).encode()),
        (b"x-ratelimit-remaining-" + kind, b"0"),
        (b"x-ratelimit-reset-" + kind, f"{seconds}s".encode()),
    ]
    return LimitExceeded(message, code="rate_limit_exceeded", retry_after=wait, extra=extra)


async def _seed(store: LocalCounters, entry: KeyEntry, check: Check, now: float) -> None:
    """Start a missing budget counter at what the usage records of the period cost."""
    from usage.selectors import usage_spent

    period = budget_period(entry, now)
    assert period is not None
    try:
        spent = await asyncio.to_thread(usage_spent, key_id=entry.id, since=period.start, until=period.end)
    except Exception:
        log.exception("Could not read what key %s spent this %s", entry.id, period.kind)
        raise _unavailable() from None
    await store.seed(check.name, usd_to_units(spent), check.seconds_left)


async def settle(record: Record) -> None:
    """Add a finished request's tokens and cost to its key's counters.

    Awaited by the request's own task after the response was sent (so the client does not
    wait, and a test that waits for the server to be idle sees the counters settled); a
    request that was not admitted by `admit` costs one dict lookup.
    """
    admitted = _inflight.pop(id(record), None)
    if admitted is None:
        return
    entry = admitted.entry
    tokens = record.prompt_tokens + record.completion_tokens
    if entry.max_tokens_per_minute is None:
        tokens = 0
    if tokens or entry.budget is not None:
        await _settle(admitted, record, tokens)


async def _settle(admitted: _Admitted, record: Record, tokens: int) -> None:
    entry = admitted.entry
    additions: list[tuple[str, int, float, bool]] = []  # (counter, amount, ttl, only if it exists)
    now = time.time()
    try:
        if tokens:
            minute, left = minute_window(now)
            additions.append((f"t:{entry.id}:{minute}", tokens, left, False))
        if entry.budget is not None:
            units = await _cost_units(admitted.snapshot, record)
            if units > 0:
                # The period the request started in: the one its usage record counts in.
                period = current_period(entry.budget.period, settings.BUDGET_TIMEZONE, record.created_at)
                additions.append((budget_counter(entry.id, period), units, period.seconds_left(now), True))
        if additions:
            await counters().add(additions)
    except Exception:  # after the response: log, never fail the request's task
        log.exception("Could not count the usage of key %s against its limits", entry.id)


async def _cost_units(snap: Snapshot, record: Record) -> int:
    from usage.pricing import cost_of, price_table, price_table_cached

    prices = price_table_cached(snap)
    if prices is None:  # a configuration change since the recorder last priced a batch
        prices = await asyncio.to_thread(price_table)
    return usd_to_units(cost_of(provider=record.provider, model=record.model, usage=record, prices=prices))


def spent_units(key_id: int, period: Period) -> int | None:
    """The budget counter's value (None: not started) — for the management API (sync)."""
    return counters().peek(budget_counter(key_id, period))


def limits_reset() -> None:
    """Forget every counter (tests): this process's and, with Redis, the shared ones."""
    store = counters()
    store.clear()
    if isinstance(store, RedisCounters):
        store.clear_sync()
