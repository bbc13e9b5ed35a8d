"""The IP filter at the ASGI entrance, in front of both planes (omniroute_site/asgi.py).

One check per HTTP request. With no filter and no trusted proxy configured it costs an
attribute read. Otherwise the client address is resolved once (see netfilter) and kept in
the scope under CLIENT_IP_KEY, where Django code (login throttling, the audit trail) reads
it through `netfilter.request_client_ip`.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from gateway.snapshot import get_snapshot, peek_snapshot

from .netfilter import CLIENT_IP_KEY, NetworkRules

log = logging.getLogger(__name__)


def _peer(scope: dict[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _forwarded_for(scope: dict[str, Any]) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"]
    return ",".join(values) if values else None


def _client_format(path: str) -> str:
    """The client format whose error shape a data-plane 403 takes."""
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith("/v1/responses"):
        return "responses"
    if path.startswith("/v1beta/") or ":generateContent" in path or ":streamGenerateContent" in path:
        return "gemini"
    if path.startswith(("/api/tags", "/v1/api/")):
        return "ollama"
    return "openai"


async def _deny(send: Any, path: str, message: str, data_plane: bool) -> None:
    if data_plane:
        from gateway.errors import GatewayError
        from gateway.formats import get_client_format

        body = get_client_format(_client_format(path)).error_body(GatewayError(403, message, code="ip_blocked"))
    else:
        body = orjson.dumps({"error": {"message": message, "type": "permission_error", "code": "ip_blocked"}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _rules() -> NetworkRules | None:
    try:
        return (await get_snapshot()).options.network
    except Exception as exc:  # database down: the last snapshot, else nothing is known to enforce
        snap = peek_snapshot()
        if snap is None:
            log.warning("IP filter not applied, configuration unreadable: %s", exc)
            return None
        return snap.options.network


async def ip_allowed(scope: dict[str, Any], send: Any, *, data_plane: bool) -> bool:
    """False after answering 403 when the filter refuses the client; True to go on."""
    rules = await _rules()
    if rules is None or not rules.active:
        return True
    ip = rules.client_ip(_peer(scope), _forwarded_for(scope) if rules.trusted else None)
    scope[CLIENT_IP_KEY] = ip
    reason = rules.denial(ip, management=not data_plane)
    if reason is None:
        return True
    await _deny(send, scope.get("path", ""), reason, data_plane)
    return False
