"""Where the gateway processes' telemetry adds up: Redis, or files under DATA_DIR.

- `RedisSink` (REDIS_URL set): every process adds its increments to shared hashes once a
  second in one pipeline (HINCRBYFLOAT / HINCRBY): `omniroute:metrics:<ns>:counters`
  (cumulative, survives process restarts), `...:live:<minute>` (per-minute latency
  histograms, expire after LIVE_KEEP_MINUTES) and `...:procs` (heartbeats).
- `FileSink` (no Redis, single host): each process rewrites `DATA_DIR/metrics/<ns>/<pid>.json`
  with its cumulative totals once a second (atomic rename). Readers add up every file. When
  a process starts it folds the files of dead processes (and a stale file of its own pid)
  into `dead.json` under a file lock, so counters never go down (prometheus_client's
  multiprocess mode, without its per-series mmap files).

`<ns>` is the state namespace (gateway.state.state_namespace): processes on one database
are one deployment.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import orjson
from django.conf import settings

from .collector import LiveKey, SeriesKey

LIVE_KEEP_MINUTES = 130
PROCESS_SEEN_SECONDS = 15
Live = dict[tuple[str, str], dict[int, int]]  # (provider, kind) -> {bucket: count}


def series_field(key: SeriesKey) -> str:
    return orjson.dumps([key[0], key[1]]).decode()


def series_key(field: str | bytes) -> SeriesKey:
    name, labels = orjson.loads(field)
    return name, tuple((k, v) for k, v in labels)


def live_field(provider: str, kind: str, bucket: int) -> str:
    return orjson.dumps([provider, kind, bucket]).decode()


def add_live(out: Live, field: str | bytes, count: int) -> None:
    provider, kind, bucket = orjson.loads(field)
    counts = out.setdefault((provider, kind), {})
    counts[bucket] = counts.get(bucket, 0) + count


class Sink(Protocol):
    def push(self, counters: dict[SeriesKey, float], live: dict[LiveKey, int]) -> None: ...
    def counters(self) -> dict[SeriesKey, float]: ...
    def live(self, first_minute: int, last_minute: int) -> Live: ...
    def processes(self) -> int: ...
    def clear(self) -> None: ...
    def leave(self) -> None: ...


class RedisSink:
    def __init__(self, namespace: str) -> None:
        self.prefix = f"omniroute:metrics:{namespace}:"
        self.process = f"{socket.gethostname()}:{os.getpid()}"
        self.started = time.time()

    @property
    def redis(self) -> Any:
        from gateway.redis_client import get_sync_redis

        return get_sync_redis()

    def push(self, counters: dict[SeriesKey, float], live: dict[LiveKey, int]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        for key, value in counters.items():
            pipe.hincrbyfloat(self.prefix + "counters", series_field(key), value)
        minutes = set()
        for (minute, provider, kind, bucket), count in live.items():
            pipe.hincrby(f"{self.prefix}live:{minute}", live_field(provider, kind, bucket), count)
            minutes.add(minute)
        for minute in minutes:
            pipe.expire(f"{self.prefix}live:{minute}", LIVE_KEEP_MINUTES * 60)
        pipe.hset(self.prefix + "procs", self.process, orjson.dumps({"seen": time.time(), "started": self.started}))
        pipe.execute()

    def leave(self) -> None:
        """Graceful shutdown: no longer counted as a live process (the counters stay)."""
        self.redis.hdel(self.prefix + "procs", self.process)

    def clear(self) -> None:
        """Forget the deployment's telemetry (tests)."""
        keys = list(self.redis.scan_iter(match=self.prefix + "*"))
        if keys:
            self.redis.delete(*keys)

    def counters(self) -> dict[SeriesKey, float]:
        return {series_key(k): float(v) for k, v in self.redis.hgetall(self.prefix + "counters").items()}

    def live(self, first_minute: int, last_minute: int) -> Live:
        pipe = self.redis.pipeline(transaction=False)
        for minute in range(first_minute, last_minute + 1):
            pipe.hgetall(f"{self.prefix}live:{minute}")
        out: Live = {}
        for fields in pipe.execute():
            for field, count in fields.items():
                add_live(out, field, int(count))
        return out

    def processes(self) -> int:
        now = time.time()
        seen = self.redis.hgetall(self.prefix + "procs")
        gone = [name for name, raw in seen.items() if now - orjson.loads(raw)["seen"] > 86400]
        if gone:
            self.redis.hdel(self.prefix + "procs", *gone)
        return sum(1 for raw in seen.values() if now - orjson.loads(raw)["seen"] <= PROCESS_SEEN_SECONDS)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _empty() -> dict[str, Any]:
    return {"counters": {}, "live": {}}


def _fold(total: dict[str, Any], more: dict[str, Any], oldest_minute: int) -> None:
    """Add the totals of a metrics file into `total` (the same JSON shape)."""
    counters = total.setdefault("counters", {})
    for field, value in more.get("counters", {}).items():
        counters[field] = counters.get(field, 0) + value
    live = total.setdefault("live", {})
    for minute, fields in more.get("live", {}).items():
        if int(minute) < oldest_minute:
            continue
        into = live.setdefault(minute, {})
        for field, count in fields.items():
            into[field] = into.get(field, 0) + count


class FileSink:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pid = os.getpid()
        self.path = self.dir / f"{self.pid}.json"
        self.totals = _empty()
        self._totals_lock = threading.Lock()  # the publishing thread folds, readers copy
        self._fold_dead()

    @contextmanager
    def _locked(self, *, shared: bool = False) -> Iterator[None]:
        """The directory's lock: exclusive to fold files into dead.json, shared to read them all
        (a reader never sees a process both in its own file and in dead.json, or in neither)."""
        with open(self.dir / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _files(self) -> Iterator[tuple[int | None, Path]]:
        for path in self.dir.glob("*.json"):
            yield (int(path.stem) if path.stem.isdigit() else None), path

    def _fold_dead(self) -> None:
        oldest = int(time.time() // 60) - LIVE_KEEP_MINUTES
        with self._locked():
            dead_path = self.dir / "dead.json"
            dead = _read(dead_path)
            folded = [p for pid, p in self._files() if pid is not None and (pid == self.pid or not _alive(pid))]
            if not folded:
                return
            for path in folded:
                _fold(dead, _read(path), oldest)
            _write(dead_path, orjson.dumps(dead))
            for path in folded:
                path.unlink(missing_ok=True)

    def push(self, counters: dict[SeriesKey, float], live: dict[LiveKey, int]) -> None:
        oldest = int(time.time() // 60) - LIVE_KEEP_MINUTES
        more: dict[str, Any] = {"counters": {series_field(k): v for k, v in counters.items()}, "live": {}}
        for (minute, provider, kind, bucket), count in live.items():
            more["live"].setdefault(str(minute), {})[live_field(provider, kind, bucket)] = count
        with self._totals_lock:
            _fold(self.totals, more, oldest)
            minutes = self.totals["live"]
            for minute in [m for m in minutes if int(m) < oldest]:
                del minutes[minute]
            data = orjson.dumps({"pid": self.pid, **self.totals})
        _write(self.path, data)

    def _all(self) -> list[dict[str, Any]]:
        with self._totals_lock:
            everything = [orjson.loads(orjson.dumps(self.totals))]
        with self._locked(shared=True):
            everything += [_read(path) for pid, path in self._files() if pid != self.pid]
        return everything

    def counters(self) -> dict[SeriesKey, float]:
        out: dict[SeriesKey, float] = {}
        for totals in self._all():
            for field, value in totals.get("counters", {}).items():
                key = series_key(field)
                out[key] = out.get(key, 0.0) + value
        return out

    def live(self, first_minute: int, last_minute: int) -> Live:
        out: Live = {}
        for totals in self._all():
            for minute, fields in totals.get("live", {}).items():
                if first_minute <= int(minute) <= last_minute:
                    for field, count in fields.items():
                        add_live(out, field, count)
        return out

    def leave(self) -> None:
        """Nothing to do: a dead pid is not counted, its file stays (its counters still count)."""

    def clear(self) -> None:
        """Forget the deployment's telemetry (tests)."""
        with self._totals_lock:
            self.totals = _empty()
        with self._locked():
            for _, path in self._files():
                path.unlink(missing_ok=True)

    def processes(self) -> int:
        return 1 + sum(1 for pid, _ in self._files() if pid is not None and pid != self.pid and _alive(pid))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return _empty()
    return data if isinstance(data, dict) else _empty()


def _write(path: Path, data: bytes) -> None:
    """Atomically: readers see the old file or the new one, never a half-written one."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def make_sink() -> Sink:
    from gateway.state import state_namespace

    namespace = state_namespace()
    if settings.REDIS_URL:
        return RedisSink(namespace)
    return FileSink(Path(settings.DATA_DIR) / "metrics" / namespace)
