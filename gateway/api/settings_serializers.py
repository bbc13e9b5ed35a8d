"""JSON shapes of /api/settings and its sub-resources (camelCase on the wire)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from gateway.models import GatewaySettings, IpBan
from gateway.options.thinking import EFFORT_LEVELS, MAX_BUDGET
from gateway.services.settings import MAX_LIST_ENTRIES, MAX_PROMPT_CHARS

from .fields import StrictBooleanField, StrictCharField, StrictIntegerField, StrictSerializer


def _network_list(source: str) -> serializers.ListField:
    return serializers.ListField(
        source=source, child=StrictCharField(max_length=64), max_length=MAX_LIST_ENTRIES, required=False
    )


class GeneralInput(StrictSerializer):
    ignored_fields = frozenset({"effective", "updatedAt"})

    trustedProxies = _network_list("trusted_proxies")
    logRequests = StrictBooleanField(source="log_requests", allow_null=True, required=False)
    connectionSelection = StrictCharField(
        source="connection_selection", max_length=500, allow_blank=True, required=False
    )


class SystemPromptInput(StrictSerializer):
    enabled = StrictBooleanField(source="system_prompt_enabled", required=False)
    prompt = StrictCharField(
        source="system_prompt", max_length=MAX_PROMPT_CHARS, allow_blank=True, trim_whitespace=False, required=False
    )


class ThinkingBudgetInput(StrictSerializer):
    mode = serializers.ChoiceField(
        source="thinking_mode", choices=[m for m, _ in GatewaySettings.THINKING_MODES], required=False
    )
    customBudget = StrictIntegerField(
        source="thinking_custom_budget", min_value=0, max_value=MAX_BUDGET, required=False
    )
    effortLevel = serializers.ChoiceField(source="thinking_effort_level", choices=list(EFFORT_LEVELS), required=False)


class IpFilterInput(StrictSerializer):
    ignored_fields = frozenset({"tempBans", "yourIp"})

    enabled = StrictBooleanField(source="ip_filter_enabled", required=False)
    mode = serializers.ChoiceField(
        source="ip_filter_mode", choices=[m for m, _ in GatewaySettings.IP_FILTER_MODES], required=False
    )
    allowlist = _network_list("ip_allowlist")
    blocklist = _network_list("ip_blocklist")


class IpBanInput(StrictSerializer):
    ip = StrictCharField(max_length=64)
    seconds = StrictIntegerField(min_value=1)
    reason = StrictCharField(max_length=200, required=False, allow_blank=True, default="")


def ban_body(ban: IpBan) -> dict[str, Any]:
    left = max(0.0, (ban.until - timezone.now()).total_seconds())
    return {"ip": ban.address, "until": ban.until.isoformat(), "reason": ban.reason, "remainingSeconds": int(left)}


def general_body(row: GatewaySettings, effective: dict[str, Any]) -> dict[str, Any]:
    return {
        "trustedProxies": list(row.trusted_proxies),
        "logRequests": row.log_requests,
        "connectionSelection": row.connection_selection,
        "effective": effective,
    }


def system_prompt_body(row: GatewaySettings) -> dict[str, Any]:
    return {"enabled": row.system_prompt_enabled, "prompt": row.system_prompt}


def thinking_body(row: GatewaySettings) -> dict[str, Any]:
    return {
        "mode": row.thinking_mode,
        "customBudget": row.thinking_custom_budget,
        "effortLevel": row.thinking_effort_level,
    }


def ip_filter_body(row: GatewaySettings, bans: list[IpBan], your_ip: str) -> dict[str, Any]:
    return {
        "enabled": row.ip_filter_enabled,
        "mode": row.ip_filter_mode,
        "allowlist": list(row.ip_allowlist),
        "blocklist": list(row.ip_blocklist),
        "tempBans": [ban_body(ban) for ban in bans],
        "yourIp": your_ip,
    }
