"""The systems under test: the fake upstream, the bare proxy, the gateway (embedded or on
PostgreSQL + Redis) and LiteLLM, each set up from nothing by the benchmark."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .procs import Processes, Service, free_port, log

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent  # run.py runs in the project's virtualenv

# The newest LiteLLM whose `[proxy]` extra installs from the package index this project uses
# (1.108.8 and later pin litellm-enterprise / litellm-proxy builds that are not published there).
LITELLM_VERSION = "1.108.7"
LITELLM_VENV = BENCH_DIR / ".litellm-venv"

# Variables of the calling shell that must not leak into a server's configuration.
_PRIVATE_ENV = (
    "DATABASE_URL",
    "REDIS_URL",
    "DATA_DIR",
    "SECRET_KEY",
    "STORAGE_ENCRYPTION_KEY",
    "DJANGO_SETTINGS_MODULE",
)

CHAT_PATH = "/v1/chat/completions"
UPSTREAM_MODEL = "gpt-4o-mini"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PRIVATE_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Endpoint:
    """Where a system under test answers chat requests, and how to call it."""

    name: str
    base_url: str  # http://127.0.0.1:PORT
    model: str
    api_key: str | None
    service: Service
    admin_key: str | None = None  # the gateway's: lets the bench read its /metrics

    @property
    def chat_url(self) -> str:
        return self.base_url + CHAT_PATH

    def body(self, *, stream: bool) -> bytes:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Say hello to the benchmark in one short sentence."},
            ],
            "max_tokens": 64,
            "temperature": 0,
        }
        if stream:
            payload["stream"] = True
            payload["stream_options"] = {"include_usage": True}
        return json.dumps(payload).encode()


# --- small HTTP helpers (stdlib only: setup is not timed) ---------------------------------------


def http_json(method: str, url: str, *, token: str | None = None, body: Any = None, timeout: float = 15) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as err:
        detail = err.read()[:500].decode(errors="replace")
        raise RuntimeError(f"{method} {url} -> HTTP {err.code}: {detail}") from None
    return json.loads(raw) if raw else None


def check_chat(endpoint: Endpoint, *, stream: bool) -> None:
    """One request that must succeed with a well-formed answer before any load is sent."""
    headers = {"Content-Type": "application/json"}
    if endpoint.api_key:
        headers["Authorization"] = f"Bearer {endpoint.api_key}"
    request = urllib.request.Request(endpoint.chat_url, data=endpoint.body(stream=stream), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as err:
        detail = err.read()[:500].decode(errors="replace")
        raise RuntimeError(f"{endpoint.name}: chat request failed with HTTP {err.code}: {detail}") from None
    if stream:
        if b"[DONE]" not in raw or b'"usage"' not in raw:
            raise RuntimeError(f"{endpoint.name}: the stream lacks usage or [DONE]: {raw[-300:]!r}")
    else:
        answer = json.loads(raw)
        if not answer.get("choices") or not answer.get("usage"):
            raise RuntimeError(f"{endpoint.name}: unexpected answer {raw[:300]!r}")


# --- fake upstream -----------------------------------------------------------------------------


def start_fake_upstream(procs: Processes, log_dir: Path, *, chunks: int, interval_ms: float) -> Endpoint:
    port = free_port()
    cmd = [
        sys.executable,
        str(BENCH_DIR / "fake_upstream.py"),
        "--port",
        str(port),
        "--chunks",
        str(chunks),
        "--chunk-interval-ms",
        str(interval_ms),
    ]
    service = procs.start(Service("fake upstream", cmd, env=base_env(), cwd=REPO, log_path=log_dir / "upstream.log"))
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/v1/models", timeout=15)
    return Endpoint("direct", base, UPSTREAM_MODEL, None, service)


def upstream_chat_count(upstream: Endpoint) -> int:
    return int(http_json("GET", upstream.base_url + "/stats")["chat"])


# --- the bare proxy ----------------------------------------------------------------------------


def start_bare_proxy(procs: Processes, log_dir: Path, upstream: Endpoint) -> Endpoint:
    """bench/bare_proxy.py in front of the fake upstream: uvicorn, uvloop, httptools, one worker."""
    port = free_port()
    cmd = [sys.executable, str(BENCH_DIR / "bare_proxy.py"), "--port", str(port), "--upstream", upstream.base_url]
    service = procs.start(Service("bare proxy", cmd, env=base_env(), cwd=REPO, log_path=log_dir / "bare-proxy.log"))
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/v1/models", timeout=30)  # any HTTP status means it serves (404 here)
    endpoint = Endpoint("bare proxy", base, UPSTREAM_MODEL, None, service)
    check_chat(endpoint, stream=False)
    check_chat(endpoint, stream=True)
    return endpoint


# --- the gateway -------------------------------------------------------------------------------


class Gateway:
    """One gateway installation: a data directory, a database, keys and a provider connection.

    `prepare()` migrates and makes an admin key; `start()` runs the production server command;
    `configure()` creates the provider connection and the inference key through the management
    API, as an operator would.
    """

    def __init__(
        self,
        label: str,
        data_dir: Path,
        *,
        database_url: str | None = None,
        redis_url: str | None = None,
        src: Path = REPO,
    ) -> None:
        self.label = label
        self.src = src
        self.data_dir = data_dir
        self.env = base_env()
        self.env.update(
            {
                "DATA_DIR": str(data_dir),
                "INITIAL_PASSWORD": secrets.token_urlsafe(16),
                "REQUIRE_API_KEY": "true",
                "LOG_LEVEL": "INFO",
                "DEBUG": "false",
            }
        )
        if database_url:
            self.env["DATABASE_URL"] = database_url
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        self.admin_key = ""
        self.api_key = ""

    def manage(self, *args: str) -> str:
        cmd = [sys.executable, "manage.py", *args]
        proc = subprocess.run(cmd, cwd=self.src, env=self.env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{(proc.stderr or proc.stdout)[-3000:]}")
        return proc.stdout

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log(f"{self.label}: manage.py migrate")
        self.manage("migrate", "--noinput")
        self.manage("ensure_admin")
        self.admin_key = self.manage("create_api_key", "--name", "bench-admin", "--scope", "admin").strip()
        if not self.admin_key:
            raise RuntimeError("manage.py create_api_key printed no key")

    def start(self, procs: Processes, *, workers: int = 1) -> Endpoint:
        """The production server command on a free port; the endpoint carries the inference key once made."""
        port = free_port()
        cmd = [
            str(VENV_BIN / "uvicorn"),
            "omniroute_site.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--workers",
            str(workers),
            "--no-access-log",
            "--lifespan",
            "on",
        ]
        name = f"{self.label} ({workers} worker{'s' if workers > 1 else ''})"
        log_path = self.data_dir / f"gateway-{workers}w.log"
        service = procs.start(Service(name, cmd, env=self.env, cwd=self.src, log_path=log_path))
        base = f"http://127.0.0.1:{port}"
        service.wait_http(base + "/v1/models", timeout=60)
        if workers > 1:
            _wait_for_workers(service, workers)
        return Endpoint(name, base, f"openai/{UPSTREAM_MODEL}", self.api_key or None, service, self.admin_key)

    def configure(self, gateway: Endpoint, upstream: Endpoint) -> None:
        log(f"{self.label}: provider connection and API key through the management API")
        http_json(
            "POST",
            gateway.base_url + "/api/providers",
            token=self.admin_key,
            body={
                "provider": "openai",
                "name": "fake upstream",
                "apiKey": "sk-fake-upstream-key",
                "baseUrl": upstream.base_url + "/v1",
            },
        )
        created = http_json(
            "POST", gateway.base_url + "/api/keys", token=self.admin_key, body={"name": "bench-inference"}
        )
        self.api_key = gateway.api_key = created["key"]


def _wait_for_workers(service: Service, workers: int, timeout: float = 60) -> None:
    """With several workers the supervisor answers as soon as the first is up: wait for all."""
    from .procs import worker_pids

    deadline = time.monotonic() + timeout
    while len(worker_pids(service.pid)) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name}: only {len(worker_pids(service.pid))} of {workers} workers started")
        time.sleep(0.2)
    time.sleep(2)  # let every worker finish its start-up (snapshot load) before load arrives


def wait_until_serving(endpoint: Endpoint, timeout: float = 20) -> None:
    """Configuration reaches the data plane through the snapshot: retry until a chat call works."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check_chat(endpoint, stream=False)
            check_chat(endpoint, stream=True)
            return
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


# --- PostgreSQL + Redis ------------------------------------------------------------------------


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


class Distributed:
    """A fresh PostgreSQL database and an empty Redis database, removed again by `cleanup()`."""

    def __init__(
        self, pg_host: str = "127.0.0.1", pg_port: int = 5432, redis_host: str = "127.0.0.1", redis_port: int = 6379
    ) -> None:
        self.pg_admin_url = f"postgresql://postgres@{pg_host}:{pg_port}/postgres"
        self.pg_host, self.pg_port = pg_host, pg_port
        self.redis_host, self.redis_port = redis_host, redis_port
        self.db_name = f"omniroute_bench_{int(time.time())}_{os.getpid()}"
        self.redis_db: int | None = None
        self.created_db = False

    def unavailable_reason(self) -> str | None:
        if not reachable(self.pg_host, self.pg_port):
            return f"PostgreSQL is not reachable on {self.pg_host}:{self.pg_port}"
        if not reachable(self.redis_host, self.redis_port):
            return f"Redis is not reachable on {self.redis_host}:{self.redis_port}"
        return None

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@{self.pg_host}:{self.pg_port}/{self.db_name}"

    @property
    def redis_url(self) -> str:
        return f"redis://{self.redis_host}:{self.redis_port}/{self.redis_db}"

    def create(self) -> None:
        import psycopg
        import redis

        with psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.created_db = True
        # An empty Redis database, so that cleanup may flush it without touching anyone's data.
        for number in range(15, 0, -1):
            client = redis.Redis(host=self.redis_host, port=self.redis_port, db=number, socket_timeout=5)
            try:
                if client.dbsize() == 0:
                    self.redis_db = number
                    break
            finally:
                client.close()
        if self.redis_db is None:
            raise RuntimeError("No empty Redis database (1-15) to use for the benchmark")
        log(f"distributed: PostgreSQL database {self.db_name}, Redis database {self.redis_db}")

    def cleanup(self) -> None:
        if self.redis_db is not None:
            import redis

            client = redis.Redis(host=self.redis_host, port=self.redis_port, db=self.redis_db, socket_timeout=5)
            try:
                client.flushdb()
            except redis.RedisError as exc:
                log(f"could not empty Redis database {self.redis_db}: {exc}")
            finally:
                client.close()
            self.redis_db = None
        if self.created_db:
            import psycopg

            try:
                with psycopg.connect(self.pg_admin_url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except psycopg.Error as exc:
                log(f"could not drop database {self.db_name}: {exc}")
            self.created_db = False


# --- LiteLLM -----------------------------------------------------------------------------------


def ensure_litellm() -> Path:
    """LiteLLM's own virtualenv under bench/, with the pinned `litellm[proxy]`."""
    marker = LITELLM_VENV / f".installed-{LITELLM_VERSION}"
    litellm_bin = LITELLM_VENV / "bin" / "litellm"
    if marker.exists() and litellm_bin.exists():
        return litellm_bin
    if not (LITELLM_VENV / "bin" / "python").exists():
        log(f"creating {LITELLM_VENV.relative_to(REPO)}")
        subprocess.run([_system_python(), "-m", "venv", str(LITELLM_VENV)], check=True)
    log(f"installing litellm[proxy]=={LITELLM_VERSION} into its own virtualenv (about a minute, once)")
    pip = [str(LITELLM_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, f"litellm[proxy]=={LITELLM_VERSION}"], capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if "WARNING" not in ln]
        raise RuntimeError("installing LiteLLM failed:\n" + "\n".join(errors[-20:]))
    for old in LITELLM_VENV.glob(".installed-*"):
        old.unlink()
    marker.touch()
    return litellm_bin


def _system_python() -> str:
    """The interpreter the project's virtualenv was made from (a venv of a venv works too)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def start_litellm(procs: Processes, work_dir: Path, upstream: Endpoint) -> Endpoint:
    litellm_bin = ensure_litellm()
    master_key = "sk-bench-" + secrets.token_hex(8)
    config = work_dir / "litellm-config.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {UPSTREAM_MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n"
        f"      api_base: {upstream.base_url}/v1\n"
        "      api_key: sk-fake-upstream-key\n"
        "litellm_settings:\n"
        "  drop_params: true\n"
        "  telemetry: false\n"
        "general_settings:\n"
        f"  master_key: {master_key}\n"
    )
    port = free_port()
    env = base_env()
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"})
    cmd = [
        str(litellm_bin),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
        "--telemetry",
        "False",
    ]
    service = procs.start(Service("LiteLLM", cmd, env=env, cwd=work_dir, log_path=work_dir / "litellm.log"))
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health/liveliness", timeout=120)
    endpoint = Endpoint("litellm", base, UPSTREAM_MODEL, master_key, service)
    check_chat(endpoint, stream=False)
    check_chat(endpoint, stream=True)
    return endpoint
