"""Typed, loud environment loading.

Every variable is read here once. A bad value stops start-up with a message that names the
variable, instead of failing later in a request.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ


class ConfigError(RuntimeError):
    """A configuration variable has a value we cannot use."""


env = environ.Env()


def _read(name: str, cast: type, default: object) -> object:
    try:
        return env(name, cast=cast, default=default)
    except (ValueError, TypeError, environ.ImproperlyConfigured) as exc:
        raise ConfigError(f"Environment variable {name} has an invalid value: {exc}") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"Environment variable {name} must be true or false, got {raw!r}")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"Environment variable {name} must be an integer, got {raw!r}") from exc
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise ConfigError(f"Environment variable {name} must be at least {minimum}{upper}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"Environment variable {name} must be a number, got {raw!r}") from exc
    if not minimum <= value <= maximum:
        raise ConfigError(f"Environment variable {name} must be between {minimum} and {maximum}, got {value}")
    return value


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_networks(name: str) -> list[str]:
    """Comma-separated IPs or CIDR networks (v4 or v6), each checked."""
    import ipaddress

    entries = [part.strip() for part in env_str(name).split(",") if part.strip()]
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as exc:
            raise ConfigError(f"Environment variable {name}: {entry!r} is not an IP address or CIDR network") from exc
    return entries


def data_dir() -> Path:
    raw = env_str("DATA_DIR") or str(Path(__file__).resolve().parent.parent / "data")
    path = Path(raw).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Environment variable DATA_DIR points to {path}, which cannot be created: {exc}") from exc
    return path


def persisted_secret(name: str, directory: Path, *, nbytes: int = 48) -> str:
    """The variable's value, else a random one generated once and kept under DATA_DIR."""
    value = env_str(name)
    if value:
        return value
    path = directory / f".{name.lower()}"
    if path.exists():
        stored = path.read_text().strip()
        if stored:
            return stored
    value = secrets.token_urlsafe(nbytes)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


def database_url(directory: Path) -> dict:
    default = f"sqlite:///{directory / 'omniroute.sqlite3'}"
    raw = env_str("DATABASE_URL") or default
    try:
        config = environ.Env.db_url_config(raw)
    except Exception as exc:  # django-environ raises several types for a bad URL
        raise ConfigError(f"Environment variable DATABASE_URL is not a valid database URL: {exc}") from exc
    if not config.get("ENGINE"):
        raise ConfigError("Environment variable DATABASE_URL names an unsupported database scheme")
    return config


def redis_url() -> str:
    raw = env_str("REDIS_URL")
    if raw and not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"Environment variable REDIS_URL must start with redis://, rediss:// or unix://, got {raw!r}")
    return raw


def env_zone(name: str, default: str) -> str:
    """An IANA time zone name (e.g. Europe/Berlin), checked against the zone database."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = env_str(name) or default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"Environment variable {name} must be an IANA time zone like Europe/Berlin, got {value!r}"
        ) from exc
    return value
