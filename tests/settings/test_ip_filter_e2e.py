"""The IP filter through the running server, on both planes: blocklists and allowlists with
exact addresses and CIDR networks (v4 and v6), X-Forwarded-For believed only from a trusted
proxy, temporary bans, the 403 answers, loopback's access to management, the audit address."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
import uvicorn

from tests.e2e.test_openai_chat import make_key
from tests.factories import ApiKeyFactory
from tests.live_server import LiveGateway
from tests.settings.helpers import configure
from usage.models import AuditEntry

pytestmark = pytest.mark.e2e

BLOCKED_V4, BLOCKED_V6, FINE = "203.0.113.7", "2001:db8::9", "198.51.100.1"


@pytest.fixture
def keys(gateway: LiveGateway) -> tuple[str, str]:
    """(inference key, admin key)"""
    _, admin = ApiKeyFactory.create_with_key(scope="admin")
    return make_key(), admin


def get(url: str, key: str, xff: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    if xff is not None:
        headers["X-Forwarded-For"] = xff
    return httpx.get(url, headers=headers, timeout=10)


def assert_forbidden(response: httpx.Response, needle: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    message = error if isinstance(error, str) else error["message"]  # Ollama's errors are plain strings
    assert needle in message, error


def test_blocklist_behind_a_trusted_proxy_on_both_planes(gateway: LiveGateway, keys: tuple[str, str]) -> None:
    inference, admin = keys
    configure(trusted_proxies=["127.0.0.1"], ip_filter_enabled=True, ip_blocklist=["203.0.113.0/24", "2001:db8::/32"])
    for xff in (BLOCKED_V4, BLOCKED_V6, f"::ffff:{BLOCKED_V4}"):
        assert_forbidden(get(f"{gateway.base_url}/models", inference, xff), "IP blocklist")
        assert_forbidden(get(f"{gateway.url}/api/settings/ip-filter", admin, xff), "IP blocklist")
    assert_forbidden(get(f"{gateway.url}/v1beta/models", inference, BLOCKED_V4), "blocklist")
    assert_forbidden(get(f"{gateway.url}/api/tags", inference, BLOCKED_V6), "blocklist")
    assert get(f"{gateway.base_url}/models", inference, FINE).status_code == 200
    assert get(f"{gateway.url}/api/settings/ip-filter", admin, FINE).json()["yourIp"] == FINE
    # The right-most untrusted hop is the client; what it put on its left is its own claim.
    assert get(f"{gateway.base_url}/models", inference, f"{BLOCKED_V4}, {FINE}").status_code == 200
    assert_forbidden(get(f"{gateway.base_url}/models", inference, f"{FINE}, {BLOCKED_V4}"), "blocklist")
    # A 403 in the client's own format: the Anthropic SDK sees a PermissionDeniedError.
    claude = anthropic.Anthropic(
        base_url=gateway.url, api_key=inference, max_retries=0, default_headers={"X-Forwarded-For": BLOCKED_V4}
    )
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        claude.messages.create(
            model="anthropic/claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "permission_error"


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(gateway: LiveGateway, keys: tuple[str, str]) -> None:
    inference, admin = keys
    configure(ip_filter_enabled=True, ip_filter_mode="allowlist", ip_allowlist=[FINE])
    assert_forbidden(get(f"{gateway.base_url}/models", inference, FINE), "127.0.0.1 is not in the IP allowlist")
    assert_forbidden(get(f"{gateway.url}/v1beta/models", inference), "allowlist")
    assert_forbidden(get(f"{gateway.url}/api/tags", inference), "allowlist")  # data plane despite /api
    # Loopback is never locked out of management (the operator on the host can undo this).
    assert get(f"{gateway.url}/api/settings/ip-filter", admin, FINE).json()["yourIp"] == "127.0.0.1"
    configure(ip_allowlist=["127.0.0.0/8"])
    assert get(f"{gateway.base_url}/models", inference).status_code == 200


def test_temporary_ban_through_the_api(gateway: LiveGateway, keys: tuple[str, str]) -> None:
    inference, admin = keys
    configure(trusted_proxies=["127.0.0.1"], ip_filter_enabled=True)
    headers = {"Authorization": f"Bearer {admin}"}
    created = httpx.post(
        f"{gateway.url}/api/settings/ip-filter/bans", json={"ip": "2001:db8::/48", "seconds": 120}, headers=headers
    )
    assert created.status_code == 201, created.text
    assert_forbidden(get(f"{gateway.base_url}/models", inference, BLOCKED_V6), "temporarily banned")
    assert get(f"{gateway.base_url}/models", inference, FINE).status_code == 200
    removed = httpx.delete(
        f"{gateway.url}/api/settings/ip-filter/bans", params={"ip": "2001:db8::/48"}, headers=headers
    )
    assert removed.json() == {"removed": 1}
    assert get(f"{gateway.base_url}/models", inference, BLOCKED_V6).status_code == 200


def test_filter_switched_on_and_off_through_the_api(gateway: LiveGateway, keys: tuple[str, str]) -> None:
    inference, admin = keys
    headers = {"Authorization": f"Bearer {admin}", "X-Forwarded-For": FINE}
    configure(trusted_proxies=["127.0.0.1"])
    on = httpx.put(
        f"{gateway.url}/api/settings/ip-filter", json={"enabled": True, "blocklist": [BLOCKED_V4]}, headers=headers
    )
    assert on.status_code == 200, on.text
    assert_forbidden(get(f"{gateway.base_url}/models", inference, BLOCKED_V4), "blocklist")
    # The audit trail names the client behind the proxy, not the proxy.
    entry = AuditEntry.objects.filter(target_type="gateway.GatewaySettings").order_by("-id").first()
    assert entry is not None and entry.actor_ip == FINE
    off = httpx.put(f"{gateway.url}/api/settings/ip-filter", json={"enabled": False}, headers=headers)
    assert off.status_code == 200
    assert get(f"{gateway.base_url}/models", inference, BLOCKED_V4).status_code == 200


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture
def ipv6_server(gateway: LiveGateway) -> Iterator[str]:
    """The same application served on [::1], so that the socket peer is an IPv6 address."""
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine (the X-Forwarded-For tests cover IPv6)")
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        "omniroute_site.asgi:application",
        host="::1",
        port=port,
        lifespan="off",
        log_level="warning",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://[::1]:{port}"
    server.should_exit = True
    thread.join(10)


def test_ipv6_peer(ipv6_server: str, keys: tuple[str, str]) -> None:
    inference, admin = keys
    configure(ip_filter_enabled=True, ip_blocklist=["::1/128"])
    assert_forbidden(get(f"{ipv6_server}/v1/models", inference), "::1 is in the IP blocklist")
    assert get(f"{ipv6_server}/api/settings/ip-filter", admin).json()["yourIp"] == "::1"
    configure(ip_filter_mode="allowlist", ip_allowlist=["::/64"])  # ::1 is in ::/64
    assert get(f"{ipv6_server}/v1/models", inference).status_code == 200


def test_login_throttle_counts_the_client_behind_the_proxy(gateway: LiveGateway) -> None:
    from django.core.cache import cache

    from gateway.services import LOGIN_MAX_FAILURES

    configure(trusted_proxies=["127.0.0.1"])
    url = f"{gateway.url}/api/auth/login"
    try:
        for _ in range(LOGIN_MAX_FAILURES):
            assert (
                httpx.post(url, json={"password": "wrong"}, headers={"X-Forwarded-For": "203.0.113.77"}).status_code
                == 401
            )
        assert (
            httpx.post(url, json={"password": "wrong"}, headers={"X-Forwarded-For": "203.0.113.77"}).status_code == 429
        )
        # Another client behind the same proxy is not throttled for the first one's failures.
        assert (
            httpx.post(url, json={"password": "wrong"}, headers={"X-Forwarded-For": "198.51.100.77"}).status_code == 401
        )
    finally:
        cache.clear()
