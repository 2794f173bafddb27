"""Names to numbers: port/protocol text, service names, and network names to address sets.

Services resolve in this order: a service declared in the registry, then the knowledge base's
shipped catalog (`ppsguard.knowledge.services.builtin_catalog`), then this machine's
/etc/services (`default_catalog`), so `pop3` works without declaring it. Port text is
`N/proto`, `N-M/proto`, `N` (tcp) or `N/tcp+udp` (several protocols).

Networks resolve recursively (members may name other networks, at most MAX_NETWORK_DEPTH
references deep) with cycle detection; `except`
lists are subtracted exactly with `address_exclude`, and the result is a collapsed, sorted tuple of
IPv4 then IPv6 networks. Pure: no I/O.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping

from ppsguard.errors import InputError
from ppsguard.knowledge.services import builtin_catalog, default_catalog
from ppsguard.model.net import IPNetwork, PortRange, Protocol
from ppsguard.model.registry import (
    ANY_SOURCES,
    ANYWHERE,
    NetworkDef,
    ServiceDef,
    ServicePort,
    SourceLocation,
)

PORT_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
MAX_NETWORK_DEPTH = 64  # networks naming networks: deeper chains are refused, never recursed
# ASCII digits only: `\d` alone would also take Arabic-Indic or full-width digits as a port
_PORT_RE = re.compile(
    r"^\s*([0-9]{1,5})\s*(?:-\s*([0-9]{1,5}))?\s*(?:/\s*([a-z+]+))?\s*$", re.ASCII
)
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
# An entry id travels into rule comments and NFLOG prefixes: the renderers accept exactly this.
ENTRY_ID = re.compile(r"[A-Za-z0-9_.:/@+=,-]{1,100}", re.ASCII)
ENTRY_ID_HINT = "use letters, digits and _.:/@+=,- up to 100 characters"


def suggest(name: str, known: Iterable[str]) -> str | None:
    """A `did you mean` hint for a misspelt name, or None."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else None


def _err(message: str, at: SourceLocation, hint: str | None = None) -> InputError:
    return InputError(message, file=at.file, line=at.line, column=at.column, hint=hint)


def looks_like_port(text: str) -> bool:
    return bool(_PORT_RE.match(text))


def parse_port_text(text: str, at: SourceLocation) -> tuple[ServicePort, ...]:
    """`110/tcp`, `1000-2000/udp`, `53/tcp+udp`, `22` (tcp) -> ServicePorts."""
    match = _PORT_RE.match(text)
    if not match:
        raise _err(f"bad port {text!r}", at, "write N/proto, e.g. 110/tcp or 1000-2000/udp")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else first
    if first > 65535 or last > 65535:
        raise _err(f"port out of range in {text!r}", at, "ports go from 0 to 65535")
    if first > last:
        raise _err(f"port range {text!r} is reversed", at, f"write {last}-{first}")
    protocols: list[Protocol] = []
    for name in (match.group(3) or "tcp").split("+"):
        try:
            proto = Protocol(name)
        except ValueError:
            proto = None
        if proto is None or proto not in PORT_PROTOCOLS:
            raise _err(
                f"unknown protocol {name!r} in {text!r}",
                at,
                suggest(name, [p.value for p in PORT_PROTOCOLS]) or "use tcp, udp or sctp",
            )
        if proto not in protocols:
            protocols.append(proto)
    return tuple(ServicePort(p, PortRange(first, last)) for p in protocols)


def catalog_ports(name: str) -> tuple[ServicePort, ...] | None:
    """The knowledge base's ports for a service name, or None when it does not know the name."""
    # The shipped catalog first, so a registry means the same ports on every machine; only names
    # it does not know fall back to this machine's /etc/services.
    entries = builtin_catalog().ports_for(name) or default_catalog().ports_for(name)
    out: list[ServicePort] = []
    for entry in entries:
        if entry.protocol in PORT_PROTOCOLS:
            sp = ServicePort(entry.protocol, PortRange(entry.port, entry.port))
            if sp not in out:
                out.append(sp)
    return tuple(out) or None


def catalog_names() -> tuple[str, ...]:
    """Every service name the knowledge base knows (for suggestions)."""
    return default_catalog().known_names()


def resolve_service(
    name: str, declared: Mapping[str, ServiceDef], at: SourceLocation
) -> tuple[ServicePort, ...]:
    """A service name (declared, then knowledge base) or port text to its ServicePorts."""
    if name in declared:
        return declared[name].ports
    if looks_like_port(name):
        return parse_port_text(name, at)
    found = catalog_ports(name)
    if found:
        return found
    hint = suggest(name, [*declared, *catalog_names()])
    raise _err(
        f"unknown service {name!r}",
        at,
        hint or "declare it under services:, or write a port such as 110/tcp",
    )


def parse_address(text: str, at: SourceLocation) -> IPNetwork | None:
    """An address or CIDR literal, or None when the text is not one (then it is a name).

    Refused, each with the fix in the hint: host bits set; a zone index (`fe80::1%eth0`: rules
    match addresses, not interfaces); IPv4-mapped IPv6 (`::ffff:198.18.0.1`: the kernel sees
    such a peer's packets as IPv4, so an IPv6 rule for it would never match); non-ASCII text.
    """
    if not any(ch.isdigit() for ch in text) or not (":" in text or text[0].isdigit()):
        return None
    if not text.isascii():
        raise _err(f"bad address or CIDR {text!r}: only ASCII digits and letters", at)
    if "%" in text:
        raise _err(
            f"address {text!r} has a zone index (%...)",
            at,
            "firewall rules match addresses, not interfaces: write the address without %zone",
        )
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            net = ipaddress.ip_network(text, strict=False)
            raise _err(
                f"bad CIDR {text!r}: host bits set", at, f"did you mean {str(net)!r}?"
            ) from None
        raise _err(f"bad address or CIDR {text!r}", at) from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        mapped = network.network_address.ipv4_mapped
        suffix = "" if network.prefixlen == 128 else f"/{network.prefixlen - 96}"
        raise _err(
            f"IPv4-mapped address {text!r} never matches IPv4 packets in the firewall",
            at,
            f"write {mapped}{suffix}",
        )
    return network


def collapse(networks: Iterable[IPNetwork]) -> tuple[IPNetwork, ...]:
    """Collapse and sort: IPv4 networks first, then IPv6."""
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return (*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6))


def subtract(networks: Iterable[IPNetwork], removed: Iterable[IPNetwork]) -> tuple[IPNetwork, ...]:
    """`networks` minus `removed`, exactly (address_exclude), collapsed."""
    current = list(collapse(networks))
    for cut in collapse(removed):
        nxt: list[IPNetwork] = []
        for net in current:
            if net.version != cut.version:
                nxt.append(net)
            elif cut.supernet_of(net):  # type: ignore[arg-type]
                continue
            elif net.supernet_of(cut):  # type: ignore[arg-type]
                nxt.extend(net.address_exclude(cut))  # type: ignore[arg-type]
            else:
                nxt.append(net)
        current = nxt
    return collapse(current)


class NetworkResolver:
    """Resolves names, literals and `anywhere` to address sets, memoised, cycles detected."""

    def __init__(self, networks: Mapping[str, NetworkDef]) -> None:
        self._defs = networks
        self._done: dict[str, tuple[IPNetwork, ...]] = {}
        self._depth: dict[str, int] = {}
        self._active: list[str] = []

    def resolve_one(self, text: str, at: SourceLocation) -> tuple[IPNetwork, ...]:
        if text == ANYWHERE:
            return ANY_SOURCES
        literal = parse_address(text, at)
        if literal is not None:
            return (literal,)
        if text not in self._defs:
            hint = suggest(text, [*self._defs, ANYWHERE])
            raise _err(
                f"unknown network {text!r}",
                at,
                hint or "declare it under networks:, or write an address or CIDR",
            )
        if text in self._done:
            return self._done[text]
        if text in self._active:
            cycle = " -> ".join([*self._active[self._active.index(text) :], text])
            raise _err(f"network cycle {cycle}", self._defs[text].location)
        definition = self._defs[text]
        if len(self._active) >= MAX_NETWORK_DEPTH:
            raise self._too_deep(text)
        self._active.append(text)
        try:
            result = self.resolve(definition.members, definition.excluded, definition.location)
        finally:
            self._active.pop()
        # the same limit whatever order the networks are defined in (memoised chains are shallow)
        named = (*definition.members, *definition.excluded)
        depth = 1 + max((self._depth.get(name, 0) for name in named), default=0)
        if depth > MAX_NETWORK_DEPTH:
            raise self._too_deep(text)
        self._depth[text] = depth
        self._done[text] = result
        return result

    def _too_deep(self, text: str) -> InputError:
        return _err(
            f"network {text!r} is more than {MAX_NETWORK_DEPTH} references deep",
            self._defs[text].location,
            "name the addresses directly instead of chaining networks",
        )

    def resolve(
        self, members: Iterable[str], excluded: Iterable[str], at: SourceLocation
    ) -> tuple[IPNetwork, ...]:
        included: list[IPNetwork] = []
        for name in members:
            included.extend(self.resolve_one(name, at))
        removed: list[IPNetwork] = []
        for name in excluded:
            removed.extend(self.resolve_one(name, at))
        return subtract(included, removed)


ServiceResolver = Callable[[str, SourceLocation], tuple[ServicePort, ...]]
