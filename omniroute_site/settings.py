"""Django settings, 12-factor: every knob comes from the environment (see .env.example)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .env import (
    ConfigError,
    data_dir,
    database_url,
    env_bool,
    env_float,
    env_int,
    env_networks,
    env_str,
    env_zone,
    persisted_secret,
    redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = data_dir()

SECRET_KEY = persisted_secret("SECRET_KEY", DATA_DIR)
STORAGE_ENCRYPTION_KEY = persisted_secret("STORAGE_ENCRYPTION_KEY", DATA_DIR, nbytes=32)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "*").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env_str("CSRF_TRUSTED_ORIGINS").split(",") if o.strip()]
# Reverse proxies whose X-Forwarded-For names the client (IPs or CIDRs); the settings API
# can add more at runtime (docs/API.md §13).
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")

PORT = env_int("PORT", 20128, minimum=1, maximum=65535)
INITIAL_PASSWORD = env_str("INITIAL_PASSWORD")
REQUIRE_API_KEY = env_bool("REQUIRE_API_KEY", True)
REDIS_URL = redis_url()

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "channels",
    "gateway",
    "providers",
    "usage",
    "backups",
]

MIDDLEWARE = [
    "gateway.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "usage.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "omniroute_site.urls"
ASGI_APPLICATION = "omniroute_site.asgi.application"
WSGI_APPLICATION = "omniroute_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_url(DATA_DIR)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets the recorder write while the control plane reads; IMMEDIATE avoids
            # "database is locked" upgrades from read to write transactions.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
            "transaction_mode": "IMMEDIATE",
        }
    )
    # One test database per test process, so that concurrent test runs on one machine never share a file.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"[:50]}
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS: list[dict] = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
# Budgets and per-day key limits reset at midnight / Monday / the 1st in this zone.
BUDGET_TIMEZONE = env_zone("BUDGET_TIMEZONE", TIME_ZONE)
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)

# The session cookie is the dashboard/API login cookie of the contract.
SESSION_COOKIE_NAME = "auth_token"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("AUTH_COOKIE_SECURE", False)
SESSION_COOKIE_AGE = 30 * 24 * 3600

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "gateway.api.authentication.AdminApiKeyAuthentication",
        "gateway.api.authentication.CsrfSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["gateway.api.permissions.IsOperator"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "gateway.api.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Celery: Redis broker when configured; otherwise tasks run in-process (eager).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE

MAX_BODY_BYTES = env_int("MAX_BODY_SIZE_BYTES", 10 * 1024 * 1024, minimum=1024)
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_SIZE_BYTES", 100 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

# Upstream timeouts, in seconds.
UPSTREAM_CONNECT_TIMEOUT = env_int("UPSTREAM_CONNECT_TIMEOUT", 10, minimum=1)
UPSTREAM_FIRST_BYTE_TIMEOUT = env_int("UPSTREAM_FIRST_BYTE_TIMEOUT", 120, minimum=1)
UPSTREAM_IDLE_TIMEOUT = env_int("UPSTREAM_IDLE_TIMEOUT", 120, minimum=1)
# Asynchronous transcription (AssemblyAI): how long to poll a job before a 504, and how often.
TRANSCRIPTION_POLL_TIMEOUT = env_int("TRANSCRIPTION_POLL_TIMEOUT", 120, minimum=1)
TRANSCRIPTION_POLL_INTERVAL = env_int("TRANSCRIPTION_POLL_INTERVAL_MS", 1000, minimum=10) / 1000

# How a provider's connections (accounts) are picked: `priority` (fill-first, the default) or
# `round-robin`, optionally per provider: "priority,openai=round-robin" (docs/API.md §3).
CONNECTION_SELECTION = env_str("CONNECTION_SELECTION", "priority")
# Shared-state key namespace in Redis; empty = derived from the database name (docs/API.md §3).
STATE_NAMESPACE = env_str("STATE_NAMESPACE")

# Idempotency (docs/API.md §12): how long a completed answer is replayed for a repeated
# Idempotency-Key / X-Request-Id (0 = off), and how long a duplicate waits for a first request
# still running in another process (then 409).
IDEMPOTENCY_WINDOW_MS = env_int("IDEMPOTENCY_WINDOW_MS", 5000, minimum=0)
IDEMPOTENCY_WAIT_MS = env_int("IDEMPOTENCY_WAIT_MS", 300_000, minimum=1000)
# Progress events in streams (X-OmniRoute-Progress: true): one frame per interval.
PROGRESS_INTERVAL_MS = env_int("PROGRESS_INTERVAL_MS", 2000, minimum=50)
# A client session is active while it was seen within this many seconds (/api/sessions, maxSessions).
SESSION_WINDOW_SECONDS = env_int("SESSION_WINDOW_SECONDS", 1800, minimum=1)
# Sessions one process keeps in memory at most (the least recently seen are forgotten first).
SESSION_MAX_TRACKED = env_int("SESSION_MAX_TRACKED", 100_000, minimum=100)

# How often a process checks whether another process changed the configuration (seconds).
CONFIG_POLL_INTERVAL = env_int("CONFIG_POLL_INTERVAL_MS", 500, minimum=50) / 1000

RECORDER_BATCH_SIZE = env_int("RECORDER_BATCH_SIZE", 500, minimum=1)
RECORDER_FLUSH_INTERVAL = env_int("RECORDER_FLUSH_INTERVAL_MS", 250, minimum=10) / 1000

# Usage records and request logs older than this many days are deleted by a daily task (usage.tasks).
USAGE_RETENTION_DAYS = env_int("USAGE_RETENTION_DAYS", 90, minimum=1)
# With REDIS_URL: usage records go through a Redis stream consumed by Celery (docs/API.md §9).
USAGE_STREAM = env_bool("USAGE_STREAM", True)
# After a Redis failure, records go directly to the database for this many seconds.
USAGE_STREAM_RETRY_SECONDS = env_int("USAGE_STREAM_RETRY_SECONDS", 5, minimum=1)
# Stream entries a consumer read but did not acknowledge for this long are taken over by another.
USAGE_STREAM_CLAIM_IDLE_SECONDS = env_int("USAGE_STREAM_CLAIM_IDLE_SECONDS", 60, minimum=1)
# Request logs (/api/usage/request-logs): bodies and headers of /v1 requests, except for noLog keys.
REQUEST_LOG_BODIES = env_bool("REQUEST_LOG_BODIES", True)
REQUEST_LOG_MAX_BODY_BYTES = env_int("REQUEST_LOG_MAX_BODY_BYTES", 64 * 1024, minimum=256)

# Response cache (docs/API.md §11): exact-match, opt-in; semantic matching on top, opt-in.
RESPONSE_CACHE_ENABLED = env_bool("RESPONSE_CACHE_ENABLED", False)
RESPONSE_CACHE_TTL_SECONDS = env_int("RESPONSE_CACHE_TTL_SECONDS", 3600, minimum=1)
RESPONSE_CACHE_MAX_ENTRIES = env_int("RESPONSE_CACHE_MAX_ENTRIES", 1000, minimum=1)
RESPONSE_CACHE_MAX_BYTES = env_int("RESPONSE_CACHE_MAX_BYTES", 64 * 1024 * 1024, minimum=1024)
RESPONSE_CACHE_NON_DETERMINISTIC = env_bool("RESPONSE_CACHE_NON_DETERMINISTIC", False)
SEMANTIC_CACHE_ENABLED = env_bool("SEMANTIC_CACHE_ENABLED", False)
SEMANTIC_CACHE_EMBEDDING_MODEL = env_str("SEMANTIC_CACHE_EMBEDDING_MODEL")
SEMANTIC_CACHE_THRESHOLD = env_float("SEMANTIC_CACHE_THRESHOLD", 0.9, minimum=0.0, maximum=1.0)
# Hourly roll-ups (long telemetry windows) are kept longer than the records (docs/API.md §10).
ROLLUP_RETENTION_DAYS = env_int("ROLLUP_RETENTION_DAYS", 400, minimum=1)
# Whether each gateway process runs the hourly roll-up in a background thread; default: when
# REDIS_URL is unset (embedded mode runs no Celery beat). One process at a time (a file lock).
ROLLUP_IN_GATEWAY = env_bool("ROLLUP_IN_GATEWAY", not REDIS_URL)
# /metrics without authentication (for a Prometheus on a trusted network).
METRICS_PUBLIC = env_bool("METRICS_PUBLIC", False)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
# One log line per /v1 request (logger omniroute.requests), written by the recorder thread.
LOG_REQUESTS = env_bool("LOG_REQUESTS", False)
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ConfigError(
        f"Environment variable LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}"
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# WhiteNoise serves static files with a sync iterator; under ASGI Django warns on every file.
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")
