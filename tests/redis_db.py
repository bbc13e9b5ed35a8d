"""A Redis database of its own for each pytest-xdist worker, for the tests that flush one.

The suite runs in two processes (`pytest -n 2`). Most Redis keys are safe to share: every
worker has its own test database, hence its own key namespace. A few tests flush a whole
Redis database before and after they run (counters, cross-process limits, cache,
idempotency, telemetry); two workers flushing the same one would wipe each other's state in
the middle of a test. Each worker gets its own (tests within a worker run one at a time).
"""

from __future__ import annotations

import os

# Databases the suite leaves to others: 0 (default), 2 and 13 (tests that delete only their
# namespace's keys), 9 and 15 (the main REDIS_URL of local and CI PostgreSQL + Redis runs).
_FLUSHABLE = (1, 3, 4, 5, 6, 7, 8, 10, 11, 12, 14)


def flushable_redis_url() -> str:
    """redis://127.0.0.1:6379/<n>, one n per xdist worker (gw0, gw1, ...; no xdist: gw0)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) if worker.isdigit() else 0
    return f"redis://127.0.0.1:6379/{_FLUSHABLE[index % len(_FLUSHABLE)]}"
