"""Resolve a registry into one host's ordered first-match policy (`HostPolicy`).

    compile_host_policy(registry, host=None) -> HostPolicy

`host` is a host name or one of its addresses; it may be None when the registry has exactly one
host. Rule order (first match wins), the one order the evaluator, the bulk evaluator, lint and the
firewall renderers all share:
  1. the host's `denies`, then each role's `denies` in the order the host lists its roles;
  2. the host's `provides`, then each role's `provides`;
  3. `default_action` / `default_log` (host's, else the registry's, else deny / no log).
Each entry becomes one `Rule` per protocol; sources are resolved to collapsed networks with every
exclusion subtracted (`anywhere` is ANY_SOURCES = 0.0.0.0/0 + ::/0). A `bind: loopback` entry
only matches loopback sources and destinations; `bind: <address>` sets the destination.
`uses` entries become `outbound` ALLOW rules (destinations resolved). Pure.
"""

from __future__ import annotations

import ipaddress

from ppsguard.errors import InputError
from ppsguard.model.net import IPNetwork, PortRange, Protocol
from ppsguard.model.registry import (
    ANY_SOURCES,
    BindScope,
    Entry,
    HostDef,
    HostPolicy,
    Registry,
    Rule,
)
from ppsguard.registry.naming import NetworkResolver, collapse, suggest

LOOPBACK: tuple[IPNetwork, ...] = (
    ipaddress.IPv4Network("127.0.0.0/8"),
    ipaddress.IPv6Network("::1/128"),
)


def select_host(registry: Registry, host: str | None) -> HostDef:
    """The host named `host` (by name or address); the only host when `host` is None."""
    if host is None:
        if len(registry.hosts) == 1:
            return registry.hosts[0]
        names = ", ".join(h.name for h in registry.hosts) or "none"
        raise InputError(
            f"the registry describes {len(registry.hosts)} hosts; choose one with --host",
            file=registry.files[0] if registry.files else None,
            hint=f"hosts: {names}",
        )
    found = registry.host(host)
    if found is not None:
        return found
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        for candidate in registry.hosts:
            if address in candidate.addresses:
                return candidate
    raise InputError(
        f"no host {host!r} in the registry",
        token=host,
        hint=suggest(host, [h.name for h in registry.hosts]),
    )


def _intersect(a: tuple[IPNetwork, ...], b: tuple[IPNetwork, ...]) -> tuple[IPNetwork, ...]:
    out: list[IPNetwork] = []
    for x in a:
        for y in b:
            if x.version != y.version:
                continue
            if x.supernet_of(y):  # type: ignore[arg-type]
                out.append(y)
            elif y.supernet_of(x):  # type: ignore[arg-type]
                out.append(x)
    return collapse(out)


def _merge_ports(ranges: list[PortRange]) -> tuple[PortRange, ...]:
    merged: list[PortRange] = []
    for r in sorted(ranges):
        if merged and r.first <= merged[-1].last + 1:
            last = merged[-1]
            merged[-1] = PortRange(last.first, max(last.last, r.last))
        else:
            merged.append(r)
    return tuple(merged)


def entry_rules(entry: Entry, resolver: NetworkResolver) -> tuple[Rule, ...]:
    """The rules of one entry, one per protocol, in the order protocols first appear."""
    sources = resolver.resolve(entry.sources, entry.excluded, entry.location)
    destinations = ANY_SOURCES
    if entry.destinations:
        destinations = resolver.resolve(entry.destinations, (), entry.location)
    if entry.bind is not None and entry.bind.scope is BindScope.LOOPBACK:
        sources = _intersect(sources, LOOPBACK)
        destinations = LOOPBACK
    elif entry.bind is not None and entry.bind.address is not None:
        destinations = collapse([ipaddress.ip_network(entry.bind.address)])
    by_protocol: dict[Protocol, list[PortRange]] = {}
    for sp in entry.ports:
        by_protocol.setdefault(sp.protocol, []).append(sp.ports)
    return tuple(
        Rule(
            entry_id=entry.id,
            kind=entry.kind,
            action=entry.action,
            log=entry.log,
            protocol=protocol,
            ports=_merge_ports(ranges),
            sources=sources,
            destinations=destinations,
            location=entry.location,
        )
        for protocol, ranges in by_protocol.items()
    )


def ordered_entries(registry: Registry, host: HostDef) -> tuple[Entry, ...]:
    """The host's inbound entries in evaluation order (see the module docstring)."""
    roles = [r for name in host.roles if (r := registry.role(name)) is not None]
    denies = [*host.denies, *(e for r in roles for e in r.denies)]
    provides = [*host.provides, *(e for r in roles for e in r.provides)]
    return (*denies, *provides)


def compile_host_policy(registry: Registry, host: str | None = None) -> HostPolicy:
    """Resolve `registry` for one host into its ordered first-match HostPolicy."""
    chosen = select_host(registry, host)
    resolver = NetworkResolver({n.name: n for n in registry.networks})
    rules: list[Rule] = []
    for entry in ordered_entries(registry, chosen):
        rules.extend(entry_rules(entry, resolver))
    roles = [r for name in chosen.roles if (r := registry.role(name)) is not None]
    outbound: list[Rule] = []
    for entry in (*chosen.uses, *(e for r in roles for e in r.uses)):
        outbound.extend(entry_rules(entry, resolver))
    if chosen.default is not None:
        default, location = chosen.default, chosen.default_location
    else:
        default, location = registry.default, registry.default_location
    default_log = chosen.default_log if chosen.default_log is not None else registry.default_log
    return HostPolicy(
        host=chosen.name,
        addresses=chosen.addresses,
        rules=tuple(rules),
        outbound=tuple(outbound),
        default_action=default,
        default_log=default_log,
        default_location=location,
    )


__all__ = ["LOOPBACK", "compile_host_policy", "entry_rules", "ordered_entries", "select_host"]
