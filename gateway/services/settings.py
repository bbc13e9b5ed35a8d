"""Writes of the operator's runtime settings (the one `GatewaySettings` row) and IP bans.

Validation lives here so that the API and the admin refuse the same things. Saving moves
the config version (gateway/signals.py): every process applies the change within
CONFIG_POLL_INTERVAL, without a restart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..api.errors import InvalidInput
from ..api.fields import to_camel
from ..models import GatewaySettings, IpBan
from ..options.netfilter import NetSet, NetworkRules, parse_address, parse_network
from ..options.thinking import EFFORT_LEVELS, MAX_BUDGET
from ..routing import SELECTION_STRATEGIES

MAX_PROMPT_CHARS = 50_000
MAX_LIST_ENTRIES = 1_000
MAX_BAN_SECONDS = 365 * 86_400
LIST_FIELDS = ("ip_allowlist", "ip_blocklist", "trusted_proxies")


def settings_get() -> GatewaySettings:
    """The settings row; an unsaved row with the defaults when none was ever saved."""
    return GatewaySettings.objects.filter(pk=1).first() or GatewaySettings(pk=1)


def network_list_normalize(entries: Iterable[Any], *, field: str) -> list[str]:
    """IPs and CIDR networks, in canonical spelling, duplicates dropped; 400 naming the entry."""
    result: list[str] = []
    for index, entry in enumerate(entries):
        try:
            network = parse_network(entry)
        except ValueError as exc:
            raise InvalidInput(f"{exc} (entry {index})", field=field) from None
        text = str(network.network_address) if network.num_addresses == 1 else str(network)
        if text not in result:
            result.append(text)
    if len(result) > MAX_LIST_ENTRIES:
        raise InvalidInput(f"{to_camel(field)} may hold at most {MAX_LIST_ENTRIES} entries", field=field)
    return result


def _connection_selection_validate(raw: str) -> str:
    for entry in (part.strip() for part in raw.split(",")):
        strategy = entry.partition("=")[2] if "=" in entry else entry
        if entry and strategy.strip().lower() not in SELECTION_STRATEGIES:
            choices = " or ".join(sorted(SELECTION_STRATEGIES))
            raise InvalidInput(
                f"connectionSelection: unknown strategy {strategy.strip()!r} (use {choices})",
                field="connection_selection",
            )
    return raw.strip()


def settings_validate(row: GatewaySettings) -> None:
    """Ranges and choices of every field; list fields are normalized in place."""
    if len(row.system_prompt) > MAX_PROMPT_CHARS:
        raise InvalidInput(f"prompt may be at most {MAX_PROMPT_CHARS} characters", field="system_prompt")
    if row.thinking_mode not in dict(GatewaySettings.THINKING_MODES):
        raise InvalidInput("mode must be passthrough, auto, custom or adaptive", field="thinking_mode")
    if not 0 <= row.thinking_custom_budget <= MAX_BUDGET:
        raise InvalidInput(f"customBudget must be between 0 and {MAX_BUDGET}", field="thinking_custom_budget")
    if row.thinking_effort_level not in EFFORT_LEVELS:
        raise InvalidInput(f"effortLevel must be one of {', '.join(EFFORT_LEVELS)}", field="thinking_effort_level")
    if row.ip_filter_mode not in dict(GatewaySettings.IP_FILTER_MODES):
        raise InvalidInput("mode must be allowlist or blocklist", field="ip_filter_mode")
    for name in LIST_FIELDS:
        value = getattr(row, name)
        if not isinstance(value, list):
            raise InvalidInput(f"{to_camel(name)} must be a list", field=name)
        setattr(row, name, network_list_normalize(value, field=name))
    row.connection_selection = _connection_selection_validate(row.connection_selection)


def lockout_check(row: GatewaySettings, caller_ip: str | None) -> None:
    """Refuse a filter that would shut out the operator making the change (loopback never is)."""
    if not caller_ip or not row.ip_filter_enabled:
        return
    rules = NetworkRules(
        enabled=True,
        mode=row.ip_filter_mode,
        allow=NetSet.of(row.ip_allowlist),
        block=NetSet.of(row.ip_blocklist),
    )
    reason = rules.denial(caller_ip, management=True)
    if reason is not None:
        raise InvalidInput(f"This change would lock you out: {reason}", field="ip_filter_enabled")


def settings_update(*, changes: Mapping[str, Any], caller_ip: str | None = None) -> GatewaySettings:
    """Partial update of the settings row (model field names), validated as a whole."""
    if not changes:
        raise InvalidInput("Nothing to change: send at least one field")
    with transaction.atomic():
        GatewaySettings.objects.get_or_create(pk=1)
        row = GatewaySettings.objects.select_for_update().get(pk=1)
        for name, value in changes.items():
            setattr(row, name, value)
        settings_validate(row)
        lockout_check(row, caller_ip)
        row.save()
    return row


def trusted_proxies_effective(row: GatewaySettings) -> list[str]:
    return list(dict.fromkeys([*settings.TRUSTED_PROXIES, *row.trusted_proxies]))


def ip_ban_list() -> list[IpBan]:
    return list(IpBan.objects.filter(until__gt=timezone.now()))


def ip_ban_create(*, address: str, seconds: int, reason: str = "", caller_ip: str | None = None) -> IpBan:
    """Ban an address or network for `seconds`; replaces an earlier ban of the same address.
    A ban that covers the caller's own (non-loopback) address is refused."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= MAX_BAN_SECONDS:
        raise InvalidInput(f"seconds must be an integer between 1 and {MAX_BAN_SECONDS}", field="seconds")
    (normalized,) = network_list_normalize([address], field="ip")
    caller = parse_address(caller_ip or "")
    if caller is not None and not caller.is_loopback and caller in NetSet.of([normalized]):
        raise InvalidInput(f"This ban would lock you out: it covers your address {caller}", field="ip")
    with transaction.atomic():
        IpBan.objects.filter(until__lte=timezone.now()).delete()
        IpBan.objects.filter(address=normalized).delete()
        return IpBan.objects.create(
            address=normalized, until=timezone.now() + timedelta(seconds=seconds), reason=reason[:200]
        )


def ip_ban_delete(*, address: str) -> int:
    (normalized,) = network_list_normalize([address], field="ip")
    deleted, _ = IpBan.objects.filter(address=normalized).delete()
    return deleted
