"""The request steps before the upstream call: parse, authenticate, resolve, authorize.

Each step is a plain function of the request and the config snapshot; none does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings

from providers.adapters.base import Credential
from providers.catalog import ProviderInfo

from .errors import GatewayError, bad_request
from .http import Request
from .keys import hash_api_key
from .snapshot import KeyEntry, Snapshot


@dataclass(slots=True)
class Target:
    provider: ProviderInfo
    model_id: str
    member: str = ""  # "combo:provider/model" when the target is a combo member

    @property
    def name(self) -> str:
        return f"{self.provider.id}/{self.model_id}"


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise bad_request("Request body is empty; expected a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"Invalid JSON body: {exc}", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise bad_request(f"Request body must be a JSON object, got {type(payload).__name__}")
    return payload


def require_model(payload: dict[str, Any]) -> str:
    model = payload.get("model")
    if model is None:
        raise bad_request("Missing required field 'model'", param="model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("Field 'model' must be a non-empty string", param="model")
    return model.strip()


def optional_bool(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"Field '{name}' must be a boolean", param=name)
    return value


def presented_key(request: Request) -> str | None:
    auth = request.headers.get(b"authorization")
    if auth:
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = request.headers.get(b"x-api-key")
    if api_key:
        return api_key.decode("latin-1").strip() or None
    return None


def authenticate(request: Request, snap: Snapshot, key: str | None = None) -> KeyEntry | None:
    key = key if key is not None else presented_key(request)
    if key is None:
        if settings.REQUIRE_API_KEY:
            raise GatewayError(401, "Missing API key", code="missing_api_key")
        return None
    entry = snap.keys_by_hash.get(hash_api_key(key))
    if entry is None:
        raise GatewayError(401, "Invalid API key", code="invalid_api_key")
    if not entry.is_active:
        raise GatewayError(401, "API key is disabled", code="api_key_disabled")
    return entry


def resolve_model(model: str, snap: Snapshot) -> Target:
    catalog = snap.catalog
    prefix, slash, rest = model.partition("/")
    if slash:
        provider = catalog.resolve_provider(prefix)
        if provider is None:
            raise GatewayError(
                404, f"Unknown provider '{prefix}' in model '{model}'. Use provider/model.", code="model_not_found"
            )
        if not rest:
            raise bad_request(f"Model '{model}' names no model after the provider", param="model")
        return Target(provider=provider, model_id=rest)
    candidates = [p for p in catalog.providers.values() if p.model(model) is not None]
    usable = [p for p in candidates if p.id in snap.credentials] or candidates
    if not usable:
        raise GatewayError(
            404, f"Unknown model '{model}'. Use provider/model, e.g. openai/gpt-4o.", code="model_not_found"
        )
    if len(usable) > 1:
        names = ", ".join(f"{p.id}/{model}" for p in usable)
        raise bad_request(f"Ambiguous model '{model}': use one of {names}", param="model", code="ambiguous_model")
    return Target(provider=usable[0], model_id=model)


def authorize(key: KeyEntry | None, target: Target) -> None:
    if key is not None and not key.allows_model(target.name):
        raise GatewayError(403, f"This API key may not use model '{target.name}'", code="model_not_allowed")


def credentials_for(target: Target, snap: Snapshot) -> tuple[Credential, ...]:
    creds = snap.credentials.get(target.provider.id)
    if not creds:
        raise GatewayError(
            503,
            f"No active connection for provider '{target.provider.id}'. Add one in the admin or via /api/providers.",
            code="no_credentials",
        )
    return creds
