"""Client addresses and the IP filter, pre-parsed for a cheap check per request.

The client address is the socket peer, or, when the peer is a trusted proxy, the right-most
address of X-Forwarded-For that is not itself a trusted proxy (each proxy appends the
address it saw, so everything left of the first untrusted hop could be forged by the
client). Networks are parsed once, when the config snapshot is built.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A Unix-socket connection has no peer address; it is local.
UNIX_SOCKET_PEER = "127.0.0.1"
# ASGI scope key under which the IP guard (gateway/options/guard.py) leaves the client address.
CLIENT_IP_KEY = "omniroute.client_ip"


def parse_network(text: str) -> IPNetwork:
    """An IP ("10.0.0.1", "::1") or a CIDR network ("10.0.0.0/8", "2001:db8::/32"). ValueError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be an IP address or a CIDR network")
    raw = text.strip()
    try:
        network = ipaddress.ip_network(raw, strict=False)
    except ValueError:
        raise ValueError(f"{raw!r} is not an IP address or a CIDR network") from None
    return _unmapped_network(network)


def _unmapped_network(network: IPNetwork) -> IPNetwork:
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.ipv4_mapped and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


# The longest textual IP ("ffff:…:255.255.255.255" is 45 characters) plus brackets and spaces.
_MAX_ADDRESS_CHARS = 64


def parse_address(text: str) -> IPAddress | None:
    """An address as a client may present it; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4."""
    return _parse_address(text) if len(text) <= _MAX_ADDRESS_CHARS else None


@lru_cache(maxsize=4096)
def _parse_address(text: str) -> IPAddress | None:
    """Cached: the same clients come back, and parsing is the costly part of a check. Bounded
    in entries and (by parse_address) in entry size."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


Table = tuple[tuple[int, frozenset[int]], ...]


@dataclass(frozen=True, slots=True)
class NetSet:
    """Networks (exact addresses are /32 or /128 networks) as sets of network numbers per
    prefix length, one table per IP version: a membership test is one shift and one set
    lookup per distinct prefix length, however many entries there are."""

    v4: Table = ()  # ((host bits, {address >> host bits}), ...), most specific first
    v6: Table = ()

    @classmethod
    def of(cls, entries: Iterable[str]) -> NetSet:
        by_bits: dict[tuple[int, int], set[int]] = {}
        for entry in entries:
            network = parse_network(entry)
            host_bits = network.max_prefixlen - network.prefixlen
            by_bits.setdefault((network.version, host_bits), set()).add(int(network.network_address) >> host_bits)

        def table(version: int) -> Table:
            return tuple((bits, frozenset(nets)) for (v, bits), nets in sorted(by_bits.items()) if v == version)

        return cls(table(4), table(6))

    def __contains__(self, address: IPAddress) -> bool:
        number = int(address)
        # A plain loop: any() over a generator costs more than the lookups on this hot path.
        for bits, nets in self.v4 if address.version == 4 else self.v6:  # noqa: SIM110
            if number >> bits in nets:
                return True
        return False

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)


@dataclass(frozen=True, slots=True)
class Ban:
    network: IPNetwork
    until: float  # epoch seconds
    reason: str


@dataclass(frozen=True)
class NetworkRules:
    """Trusted proxies and the IP filter, as the snapshot holds them."""

    trusted: NetSet = field(default_factory=NetSet)
    enabled: bool = False
    mode: str = "blocklist"
    allow: NetSet = field(default_factory=NetSet)
    block: NetSet = field(default_factory=NetSet)
    bans: tuple[Ban, ...] = ()

    @property
    def active(self) -> bool:
        """Whether requests need to look at their address at all."""
        return self.enabled or bool(self.trusted)

    def client_ip(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer, or the right-most untrusted X-Forwarded-For hop
        when the peer is a trusted proxy."""
        peer = peer or UNIX_SOCKET_PEER
        if not forwarded_for or not self.trusted:
            return peer
        address = parse_address(peer)
        if address is None or address not in self.trusted:
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            hop_address = parse_address(hop)
            if hop_address is None:
                break  # a malformed hop: the last well-formed one is as far as we can trust
            client = hop
            if hop_address not in self.trusted:
                break
        return client

    def denial(self, ip: str, *, management: bool) -> str | None:
        """Why this client may not pass, or None. Loopback always reaches the management plane
        (lock-out safety: an operator on the host can always fix the filter)."""
        if not self.enabled:
            return None
        address = parse_address(ip)
        if address is None:
            return None if self.mode == "blocklist" and not self.bans else f"Client address {ip!r} is not recognised"
        if management and address.is_loopback:
            return None
        if self.bans:
            now = time.time()
            for ban in self.bans:
                if ban.until > now and address.version == ban.network.version and address in ban.network:
                    left = int(ban.until - now) + 1
                    return f"Client address {address} is temporarily banned ({left} s left){_reason(ban.reason)}"
        if self.mode == "allowlist":
            return None if address in self.allow else f"Client address {address} is not in the IP allowlist"
        return f"Client address {address} is in the IP blocklist" if address in self.block else None


def _reason(reason: str) -> str:
    return f": {reason}" if reason else ""


def request_client_ip(request: object) -> str:
    """The client address of a Django request, as the IP guard resolved it; REMOTE_ADDR when
    the guard had no reason to resolve it (no proxy trusted, no filter) or the request did not
    come through the ASGI entrance (the tests' Django client)."""
    scope = getattr(request, "scope", None)
    if isinstance(scope, dict) and scope.get(CLIENT_IP_KEY):
        return str(scope[CLIENT_IP_KEY])
    meta = getattr(request, "META", {})
    return str(meta.get("REMOTE_ADDR") or "")
