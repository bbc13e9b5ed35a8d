"""Load generators: wrk for throughput and latency, a small aiohttp client for streaming TTFB.

wrk cannot see when the first byte of a streamed answer arrives, so time-to-first-byte is
measured by `stream_probe`: a few concurrent requests at a time, each timing the first body
bytes and the end of the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .procs import log

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk" / "chat.lua"


def ensure_wrk() -> str:
    """The path of wrk, installed with apt-get when it is missing."""
    path = shutil.which("wrk")
    if path:
        return path
    log("wrk is not installed: apt-get install -y wrk")
    apt = ["apt-get"] if _is_root() else ["sudo", "apt-get"]
    subprocess.run([*apt, "update", "-qq"], check=True)
    subprocess.run([*apt, "install", "-y", "-qq", "wrk"], check=True)
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is still missing after apt-get install; install it and run again")
    return path


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


@dataclass
class WrkResult:
    connections: int
    duration_s: float
    requests: int
    rps: float
    errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "error_count": self.error_count}


def run_wrk(
    url: str,
    *,
    body_file: Path,
    api_key: str | None,
    connections: int,
    duration: float,
    threads: int = 1,
    timeout_s: int = 30,
) -> WrkResult:
    """One wrk run; every request is the same POST from `body_file`."""
    cmd = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "BENCH_BODY_FILE": str(body_file), "BENCH_API_KEY": api_key or ""}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + timeout_s + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    seconds = data["duration_us"] / 1e6
    lat = data["latency_us"]
    return WrkResult(
        connections=connections,
        duration_s=round(seconds, 3),
        requests=data["requests"],
        rps=round(data["requests"] / seconds, 1) if seconds else 0.0,
        errors={k: int(v) for k, v in data["errors"].items()},
        latency_ms={k: round(float(lat[k]) / 1000, 3) for k in ("p50", "p90", "p99", "p999", "mean", "max")},
    )


# --- streaming: time to first byte ----------------------------------------------------------


@dataclass
class StreamResult:
    concurrency: int
    requests: int
    errors: int
    ttfb_ms: dict[str, float]
    total_ms: dict[str, float]
    chunks_per_response: float
    error_samples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (what wrk reports too); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "mean": round(statistics.fmean(values), 3) if values else 0.0,
        "max": round(max(values), 3) if values else 0.0,
    }


async def _stream_once(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[float, float, int]:
    """(ttfb ms, total ms, SSE events) of one streamed request; raises on a bad answer."""
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as resp:
        if resp.status != 200:
            text = (await resp.read())[:200].decode(errors="replace")
            raise RuntimeError(f"HTTP {resp.status}: {text}")
        first = await resp.content.readany()
        ttfb = time.perf_counter() - started
        if not first:
            raise RuntimeError("empty stream")
        tail = first
        events = first.count(b"\n\n")
        async for chunk in resp.content.iter_any():
            events += chunk.count(b"\n\n")
            tail = (tail + chunk)[-64:]
        total = time.perf_counter() - started
    if b"[DONE]" not in tail:
        raise RuntimeError("stream ended without data: [DONE]")
    return ttfb * 1000, total * 1000, events


async def _stream_probe(
    url: str, body: bytes, api_key: str | None, *, concurrency: int, requests: int, max_seconds: float, warmup: int
) -> StreamResult:
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    ttfbs: list[float] = []
    totals: list[float] = []
    events: list[int] = []
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
        for _ in range(warmup):  # open the connections, fill the caches
            with contextlib.suppress(Exception):  # counted in the measured part if it persists
                await _stream_once(session, url, body, headers)
        deadline = time.monotonic() + max_seconds
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                try:
                    ttfb, total, n = await _stream_once(session, url, body, headers)
                except Exception as exc:
                    errors.append(f"{exc.__class__.__name__}: {exc}"[:200])
                    continue
                ttfbs.append(ttfb)
                totals.append(total)
                events.append(n)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return StreamResult(
        concurrency=concurrency,
        requests=len(ttfbs) + len(errors),
        errors=len(errors),
        ttfb_ms=_summary(ttfbs),
        total_ms=_summary(totals),
        chunks_per_response=round(statistics.fmean(events), 1) if events else 0.0,
        error_samples=sorted(set(errors))[:5],
    )


def stream_probe(
    url: str,
    body: bytes,
    api_key: str | None,
    *,
    concurrency: int = 1,
    requests: int = 1000,
    max_seconds: float = 10.0,
    warmup: int = 20,
) -> StreamResult:
    """Streamed requests at low concurrency: up to `requests`, for at most `max_seconds`."""
    probe = _stream_probe(
        url, body, api_key, concurrency=concurrency, requests=requests, max_seconds=max_seconds, warmup=warmup
    )
    try:
        import uvloop
    except ImportError:
        return asyncio.run(probe)
    return uvloop.run(probe)
