"""The per-process metrics files of deployments without Redis: counts of dead processes are
kept (folded into dead.json by the next process to start), live minutes expire."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from gateway.telemetry.sinks import LIVE_KEEP_MINUTES, FileSink, live_field, series_field

REQUESTS = ("omniroute_requests_total", (("provider", "openai"), ("model", "m"), ("status", "200")))


def dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_dead_processes_counts_are_kept_and_old_minutes_dropped(tmp_path: Path) -> None:
    now_minute = int(time.time() // 60)
    old, recent = now_minute - LIVE_KEEP_MINUTES - 5, now_minute - 3
    dead = {
        "pid": dead_pid(),
        "counters": {series_field(REQUESTS): 5},
        "live": {str(old): {live_field("openai", "lat", 60): 1}, str(recent): {live_field("openai", "lat", 60): 2}},
    }
    (tmp_path / f"{dead['pid']}.json").write_bytes(orjson.dumps(dead))
    # A stale file of this very pid: left by an earlier process that had the same pid.
    (tmp_path / f"{os.getpid()}.json").write_bytes(orjson.dumps({"counters": {series_field(REQUESTS): 2}}))

    sink = FileSink(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["dead.json"]
    assert sink.counters() == {REQUESTS: 7.0}
    sink.push({REQUESTS: 1.0}, {(now_minute, "openai", "lat", 61): 4})
    assert sink.counters() == {REQUESTS: 8.0}
    assert sink.live(now_minute - 10, now_minute) == {("openai", "lat"): {60: 2, 61: 4}}
    assert sink.live(old, old) == {}  # older than LIVE_KEEP_MINUTES: dropped when folded
    assert sink.processes() == 1

    later = FileSink(tmp_path)  # the same pid starting again: the first's file is folded in
    assert later.counters() == {REQUESTS: 8.0}
