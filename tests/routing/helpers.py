"""Shared pieces of the routing tests: connections to the fake provider, chat calls, the
management API, and reading who served a request."""

from __future__ import annotations

from typing import Any

import httpx
from openai.types.chat import ChatCompletionMessageParam

from gateway.keys import generate_api_key, hash_api_key, visible_prefix
from gateway.models import ApiKey, Combo, ResilienceProfile
from providers.models import ProviderConnection
from tests.fakes.provider import FakeProvider, RecordedRequest
from tests.live_server import LiveGateway

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def make_key(scope: str = ApiKey.SCOPE_INFERENCE) -> str:
    plain = generate_api_key()
    ApiKey.objects.create(name=f"{scope} key", scope=scope, key_hash=hash_api_key(plain), prefix=visible_prefix(plain))
    return plain


def connect(
    fake: FakeProvider | str, *, provider: str = "openai", key: str = "sk-a", priority: int = 1, **fields: Any
) -> int:
    """A connection of `provider` whose upstream is the fake provider (or the given base URL)
    and whose API key, seen upstream as `Bearer <key>`, names it in the tests."""
    base_url = fake if isinstance(fake, str) else fake.openai_base_url
    conn = ProviderConnection(provider=provider, name=key, priority=priority, base_url=base_url, **fields)
    conn.set_api_key(key)
    conn.save()
    return conn.pk


def combo(name: str, members: list[Any], strategy: str = "priority") -> Combo:
    return Combo.objects.create(name=name, members=members, strategy=strategy)


def profile(**numbers: float) -> None:
    """Set the numbers of the profile API-key providers use (created from the defaults)."""
    row, _ = ResilienceProfile.objects.get_or_create(auth_type="apikey")
    for name, value in numbers.items():
        setattr(row, name, value)
    row.save()


def chat(
    gateway: LiveGateway, key: str, model: str, *, stream: bool = False, path: str = "/chat/completions", **body: Any
) -> httpx.Response:
    payload = {"model": model, "messages": HI, **body}
    if stream:
        payload["stream"] = True
    return httpx.post(f"{gateway.base_url}{path}", json=payload, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def served(resp: httpx.Response) -> str:
    """provider/model that answered, from the gateway's headers."""
    return f"{resp.headers['x-omniroute-provider']}/{resp.headers['x-omniroute-model']}"


def keys_used(requests: list[RecordedRequest]) -> list[str]:
    """The upstream API key of each recorded request: which connection was called."""
    return [r.headers.get("authorization", "").removeprefix("Bearer ") for r in requests]


def models_sent(requests: list[RecordedRequest]) -> list[str]:
    return [r.json["model"] for r in requests]


def error_message(resp: httpx.Response) -> str:
    return str(resp.json()["error"]["message"])


class Admin:
    """The management API over HTTP with an admin-scope key."""

    def __init__(self, gateway: LiveGateway) -> None:
        self.url = gateway.url
        self.headers = {"Authorization": f"Bearer {make_key(ApiKey.SCOPE_ADMIN)}"}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}/api{path}", headers=self.headers, timeout=30)

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(f"{self.url}/api{path}", json=body or {}, headers=self.headers, timeout=60)

    def put(self, path: str, body: Any) -> httpx.Response:
        return httpx.put(f"{self.url}/api{path}", json=body, headers=self.headers, timeout=30)

    def connection(self, connection_id: int) -> dict[str, Any]:
        resp = self.get("/rate-limits")
        assert resp.status_code == 200, resp.text
        [row] = [c for c in resp.json()["connections"] if c["connectionId"] == connection_id]
        return dict(row)

    def cooldown(self, connection_id: int, model: str) -> dict[str, Any]:
        """The connection's cooldown for one model (rate limits); {} when there is none."""
        row = self.connection(connection_id)
        found = [m for m in row["models"] if m["model"] == model]
        return dict(found[0]) if found else {}

    def breaker(self, provider: str) -> dict[str, Any]:
        resp = self.get("/rate-limits")
        assert resp.status_code == 200, resp.text
        [row] = [b for b in resp.json()["breakers"] if b["provider"] == provider and "model" not in b]
        return dict(row)
