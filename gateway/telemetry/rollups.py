"""The hourly roll-up inside the gateway process, for deployments without Celery beat.

Embedded mode (no REDIS_URL) runs no beat, so each gateway process starts this daemon
thread (ROLLUP_IN_GATEWAY, default: on without Redis). A non-blocking file lock under
DATA_DIR lets one process at a time do the work; the roll-up recomputes whole hours, so a
run by two processes one after the other is harmless anyway. First run a minute after
start-up (catching up after downtime), then every hour at minute 4, like the beat schedule.
Each run also does the rest of beat's maintenance, so that an embedded install needs no cron:
roll-ups older than ROLLUP_RETENTION_DAYS, usage records and request logs older than
USAGE_RETENTION_DAYS (in batches) and expired response-cache rows are deleted.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger(__name__)
FIRST_RUN_DELAY = 60.0
MINUTE_OF_HOUR = 4

_started = False
_start_lock = threading.Lock()


def start_rollup_thread() -> bool:
    """Start the thread once per process when configured; whether it runs."""
    global _started
    if not settings.ROLLUP_IN_GATEWAY:
        return False
    with _start_lock:
        if not _started:
            _started = True
            threading.Thread(target=_run, name="omniroute-rollup", daemon=True).start()
    return True


def seconds_to_next_run(now: float) -> float:
    into_hour = now % 3600
    target = MINUTE_OF_HOUR * 60
    return (target - into_hour) % 3600 or 3600.0


def run_once() -> int | None:
    """One roll-up and the periodic deletions if no other process holds the lock; hours
    computed, or None if skipped."""
    from gateway.cache_db import purge_expired
    from usage.services import usage_purge, usage_rollup, usage_rollup_purge

    with open(Path(settings.DATA_DIR) / "rollup.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        try:
            hours = usage_rollup()
            usage_rollup_purge(older_than_days=settings.ROLLUP_RETENTION_DAYS)
            usage_purge(older_than_days=settings.USAGE_RETENTION_DAYS)
            purge_expired()
            return hours
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            close_old_connections()


def _run() -> None:
    time.sleep(FIRST_RUN_DELAY)
    while True:
        try:
            run_once()
        except Exception:
            log.exception("The hourly usage roll-up failed; retrying at the next hour")
        time.sleep(seconds_to_next_run(time.time()))
