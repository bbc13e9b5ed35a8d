"""A real gateway server (uvicorn, same ASGI app as production) in a background thread."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveGateway:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        config = uvicorn.Config(
            "omniroute_site.asgi:application",
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
            proxy_headers=False,  # as in production: the gateway resolves X-Forwarded-For itself
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-gateway", daemon=True)

    def start(self) -> LiveGateway:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The live gateway did not start")
            time.sleep(0.02)
        return self

    def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until the server has no request task running."""
        deadline = time.monotonic() + timeout
        while self.server.server_state.tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def database_url_of_test_db() -> str:
    """A DATABASE_URL for the database the current test run uses (for server subprocesses)."""
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{cfg['NAME']}"
    user = cfg.get("USER") or "postgres"
    password = f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{cfg.get('HOST') or '127.0.0.1'}:{cfg.get('PORT') or 5432}/{cfg['NAME']}"


class GatewayProcess:
    """The production server command (uvicorn) in a subprocess, on the test database."""

    def __init__(self, *, workers: int = 1, extra_env: dict[str, str] | None = None) -> None:
        import os
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = f"{self.url}/v1"
        self.env = {**os.environ, "DATABASE_URL": database_url_of_test_db(), **(extra_env or {})}
        bin_dir = os.path.dirname(sys.executable)
        self.cmd = [
            os.path.join(bin_dir, "uvicorn"),
            "omniroute_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--no-proxy-headers",
            "--lifespan",
            "on",
            "--timeout-graceful-shutdown",
            "20",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        import httpx

        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise RuntimeError(f"Gateway process exited at start:\n{out[-3000:]}")
            try:
                httpx.get(f"{self.base_url}/models", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Gateway process did not start in 30 s")

    def terminate(self) -> str:
        """SIGTERM, wait for the graceful exit, return what the process printed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=60)
        return out.decode(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
