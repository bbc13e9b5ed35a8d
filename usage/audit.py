"""The audit trail's capture side: which models are audited with which fields hidden, and
who is acting right now.

The actor comes from the current Django request, which usage.middleware puts in a context
variable. It is resolved when an entry is written, so an API-key login that DRF
performs inside the view (`request.user` / `request.auth` are copied onto the Django
request) is seen too. Outside a request (management commands, Celery, a shell) the actor is
"system".
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

from django.http import HttpRequest

SYSTEM_ACTOR = "system"
SECRET_CHANGED = "[changed]"


@dataclass(frozen=True)
class AuditSpec:
    """An audited model. `secret` fields are reported only as "[changed]" under their public
    name; `ignored` fields (bookkeeping, runtime status) are never reported."""

    label: str
    secret: Mapping[str, str] = field(default_factory=dict)
    ignored: frozenset[str] = frozenset()
    renames: Mapping[str, str] = field(default_factory=dict)


ALWAYS_IGNORED = frozenset({"id", "created_at", "updated_at"})

# The one list of audited models; a label whose model does not exist is skipped.
AUDITED: tuple[AuditSpec, ...] = (
    AuditSpec("gateway.ApiKey", secret={"key_hash": "key"}),
    AuditSpec("gateway.ModelAlias"),
    AuditSpec("gateway.Combo", renames={"members": "models"}),
    AuditSpec("gateway.ResilienceProfile"),
    AuditSpec("gateway.GatewaySettings"),
    AuditSpec("gateway.IpBan"),
    AuditSpec(
        "providers.ProviderConnection",
        secret={"api_key_encrypted": "apiKey"},
        # The hint changes with the key; the test outcome is runtime status, not configuration.
        ignored=frozenset({"api_key_hint", "test_status", "last_error", "last_tested_at"}),
    ),
    AuditSpec("providers.ProviderNode"),
    AuditSpec("providers.ProviderModel"),
    AuditSpec("usage.PriceOverride"),
    AuditSpec("usage.Budget"),
    AuditSpec("auth.User", secret={"password": "password"}, ignored=frozenset({"last_login", "date_joined"})),
)

_request: ContextVar[HttpRequest | None] = ContextVar("omniroute_audit_request", default=None)


@dataclass(frozen=True)
class Actor:
    name: str
    ip: str = ""
    request_id: str = ""


def client_ip(request: HttpRequest) -> str:
    """The client address, as the IP filter and the login throttle see it (X-Forwarded-For
    only from a trusted proxy)."""
    from gateway.options.netfilter import request_client_ip

    return request_client_ip(request)[:64]


def actor_name(request: HttpRequest) -> str:
    from gateway.api.authentication import ApiKeyPrincipal

    user = getattr(request, "user", None)
    if isinstance(user, ApiKeyPrincipal):
        prefix = getattr(getattr(request, "auth", None), "prefix", "")
        return f"key:{prefix or user.key_id}"
    if user is not None and getattr(user, "is_authenticated", False):
        return str(user.get_username())[:200]
    return "anonymous"


def actor_from(request: HttpRequest, *, name: str | None = None) -> Actor:
    return Actor(
        name=name if name is not None else actor_name(request),
        ip=client_ip(request),
        request_id=str(getattr(request, "request_id", ""))[:128],
    )


def current_actor() -> Actor:
    request = _request.get()
    return actor_from(request) if request is not None else Actor(SYSTEM_ACTOR)


def audit_request_set(request: HttpRequest) -> Token[HttpRequest | None]:
    return _request.set(request)


def audit_request_reset(token: Token[HttpRequest | None]) -> None:
    _request.reset(token)
