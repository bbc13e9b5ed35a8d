"""OmniRoute benchmark: the gateway against the direct upstream, a bare Python proxy and LiteLLM, in one run.

    make bench                                   # full run (about 5 minutes on 2 cores)
    make bench BENCH_ARGS=--quick                # smoke run: short, no 100k memory run, no LiteLLM
    .venv/bin/python bench/run.py --help

Sets everything up itself: wrk (apt-get), a fake OpenAI upstream, the bare proxy (the
minimal Python pass-through: ASGI + aiohttp, bench/bare_proxy.py), the gateway in production
mode on a temporary SQLite data directory and again on PostgreSQL + Redis, LiteLLM in its
own virtualenv. See bench/README.md. Prints a table (stdout; progress goes to stderr) and writes
bench/results/bench-<time>.json. Every process it starts is stopped at the end, also on
an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the `bench` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import loadgen, report, server_metrics
from bench.procs import OtherLoad, Processes, log, workers_rss_mb
from bench.targets import (
    BENCH_DIR,
    LITELLM_VERSION,
    REPO,
    Distributed,
    Endpoint,
    Gateway,
    check_chat,
    start_bare_proxy,
    start_fake_upstream,
    start_litellm,
    upstream_chat_count,
    wait_until_serving,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short runs; skip the 100k memory run and LiteLLM")
    parser.add_argument("--skip-litellm", action="store_true", help="do not install or run LiteLLM")
    parser.add_argument("--skip-bare-proxy", action="store_true", help="do not run the bare Python proxy")
    parser.add_argument("--skip-distributed", action="store_true", help="skip the PostgreSQL + Redis run")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 100k-request memory run")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the 2-worker run")
    parser.add_argument("--duration", type=float, help="seconds per measured wrk run (default 10, quick 3)")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up before each wrk run (default 3, quick 1)")
    parser.add_argument("--memory-requests", type=int, default=100_000, help="length of the memory run")
    parser.add_argument("--chunks", type=int, default=50, help="content chunks per streamed answer")
    parser.add_argument("--chunk-interval-ms", type=float, default=0.0, help="upstream pause between chunks")
    parser.add_argument(
        "--gateway-src",
        type=Path,
        default=REPO,
        help="project tree to run the gateway from (default: this checkout), e.g. a `git archive` export",
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data directory and logs")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 3.0
    if args.quick:
        args.skip_litellm = args.skip_memory = True
    return args


class Bench:
    def __init__(self, args: argparse.Namespace, procs: Processes, work_dir: Path) -> None:
        self.args = args
        self.procs = procs
        self.work_dir = work_dir
        self.bodies: dict[tuple[str, bool], Path] = {}
        self.results: dict[str, Any] = {"systems": {}, "notes": []}

    # --- building blocks ---------------------------------------------------------------------

    def body_file(self, endpoint: Endpoint, *, stream: bool) -> Path:
        key = (endpoint.model, stream)
        if key not in self.bodies:
            path = self.work_dir / f"body-{len(self.bodies)}.json"
            path.write_bytes(endpoint.body(stream=stream))
            self.bodies[key] = path
        return self.bodies[key]

    def wrk(self, endpoint: Endpoint, connections: int, seconds: float, *, stream: bool = False) -> loadgen.WrkResult:
        return loadgen.run_wrk(
            endpoint.chat_url,
            body_file=self.body_file(endpoint, stream=stream),
            api_key=endpoint.api_key,
            connections=connections,
            duration=seconds,
        )

    def non_stream(self, key: str, endpoint: Endpoint, concurrencies: tuple[int, ...] = (1, 32, 128)) -> None:
        system = self.results["systems"].setdefault(key, {})
        runs = system.setdefault("json", {})
        for c in concurrencies:
            log(f"{endpoint.name}: non-stream chat, c={c}, warm-up {self.args.warmup:g} s + {self.args.duration:g} s")
            if self.args.warmup > 0:
                self.wrk(endpoint, c, self.args.warmup)
            before = self.metrics(endpoint)
            result = self.wrk(endpoint, c, self.args.duration)
            runs[str(c)] = result.to_json()
            errors = f", {result.error_count} errors {result.errors}" if result.error_count else ""
            log(
                f"{endpoint.name}: c={c}: {result.rps:,.0f} req/s, "
                f"p50 {result.latency_ms['p50']:.2f} ms, p99 {result.latency_ms['p99']:.2f} ms{errors}"
            )
            if before is not None:
                after = self.metrics(endpoint, settle=True)
                if after is not None:
                    server = runs[str(c)]["server"] = server_metrics.summary(before, after)
                    log(
                        f"{endpoint.name}: c={c}: server side (/metrics): {server['requests']:,.0f} requests, "
                        f"mean {server['duration_mean_ms']} ms, p50 <= {server['duration_p50_le_ms']} ms, "
                        f"p99 <= {server['duration_p99_le_ms']} ms, overhead mean {server['overhead_mean_ms']} ms"
                    )

    def metrics(self, endpoint: Endpoint, *, settle: bool = False) -> str | None:
        """The gateway's /metrics text (None for other systems, or when it cannot be read)."""
        if not endpoint.admin_key:
            return None
        try:
            read = server_metrics.settled_scrape if settle else server_metrics.scrape
            return read(endpoint.base_url, endpoint.admin_key)
        except OSError as exc:
            log(f"{endpoint.name}: /metrics unreadable ({exc}); no server-side numbers for this run")
            return None

    def stream(self, key: str, endpoint: Endpoint) -> None:
        quick = self.args.quick
        log(f"{endpoint.name}: stream chat ({self.args.chunks} chunks), TTFB at c=1")
        result = loadgen.stream_probe(
            endpoint.chat_url,
            endpoint.body(stream=True),
            endpoint.api_key,
            concurrency=1,
            requests=300 if quick else 2000,
            max_seconds=self.args.duration,
            warmup=10 if quick else 50,
        )
        self.results["systems"].setdefault(key, {})["stream"] = result.to_json()
        errors = f", {result.errors} errors {result.error_samples}" if result.errors else ""
        log(
            f"{endpoint.name}: stream: {result.requests} requests, TTFB p50 {result.ttfb_ms['p50']:.2f} ms, "
            f"total p50 {result.total_ms['p50']:.2f} ms, {result.chunks_per_response:g} events{errors}"
        )

    def gateway_scenarios(self, key: str, endpoint: Endpoint, upstream: Endpoint) -> None:
        """Non-stream and stream chat, counting the upstream's calls to prove none was skipped."""
        before = upstream_chat_count(upstream)
        self.non_stream(key, endpoint)
        system = self.results["systems"][key]
        system["upstream_calls_during_non_stream"] = upstream_chat_count(upstream) - before
        system["measured_non_stream_requests"] = sum(run["requests"] for run in system["json"].values())
        self.stream(key, endpoint)

    def rss(self, key: str, endpoint: Endpoint) -> None:
        rss = workers_rss_mb(endpoint.service.pid)
        self.results["systems"].setdefault(key, {})["rss_mb"] = round(rss, 1)
        log(f"{endpoint.name}: RSS {rss:.1f} MB")

    # --- phases --------------------------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        self.results["meta"] = meta(args)
        loadgen.ensure_wrk()
        if not args.skip_litellm:
            from bench.targets import ensure_litellm

            ensure_litellm()

        log("starting the fake upstream")
        upstream = start_fake_upstream(
            self.procs, self.work_dir, chunks=args.chunks, interval_ms=args.chunk_interval_ms
        )
        check_chat(upstream, stream=False)
        check_chat(upstream, stream=True)

        self.non_stream("direct", upstream)
        self.stream("direct", upstream)

        if args.skip_bare_proxy:
            self.results["notes"].append(
                "bare proxy skipped (--skip-bare-proxy): the 'vs bare proxy' targets are not measured"
            )
        else:
            self.bare_proxy(upstream)

        self.embedded_gateway(upstream)

        if args.skip_distributed:
            self.results["notes"].append("PostgreSQL + Redis run skipped (--skip-distributed)")
        else:
            self.distributed_gateway(upstream)

        if args.skip_litellm:
            why = "--quick" if args.quick else "--skip-litellm"
            self.results["notes"].append(f"LiteLLM skipped ({why}): the 'vs LiteLLM' targets are not measured")
        else:
            self.litellm(upstream)

    def bare_proxy(self, upstream: Endpoint) -> None:
        """The floor for a Python proxy: the same scenarios through bench/bare_proxy.py."""
        log("starting the bare proxy (ASGI + aiohttp on uvicorn/uvloop/httptools, one worker)")
        endpoint = start_bare_proxy(self.procs, self.work_dir, upstream)
        self.gateway_scenarios("bare", endpoint, upstream)
        self.rss("bare", endpoint)
        self.procs.stop(endpoint.service)

    def embedded_gateway(self, upstream: Endpoint) -> None:
        gw = Gateway("gateway", self.work_dir / "gateway", src=self.args.gateway_src)
        gw.prepare()
        endpoint = gw.start(self.procs)
        gw.configure(endpoint, upstream)
        wait_until_serving(endpoint)
        endpoint.name = "gateway"
        if self.args.skip_memory:
            self.results["notes"].append("100k-request memory run skipped")
        else:
            self.memory_run(endpoint)
        self.gateway_scenarios("gateway", endpoint, upstream)
        self.rss("gateway", endpoint)
        self.procs.stop(endpoint.service)

        if self.args.skip_scaling:
            return
        endpoint2 = gw.start(self.procs, workers=2)
        endpoint2.name = "gateway 2 workers"
        wait_until_serving(endpoint2)
        self.non_stream("gateway_2w", endpoint2, (32, 128))
        self.rss("gateway_2w", endpoint2)
        self.procs.stop(endpoint2.service)

    def memory_run(self, endpoint: Endpoint) -> None:
        """A fresh gateway process under load until it served `--memory-requests` requests.

        RSS (summed over the serving processes) is read after a warm-up segment, once 20% of
        the requests are served (20k of 100k) and at the end. Load: wrk at c=32, non-stream
        chat with a short streamed-chat segment after every third non-stream one.
        """
        total = self.args.memory_requests
        checkpoint = total // 5
        log(f"gateway: memory run, {total:,} requests at c=32 (non-stream, with streamed segments)")
        memory: dict[str, Any] = {"errors": 0, "stream_requests": 0}

        def segment(seconds: float, *, stream: bool = False) -> loadgen.WrkResult:
            result = self.wrk(endpoint, 32, seconds, stream=stream)
            memory["errors"] += result.error_count
            if stream:
                memory["stream_requests"] += result.requests
            return result

        warm = segment(max(1.0, self.args.warmup))
        served = warm.requests
        rate = max(warm.rps, 100.0)
        memory["rss_mb_warm"], memory["requests_at_warm"] = round(workers_rss_mb(endpoint.service.pid), 1), served
        count = 0
        while served < total:
            count += 1
            if count % 4 == 0:
                served += segment(2.0, stream=True).requests
            else:
                goal = checkpoint if "rss_mb_20k" not in memory and served < checkpoint else total
                result = segment(max(1.0, min(10.0, (goal - served) / rate)))
                served += result.requests
                rate = max(result.rps, 100.0)
            rss = workers_rss_mb(endpoint.service.pid)
            if "rss_mb_20k" not in memory and served >= checkpoint:
                memory["rss_mb_20k"], memory["requests_at_20k"] = round(rss, 1), served
            log(f"gateway: memory run: {served:,} requests, RSS {rss:.1f} MB")
        memory["rss_mb_100k"], memory["requests_at_100k"] = round(workers_rss_mb(endpoint.service.pid), 1), served
        self.results["memory"] = memory

    def distributed_gateway(self, upstream: Endpoint) -> None:
        dist = Distributed()
        reason = dist.unavailable_reason()
        if reason:
            note = f"PostgreSQL + Redis run skipped: {reason}"
            log(note)
            self.results["notes"].append(note)
            return
        try:
            dist.create()
            gw = Gateway(
                "gateway PG+Redis",
                self.work_dir / "gateway-pg",
                database_url=dist.database_url,
                redis_url=dist.redis_url,
                src=self.args.gateway_src,
            )
            gw.prepare()
            endpoint = gw.start(self.procs)
            gw.configure(endpoint, upstream)
            wait_until_serving(endpoint)
            endpoint.name = "gateway PG+Redis"
            self.gateway_scenarios("gateway_pg", endpoint, upstream)
            self.rss("gateway_pg", endpoint)
            self.procs.stop(endpoint.service)
        finally:
            dist.cleanup()

    def litellm(self, upstream: Endpoint) -> None:
        log(f"starting LiteLLM {LITELLM_VERSION} (one worker, no database)")
        endpoint = start_litellm(self.procs, self.work_dir, upstream)
        self.non_stream("litellm", endpoint)
        self.stream("litellm", endpoint)
        self.rss("litellm", endpoint)
        self.procs.stop(endpoint.service)


def meta(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "litellm_version": None if args.skip_litellm else LITELLM_VERSION,
        "gateway_commit": _git_describe(args.gateway_src),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "systems": "direct upstream; bare proxy (bench/bare_proxy.py); gateway; LiteLLM",
        "load": "wrk, 1 thread, fixed duration after a warm-up; streaming TTFB with an aiohttp client at c=1",
    }


def _git_describe(src: Path) -> str | None:
    """The commit the gateway ran from ("-dirty" with local changes), when `src` is a git checkout."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(src), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # same clean-up path as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    procs = Processes()
    work_dir = Path(tempfile.mkdtemp(prefix="omniroute-bench-"))
    bench = Bench(args, procs, work_dir)
    started = time.monotonic()
    other_load = OtherLoad()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    ok = False
    try:
        bench.run()
        ok = True
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        return 130
    except Exception as exc:
        log(f"benchmark failed: {exc}")
        log(f"logs kept in {work_dir}")
        args.keep_data = True
        raise
    finally:
        procs.stop_all()
        if not args.keep_data:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif ok:
            log(f"data and logs kept in {work_dir}")
    bench.results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    bench.results["meta"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    other_cpu_s, other_share = other_load.share()
    bench.results["meta"]["cpu_seconds_used_by_other_processes"] = round(other_cpu_s, 1)
    if other_share > 0.10:
        bench.results["notes"].append(
            f"other processes used {other_share:.0%} of the machine's CPU during the run ({other_cpu_s:.0f} CPU-s): "
            "the numbers are noisy; re-run on a quiet machine before deciding on them"
        )
    table, path = report.finish(bench.results, args.results_dir, stamp)
    print(table)
    print(f"\nResults: {path}")
    log(f"done in {bench.results['meta']['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
