"""Processes the benchmark starts: start, wait until they answer, measure memory, stop.

Every service runs in its own session (process group), logs to a file, and is registered in
one `Processes` list so that `stop_all()` ends each group it started — on success, on an
error and on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def log(message: str) -> None:
    """Progress on stderr, so stdout keeps only the result table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One long-running process (and its children) with its output in a log file."""

    def __init__(self, name: str, cmd: list[str], *, env: dict[str, str], cwd: Path, log_path: Path) -> None:
        self.name = name
        self.cmd = cmd
        self.env = env
        self.cwd = cwd
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not started"
        return self.proc.pid

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: Ctrl-C reaches us, we stop it in order
            )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, url: str, *, timeout: float = 60.0, headers: dict[str, str] | None = None) -> None:
        """Wait until `url` answers with any HTTP status (the server is accepting requests)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise RuntimeError(f"{self.name} exited during start-up; its log ends with:\n{self.log_tail()}")
            try:
                request = urllib.request.Request(url, headers=headers or {})
                with urllib.request.urlopen(request, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answered
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer {url} in {timeout:.0f} s; log:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the process group, SIGKILL if it is still there after `timeout`."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop in {timeout:.0f} s, killing it")
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait(10)
        # Children that outlived the leader (e.g. a uvicorn worker) are still in the group.
        _signal_group(proc.pid, signal.SIGKILL)
        self.proc = None


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class Processes:
    """Every service started by this run, stopped in reverse order."""

    def __init__(self) -> None:
        self.services: list[Service] = []

    def start(self, service: Service) -> Service:
        self.services.append(service)
        return service.start()

    def stop(self, service: Service) -> None:
        service.stop()
        if service in self.services:
            self.services.remove(service)

    def stop_all(self) -> None:
        while self.services:
            service = self.services.pop()
            try:
                service.stop()
            except Exception as exc:  # keep stopping the others
                log(f"stopping {service.name} failed: {exc}")


# --- memory -----------------------------------------------------------------------------


def rss_kb(pid: int) -> int:
    """VmRSS of one process in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: the ppid follows the last ")".
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def worker_pids(pid: int) -> list[int]:
    """The processes that serve requests: the children of a supervisor, or the process itself.

    uvicorn with --workers N > 1 runs a supervisor whose children are the workers (plus
    multiprocessing's resource tracker, which serves nothing); with one worker it serves in
    the main process.
    """
    workers = [c for c in children(pid) if "resource_tracker" not in _cmdline(c)]
    return workers or [pid]


def workers_rss_mb(pid: int) -> float:
    return sum(rss_kb(p) for p in worker_pids(pid)) / 1024


# --- noise -------------------------------------------------------------------------------


def _busy_cpu_seconds() -> float:
    """CPU time the whole machine spent busy since boot (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU time of this process and of every child it has reaped (wrk, the servers)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class OtherLoad:
    """How much of the machine other processes used while the benchmark ran (a noise gauge).

    Read `share()` after every started process has been stopped and reaped.
    """

    def __init__(self) -> None:
        self.busy = _busy_cpu_seconds()
        self.own = _own_cpu_seconds()
        self.started = time.monotonic()

    def share(self) -> tuple[float, float]:
        """(CPU-seconds used by others, their share of all CPU time available in the run)."""
        others = (_busy_cpu_seconds() - self.busy) - (_own_cpu_seconds() - self.own)
        available = (time.monotonic() - self.started) * (os.cpu_count() or 1)
        return max(0.0, others), max(0.0, others) / available if available else 0.0
