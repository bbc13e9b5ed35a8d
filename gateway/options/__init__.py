"""The operator's runtime settings as the data plane sees them: built from the
`GatewaySettings` row and the active `IpBan` rows when the config snapshot is built, so a
request reads plain attributes and never the database.

Each feature has its own module: `netfilter` (client address, IP filter), `system_prompt`,
`thinking`; `guard` applies the IP filter to every HTTP request (omniroute_site/asgi.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from .netfilter import Ban, NetSet, NetworkRules, parse_network
from .thinking import ThinkingPolicy


@dataclass(frozen=True)
class Options:
    # None: the global system prompt is off (disabled or empty).
    system_prompt: str | None = None
    # None: thinking mode "passthrough" (requests are untouched).
    thinking: ThinkingPolicy | None = None
    network: NetworkRules = field(default_factory=NetworkRules)
    # None: the LOG_REQUESTS environment value applies.
    log_requests: bool | None = None
    # "": the CONNECTION_SELECTION environment value applies.
    connection_selection: str = ""


def _valid_entries(entries: object) -> list[str]:
    """Stored list entries that still parse (the admin and API validate; this guards hand edits)."""
    valid = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            parse_network(entry)
        except ValueError:
            continue
        valid.append(entry)
    return valid


def _bans() -> tuple[Ban, ...]:
    from gateway.models import IpBan

    bans = []
    for row in IpBan.objects.filter(until__gt=timezone.now()):
        try:
            bans.append(Ban(parse_network(row.address), row.until.timestamp(), row.reason))
        except ValueError:
            continue
    return tuple(bans)


def load_options() -> Options:
    """Read the settings row and the bans (runs in the snapshot build, never per request)."""
    from gateway.models import GatewaySettings

    row = GatewaySettings.objects.filter(pk=1).first() or GatewaySettings(pk=1)
    network = NetworkRules(
        trusted=NetSet.of([*settings.TRUSTED_PROXIES, *_valid_entries(row.trusted_proxies)]),
        enabled=row.ip_filter_enabled,
        mode=row.ip_filter_mode,
        allow=NetSet.of(_valid_entries(row.ip_allowlist)),
        block=NetSet.of(_valid_entries(row.ip_blocklist)),
        bans=_bans(),
    )
    prompt = row.system_prompt if row.system_prompt_enabled and row.system_prompt.strip() else None
    thinking = None
    if row.thinking_mode != "passthrough":
        thinking = ThinkingPolicy(row.thinking_mode, row.thinking_custom_budget, row.thinking_effort_level)
    return Options(
        system_prompt=prompt,
        thinking=thinking,
        network=network,
        log_requests=row.log_requests,
        connection_selection=row.connection_selection.strip(),
    )
