"""Which targets sit on a directly attached link, and which addresses of an attached IPv4 subnet
answer for no single host (its network and broadcast addresses).

Pure: `parse_routes4` / `parse_routes6` take the text of the kernel's route tables
(/proc/<task>/net/route, /proc/<task>/net/ipv6_route) and `Links` answers per address by longest
prefix. Reading those files is the caller's job (scan/neighbours.py). Worked example:

    eth0  000012C6  00000000  0001 ... 00FCFFFF     -> 198.18.0.0/22 on link eth0
    eth0  00000000  010012C6  0003 ... 00000000     -> default via 198.18.0.1 (not on link)
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ppsguard.model.net import IPAddress, IPNetwork

_RTF_GATEWAY = 0x2
_RTF_REJECT = 0x200
_RTF_LOCAL = 0x80000000


@dataclass(frozen=True, slots=True)
class Route:
    """One route: `gateway` None means the prefix is on the link of `interface`."""

    network: IPNetwork
    interface: str
    gateway: IPAddress | None = None


def parse_routes4(text: str) -> list[Route]:
    """Routes of /proc/net/route (IPv4, main table; addresses in host byte order, hex)."""
    routes: list[Route] = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            dest, gateway, flags, mask = (int(cols[i], 16) for i in (1, 2, 3, 7))
        except ValueError:
            continue
        if flags & _RTF_REJECT or not flags & 1:
            continue
        network = ipaddress.IPv4Network(
            (struct.pack("=I", dest), bin(mask).count("1")), strict=False
        )
        via = ipaddress.IPv4Address(struct.pack("=I", gateway)) if flags & _RTF_GATEWAY else None
        routes.append(Route(network, cols[0], via))
    return routes


def parse_routes6(text: str) -> list[Route]:
    """Routes of /proc/net/ipv6_route (all tables; local, multicast and loopback ones dropped)."""
    routes: list[Route] = []
    for line in text.splitlines():
        cols = line.split()
        if len(cols) < 10:
            continue
        try:
            dest = ipaddress.IPv6Address(bytes.fromhex(cols[0]))
            length, flags = int(cols[1], 16), int(cols[8], 16)
            hop = ipaddress.IPv6Address(bytes.fromhex(cols[4]))
        except ValueError:
            continue
        if flags & (_RTF_REJECT | _RTF_LOCAL) or cols[9] == "lo" or dest.is_multicast:
            continue
        via = hop if flags & _RTF_GATEWAY and not hop.is_unspecified else None
        routes.append(Route(ipaddress.IPv6Network((dest, length)), cols[9], via))
    return routes


def parse_local4(fib_trie: str) -> set[IPAddress]:
    """This namespace's own IPv4 addresses, from /proc/net/fib_trie ("/32 host LOCAL" leaves)."""
    local: set[IPAddress] = set()
    last: str | None = None
    for line in fib_trie.splitlines():
        text = line.strip()
        if text.startswith("|-- "):
            last = text[4:]
        elif last is not None and text.startswith("/32 host LOCAL"):
            try:
                local.add(ipaddress.IPv4Address(last))
            except ValueError:
                continue
    return local


def parse_local6(if_inet6: str) -> set[IPAddress]:
    """This namespace's own IPv6 addresses, from /proc/net/if_inet6 (first column, hex)."""
    local: set[IPAddress] = set()
    for line in if_inet6.splitlines():
        cols = line.split()
        try:
            local.add(ipaddress.IPv6Address(bytes.fromhex(cols[0])))
        except (ValueError, IndexError):
            continue
    return local


class Links:
    """Longest-prefix lookups over a route list (integers, not `ipaddress` containment: a /16
    sweep asks 65,536 times), and this namespace's own addresses."""

    def __init__(self, routes: list[Route], local: set[IPAddress] | None = None) -> None:
        self.local = local or set()
        ordered = sorted(routes, key=lambda r: r.network.prefixlen, reverse=True)
        self._table = [
            (r.network.version, int(r.network.network_address), int(r.network.netmask), r)
            for r in ordered
        ]

    def route(self, address: IPAddress) -> Route | None:
        value, version = int(address), address.version
        for v, net, mask, route in self._table:
            if v == version and value & mask == net:
                return route
        return None

    def attached(self, address: IPAddress) -> Route | None:
        """The on-link route to `address`, or None when it is reached through a gateway."""
        route = self.route(address)
        if route is None or route.gateway is not None:
            return None
        return route

    def special(self, address: IPAddress) -> str | None:
        """ "network address" / "broadcast address" of an attached IPv4 subnet of /30 or wider;
        /31 and /32 subnets have none (RFC 3021)."""
        route = self.attached(address)
        if route is None or address.version != 4 or route.network.prefixlen > 30:
            return None
        if address == route.network.network_address:
            return "network address"
        if address == route.network.broadcast_address:
            return "broadcast address"
        return None
