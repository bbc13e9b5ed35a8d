"""/api/settings and its sub-resources: defaults, partial updates, strict input (400, never
500), persistence in the snapshot, the audit trail, lock-out safety, bans, the admin form."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from gateway.models import GatewaySettings, IpBan
from gateway.snapshot import build_snapshot
from tests.factories import ApiKeyFactory
from usage.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(admin_api: APIClient) -> APIClient:
    return admin_api


def put(client: APIClient, url: str, body: Any, **extra: Any) -> Any:
    return client.put(url, body, format="json", **extra)


def test_defaults(client: APIClient) -> None:
    assert client.get("/api/settings/system-prompt").json() == {"enabled": False, "prompt": ""}
    assert client.get("/api/settings/thinking-budget").json() == {
        "mode": "passthrough",
        "customBudget": 10240,
        "effortLevel": "medium",
    }
    ip = client.get("/api/settings/ip-filter").json()
    assert ip == {
        "enabled": False,
        "mode": "blocklist",
        "allowlist": [],
        "blocklist": [],
        "tempBans": [],
        "yourIp": "127.0.0.1",
    }
    general = client.get("/api/settings").json()
    assert general["trustedProxies"] == [] and general["logRequests"] is None and general["connectionSelection"] == ""
    assert general["effective"] == {"trustedProxies": [], "logRequests": False, "connectionSelection": "priority"}


def test_partial_updates_persist_and_reach_the_snapshot(client: APIClient) -> None:
    assert put(client, "/api/settings/system-prompt", {"prompt": "Be brief."}).json() == {
        "enabled": False,
        "prompt": "Be brief.",
    }
    assert client.patch("/api/settings/system-prompt", {"enabled": True}, format="json").json()["enabled"] is True
    body = put(client, "/api/settings/thinking-budget", {"mode": "custom", "customBudget": 4000}).json()
    assert body == {"mode": "custom", "customBudget": 4000, "effortLevel": "medium"}
    ip = put(
        client,
        "/api/settings/ip-filter",
        {"enabled": True, "blocklist": ["203.0.113.0/24", "2001:DB8::1", "203.0.113.0/24"]},
    ).json()
    assert ip["blocklist"] == ["203.0.113.0/24", "2001:db8::1"]  # canonical spelling, no duplicates
    general = put(client, "/api/settings", {"trustedProxies": ["10.0.0.0/8"], "logRequests": True}).json()
    assert general["effective"]["trustedProxies"] == ["10.0.0.0/8"] and general["effective"]["logRequests"] is True

    options = build_snapshot().options  # what a freshly started process reads from the database
    assert options.system_prompt == "Be brief."
    assert options.thinking is not None and (options.thinking.mode, options.thinking.custom_budget) == ("custom", 4000)
    assert options.network.enabled and options.network.denial("203.0.113.5", management=False)
    assert options.network.client_ip("10.1.1.1", "198.51.100.1") == "198.51.100.1"
    assert options.log_requests is True


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/settings/system-prompt", {"prompt": 5}, "prompt"),
        ("/api/settings/system-prompt", {"enabled": "yes"}, "enabled"),
        ("/api/settings/system-prompt", {"prompt": "x" * 50_001}, "prompt"),
        ("/api/settings/system-prompt", {"position": "end"}, "position"),
        ("/api/settings/thinking-budget", {"mode": "turbo"}, "mode"),
        ("/api/settings/thinking-budget", {"customBudget": -1}, "customBudget"),
        ("/api/settings/thinking-budget", {"customBudget": 131073}, "customBudget"),
        ("/api/settings/thinking-budget", {"customBudget": "100"}, "customBudget"),
        ("/api/settings/thinking-budget", {"effortLevel": "max"}, "effortLevel"),
        ("/api/settings/ip-filter", {"mode": "blacklist"}, "mode"),
        ("/api/settings/ip-filter", {"blocklist": ["10.0.0.0/33"]}, "blocklist"),
        ("/api/settings/ip-filter", {"allowlist": "10.0.0.1"}, "allowlist"),
        ("/api/settings/ip-filter", {"allowlist": [7]}, "allowlist"),
        ("/api/settings", {"trustedProxies": ["proxy.local"]}, "trustedProxies"),
        ("/api/settings", {"connectionSelection": "fastest"}, "connectionSelection"),
        ("/api/settings", {"cacheEnabled": True}, "cacheEnabled"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client: APIClient, url: str, body: Any, field: str) -> None:
    response = put(client, url, body)
    assert response.status_code == 400, response.content
    details = response.json()["error"]["details"]
    assert any((d["field"] or "").startswith(field) for d in details), details
    assert not GatewaySettings.objects.exists() or GatewaySettings.objects.get().ip_blocklist == []


@pytest.mark.parametrize("body", [{}, [], "text", None])
def test_empty_or_non_object_body_is_a_400(client: APIClient, body: Any) -> None:
    assert put(client, "/api/settings/thinking-budget", body).status_code == 400


def test_inference_keys_and_anonymous_callers_cannot_manage() -> None:
    _, plain = ApiKeyFactory.create_with_key(scope="inference")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get("/api/settings/ip-filter").status_code == 403
    assert APIClient().put("/api/settings/system-prompt", {"enabled": True}, format="json").status_code == 401


def test_changes_are_audited(client: APIClient) -> None:
    put(client, "/api/settings/system-prompt", {"enabled": True, "prompt": "Hello"})
    entry = AuditEntry.objects.filter(target_type="gateway.GatewaySettings").order_by("-id").first()
    assert entry is not None, list(AuditEntry.objects.values_list("target_type", flat=True))
    assert "system_prompt" in str(entry.changes) or "systemPrompt" in str(entry.changes)


def test_a_change_that_locks_the_caller_out_is_refused(client: APIClient) -> None:
    remote = {"REMOTE_ADDR": "198.51.100.20"}
    response = put(
        client,
        "/api/settings/ip-filter",
        {"enabled": True, "mode": "allowlist", "allowlist": ["203.0.113.0/24"]},
        **remote,
    )
    assert response.status_code == 400 and "lock you out" in response.json()["error"]["message"]
    ok = put(
        client,
        "/api/settings/ip-filter",
        {"enabled": True, "mode": "allowlist", "allowlist": ["198.51.100.0/24"]},
        **remote,
    )
    assert ok.status_code == 200 and ok.json()["yourIp"] == "198.51.100.20"
    # Loopback is never locked out of the management plane.
    assert put(client, "/api/settings/ip-filter", {"allowlist": ["192.0.2.1"]}).status_code == 200


def test_temporary_bans(client: APIClient) -> None:
    created = client.post(
        "/api/settings/ip-filter/bans", {"ip": "203.0.113.9", "seconds": 60, "reason": "abuse"}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["ip"] == "203.0.113.9" and 0 < created.json()["remainingSeconds"] <= 60
    bans = client.get("/api/settings/ip-filter").json()["tempBans"]
    assert [(b["ip"], b["reason"]) for b in bans] == [("203.0.113.9", "abuse")]
    assert build_snapshot().options.network.bans[0].reason == "abuse"
    for bad in (
        {"ip": "nope", "seconds": 5},
        {"ip": "10.0.0.1", "seconds": 0},
        {"ip": "10.0.0.1"},
        {"ip": "10.0.0.1", "seconds": 5, "x": 1},
    ):
        assert client.post("/api/settings/ip-filter/bans", bad, format="json").status_code == 400, bad
    own = client.post(
        "/api/settings/ip-filter/bans",
        {"ip": "198.51.100.0/24", "seconds": 60},
        format="json",
        REMOTE_ADDR="198.51.100.4",
    )
    assert own.status_code == 400 and "lock you out" in own.json()["error"]["message"]
    assert client.delete("/api/settings/ip-filter/bans?ip=203.0.113.9").json() == {"removed": 1}
    assert client.delete("/api/settings/ip-filter/bans").status_code == 400
    assert not IpBan.objects.exists()


def _admin_form(**overrides: Any) -> dict[str, Any]:
    form = {
        "system_prompt_enabled": "on",
        "system_prompt": "From the admin",
        "thinking_mode": "adaptive",
        "thinking_custom_budget": "6000",
        "thinking_effort_level": "low",
        "ip_filter_mode": "blocklist",
        "ip_allowlist": "",
        "ip_blocklist": "203.0.113.0/24\n2001:db8::/32, 192.0.2.7",
        "trusted_proxies": "",
        "log_requests": "unknown",
        "connection_selection": "",
    }
    return {**form, **overrides}


def test_admin_form_edits_the_settings(staff: Client) -> None:
    page = staff.get("/admin/gateway/gatewaysettings/", follow=True)
    assert page.status_code == 200 and b"Thinking budget" in page.content
    response = staff.post("/admin/gateway/gatewaysettings/1/change/", _admin_form())
    assert response.status_code == 302, response.content[:2000]
    row = GatewaySettings.objects.get()
    assert row.ip_blocklist == ["203.0.113.0/24", "2001:db8::/32", "192.0.2.7"]
    assert (row.thinking_mode, row.thinking_custom_budget, row.system_prompt) == ("adaptive", 6000, "From the admin")
    bad = staff.post("/admin/gateway/gatewaysettings/1/change/", _admin_form(ip_blocklist="10.0.0.0/99"))
    assert bad.status_code == 200 and b"not an IP address" in bad.content
    assert (
        staff.post(
            "/admin/gateway/ipban/add/", {"address": "bad", "until_0": "2030-01-01", "until_1": "00:00:00"}
        ).status_code
        == 200
    )
    assert not IpBan.objects.exists()
