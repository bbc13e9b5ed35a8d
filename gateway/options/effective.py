"""General settings whose stored value overrides an environment default; read from the
snapshot as last built (these readers run outside the request's await chain: the recorder
thread, connection ordering), never building one themselves."""

from __future__ import annotations

from django.conf import settings

from . import Options


def current_options() -> Options:
    from gateway.snapshot import peek_snapshot

    snap = peek_snapshot()
    return snap.options if snap is not None else Options()


def log_requests_enabled() -> bool:
    value = current_options().log_requests
    return bool(settings.LOG_REQUESTS) if value is None else value


def connection_selection_setting() -> str:
    return current_options().connection_selection or str(settings.CONNECTION_SELECTION)
