"""Which probes prove a draft equivalent to its original: every port mentioned and its two
neighbours, the edges of every address set, and a bounded number of seeded random ports. Pure.

A probe is (source address, protocol, port). Sources are only ever lab addresses (inside
198.18.0.0/15 or 2001:db8::/32): the first and last address of every set and the addresses
just outside it; an address set elsewhere is listed in `ProbePlan.unprobed`, never used.
`explain` says which not-expressed rule may account for a probe whose fate differs.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field

from ppsguard.importers.rules import Imported, Match
from ppsguard.model.net import IPAddress, IPNetwork

LAB4 = ipaddress.IPv4Network("198.18.0.0/15")
LAB6 = ipaddress.IPv6Network("2001:db8::/32")
PROBED_PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True, slots=True, order=True)
class Probe:
    """One connection attempt to make against both hosts."""

    protocol: str
    port: int
    source: str


@dataclass(slots=True)
class ProbePlan:
    probes: list[Probe] = field(default_factory=list)
    sources: list[IPAddress] = field(default_factory=list)
    unprobed: list[str] = field(default_factory=list)


def _in_lab(address: IPAddress) -> bool:
    return address in (LAB4 if address.version == 4 else LAB6)


def _edges(network: IPNetwork) -> list[IPAddress]:
    first, last = network.network_address, network.broadcast_address
    out: list[IPAddress] = [first, last]
    if int(first) > 0:
        out.append(first - 1)
    if int(last) < (2**32 - 1 if network.version == 4 else 2**128 - 1):
        out.append(last + 1)
    return out


def _boxes(imported: Imported) -> list[Match]:
    boxes = [rule.match for rule in imported.rules]
    return boxes + [item.match for item in imported.unexpressed if item.match is not None]


def plan_probes(
    imported: Imported,
    outsiders: dict[int, IPAddress],
    avoid: set[IPAddress],
    *,
    limit: int = 600,
    random_ports: int = 20,
    max_sources: int = 48,
    seed: int = 1,
) -> ProbePlan:
    """The probes for `imported`; `outsiders` is the probing host's own address per family
    (the source for "anyone"), `avoid` the lab hosts' addresses."""
    plan = ProbePlan()
    ports: set[tuple[str, int]] = set()
    by_source: dict[IPAddress, set[tuple[str, int]]] = {}
    for box in _boxes(imported):
        mentioned: set[tuple[str, int]] = set()
        for protocol in PROBED_PROTOCOLS:
            if protocol not in box.protocols:
                continue
            for low, high in box.ports:
                for port in (low - 1, low, high, high + 1):
                    if 0 < port <= 65535 and (low, high) != (0, 65535):
                        mentioned.add((protocol, port))
        ports |= mentioned
        for network in (*box.sources.include, *box.sources.exclude):
            if network.prefixlen == 0 or network.version not in imported.families:
                continue
            for address in _edges(network):
                if not _in_lab(address):
                    plan.unprobed.append(f"{network} (edge {address} is not a lab address)")
                    continue
                if address not in avoid:
                    by_source.setdefault(address, set()).update(mentioned)
    generator = random.Random(seed)
    for _ in range(random_ports):
        port = generator.randint(1, 65535)
        ports.add((generator.choice(PROBED_PROTOCOLS), port))
    if not ports:
        ports.add(("tcp", 22))
    wanted: list[Probe] = []
    for version in sorted(imported.families):
        outsider = outsiders.get(version)
        if outsider is not None:
            plan.sources.append(outsider)
            wanted.extend(Probe(p, n, str(outsider)) for p, n in sorted(ports))
    extra = sorted(by_source, key=lambda a: (a.version, int(a)))
    if len(extra) > max_sources:
        plan.unprobed.extend(
            f"source {a} (over {max_sources} sources)" for a in extra[max_sources:]
        )
        extra = extra[:max_sources]
    for address in extra:
        plan.sources.append(address)
        targets = by_source[address] or ports
        wanted.extend(Probe(p, n, str(address)) for p, n in sorted(targets))
    seen: set[Probe] = set()
    for probe in wanted:
        if probe not in seen:
            seen.add(probe)
            plan.probes.append(probe)
    if len(plan.probes) > limit:
        plan.unprobed.append(f"{len(plan.probes) - limit} probe(s) over the limit of {limit}")
        plan.probes = plan.probes[:limit]
    plan.unprobed = sorted(set(plan.unprobed))
    return plan


def explain(imported: Imported, probe: Probe) -> str | None:
    """The not-expressed rule that may account for a probe's differing fate, if any."""
    address = ipaddress.ip_address(probe.source)
    for item in imported.unexpressed:
        box = item.match
        if box is None:
            continue
        if probe.protocol not in box.protocols:
            continue
        if not any(low <= probe.port <= high for low, high in box.ports):
            continue
        if any(address in net for net in box.sources.exact()):
            return f"{item.origin}: {item.why}"
    return None
