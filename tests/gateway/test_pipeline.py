"""Unit tests of the pipeline steps, on a hand-built snapshot (no database)."""

from __future__ import annotations

import pytest

from gateway.errors import GatewayError
from gateway.http import Request
from gateway.keys import generate_api_key, hash_api_key
from gateway.pipeline import authenticate, authorize, credentials_for, parse_json_object, resolve_model
from gateway.snapshot import KeyEntry, Snapshot
from providers.adapters.base import Credential
from providers.catalog import get_catalog


def key_entry(**kw: object) -> KeyEntry:
    fields: dict[str, object] = dict(
        id=1,
        name="k",
        scope="inference",
        is_active=True,
        allowed_models=(),
        no_log=False,
        max_requests_per_minute=None,
        max_requests_per_day=None,
    )
    fields.update(kw)
    return KeyEntry(**fields)  # type: ignore[arg-type]


def snapshot(keys: dict[str, KeyEntry] | None = None, providers: tuple[str, ...] = ("openai",)) -> Snapshot:
    catalog = get_catalog()
    creds: dict[str, tuple[Credential, ...]] = {
        p: (
            Credential.build(connection_id=1, provider=catalog.providers[p], api_key="k", base_url="http://x", data={}),
        )
        for p in providers
    }
    return Snapshot(version=1, catalog=catalog, keys_by_hash=keys or {}, credentials=creds)


def request(headers: dict[str, str]) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    return Request(scope, receive=None)


def test_parse_json_object_rejects_non_objects() -> None:
    assert parse_json_object(b'{"a": 1}') == {"a": 1}
    for body in (b"", b"  ", b"[1]", b'"x"', b"{bad"):
        with pytest.raises(GatewayError) as info:
            parse_json_object(body)
        assert info.value.status == 400


def test_authenticate_bearer_and_x_api_key(settings: object) -> None:
    plain = generate_api_key()
    snap = snapshot({hash_api_key(plain): key_entry(id=7)})
    entry = authenticate(request({"Authorization": f"Bearer {plain}"}), snap)
    assert entry is not None and entry.id == 7
    entry = authenticate(request({"x-api-key": plain}), snap)
    assert entry is not None and entry.id == 7
    entry = authenticate(request({"Authorization": f"bearer   {plain}  "}), snap)
    assert entry is not None and entry.id == 7


def test_authenticate_missing_key_depends_on_require_api_key(settings: pytest.FixtureRequest) -> None:
    snap = snapshot()
    settings.REQUIRE_API_KEY = True  # type: ignore[attr-defined]
    with pytest.raises(GatewayError) as info:
        authenticate(request({}), snap)
    assert info.value.status == 401 and info.value.message == "Missing API key"
    settings.REQUIRE_API_KEY = False  # type: ignore[attr-defined]
    assert authenticate(request({}), snap) is None
    # Local mode still refuses a key it does not know.
    with pytest.raises(GatewayError):
        authenticate(request({"Authorization": "Bearer sk-unknown"}), snap)


def test_resolve_provider_model_and_alias() -> None:
    snap = snapshot()
    target = resolve_model("openai/gpt-4o", snap)
    assert (target.provider.id, target.model_id) == ("openai", "gpt-4o")
    # The model part may contain slashes.
    target = resolve_model("openai/ft:org/custom", snap)
    assert target.model_id == "ft:org/custom"


def test_resolve_bare_model_from_catalog() -> None:
    target = resolve_model("gpt-4o-mini", snapshot())
    assert target.name == "openai/gpt-4o-mini"


def test_resolve_unknown() -> None:
    with pytest.raises(GatewayError) as info:
        resolve_model("zzz/model", snapshot())
    assert info.value.status == 404 and info.value.code == "model_not_found"
    with pytest.raises(GatewayError) as info:
        resolve_model("not-a-model", snapshot())
    assert info.value.status == 404


def test_authorize_globs() -> None:
    snap = snapshot()
    key = key_entry(allowed_models=("openai/gpt-4o-*", "groq/*"))
    authorize(key, resolve_model("openai/gpt-4o-mini", snap))
    with pytest.raises(GatewayError) as info:
        authorize(key, resolve_model("openai/gpt-4o", snap))
    assert info.value.status == 403


def test_credentials_for_provider_without_connection() -> None:
    snap = snapshot(providers=())
    with pytest.raises(GatewayError) as info:
        credentials_for(resolve_model("openai/gpt-4o", snap), snap)
    assert info.value.status == 503 and info.value.code == "no_credentials"
