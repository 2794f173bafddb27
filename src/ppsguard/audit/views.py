"""The audit's inputs as small values: listeners, the outside view, the firewall view.

Pure: the drift engine (`drift.py`) works on these, and the adapters here turn the real
producers' types (an `Inventory`, a `ScanResult`, a `LiveRuleset`) into them. A listener is one
(protocol, family, normalised bind address, port) with its service identity (unit, else
executable, else command name); pids are carried for evidence only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath

from ppsguard.model.net import Family, IPAddress, Protocol
from ppsguard.model.scan import Confidence, PortState, ScanResult
from ppsguard.model.sockets import Exposure, Inventory, Role, exposure_of

_SERVICE_UNIT_SUFFIXES = (".service", ".socket")


def normalise(address: IPAddress) -> IPAddress:
    """Unwrap v4-mapped IPv6 addresses (`::ffff:127.0.0.1` -> `127.0.0.1`)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True, slots=True)
class Listener:
    """A door open on the host: one passive socket group (all holders of one bind)."""

    protocol: Protocol
    family: Family
    address: IPAddress
    port: int
    exposure: Exposure
    process: str | None = None  # command name
    exe: str | None = None
    unit: str | None = None
    user: str | None = None
    pids: tuple[int, ...] = ()
    cmdline: str | None = None

    @property
    def service_identity(self) -> str | None:
        """The restart-stable identity: a systemd unit, else the executable, else the name."""
        if self.unit and self.unit.endswith(_SERVICE_UNIT_SUFFIXES):
            return self.unit
        return self.exe or self.process

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.protocol.value, self.family.value, str(self.address), self.port)

    def matches_process(self, documented: str) -> bool:
        """True when `documented` names this listener's command, executable or its basename."""
        names = {self.process, self.exe}
        if self.exe:
            names.add(PurePosixPath(self.exe).name)
        return documented in names

    def matches_unit(self, documented: str) -> bool:
        if not self.unit:
            return False
        return self.unit in (documented, f"{documented}.service")


class ReachState(StrEnum):
    """The outside view of one port: open, closed (refused), filtered (dropped)."""

    OPEN = "open"
    CLOSED = "closed"
    FILTERED = "filtered"


@dataclass(frozen=True, slots=True)
class Reach:
    """One port of one scanned address, with the service seen behind it."""

    protocol: Protocol
    port: int
    address: IPAddress
    state: ReachState
    service: str | None = None
    product: str | None = None
    banner: str | None = None
    expected: str | None = None  # what the port number says, when identification disagrees
    found: str | None = None
    identified: str | None = None  # the service name a handshake or signature proved


class Vantage(StrEnum):
    """Where the outside view was taken from: another host, this host itself, an nmap file."""

    REMOTE = "remote"
    SELF = "self"
    NMAP = "nmap"


@dataclass(frozen=True, slots=True)
class OutsideView:
    """A scan of the host's non-loopback addresses. `scanned` lists the (protocol, port) pairs
    that were probed; a port not in it says nothing. From `Vantage.SELF` an open port proves
    little about the firewall (rule sets accept `iif lo`), so drift uses only its closed and
    filtered answers there."""

    vantage: Vantage
    addresses: tuple[IPAddress, ...]
    scanned: frozenset[tuple[Protocol, int]]
    results: tuple[Reach, ...]
    _index: dict[tuple[Protocol, int], tuple[Reach, ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index: dict[tuple[Protocol, int], list[Reach]] = {}
        for reach in self.results:
            index.setdefault((reach.protocol, reach.port), []).append(reach)
        object.__setattr__(self, "_index", {k: tuple(v) for k, v in index.items()})

    def at(self, protocol: Protocol, port: int) -> tuple[Reach, ...]:
        return self._index.get((protocol, port), ())

    def open_on(self, protocol: Protocol, port: int) -> tuple[Reach, ...]:
        return tuple(r for r in self.at(protocol, port) if r.state is ReachState.OPEN)

    def probed(self, protocol: Protocol, port: int) -> bool:
        return (protocol, port) in self.scanned


class FirewallState(StrEnum):
    """The live firewall as far as the registry is concerned."""

    NONE = "none"  # no rule set at all: nothing is enforced
    ENFORCED = "enforced"  # ppsguard's table is in place and unchanged
    OVERRIDDEN = "overridden"  # in place, but another table drops what an entry allows
    CHANGED = "changed"  # ppsguard's table is in place but differs from what was applied
    FOREIGN = "foreign"  # no ppsguard table; other tables decide
    UNKNOWN = "unknown"  # could not be read


@dataclass(frozen=True, slots=True)
class ForeignEffect:
    """A place in another table (or iptables-legacy) that changes the fate of packets an entry
    allows, found by evaluating the whole rule set (`firewall.fate`)."""

    entry_id: str
    where: str  # "inet other chain input"
    rule: str  # the rule as text, or "policy drop"
    verdict: str  # drop | reject | queue | rewrite | uncertain
    certainty: str  # all | some | uncertain
    description: str  # the whole sentence, for evidence
    protocol: str = "tcp"
    port: int | None = None  # the first port concerned


@dataclass(frozen=True, slots=True)
class FirewallView:
    """`missing_entries`: entry ids the registry's policy renders into rules that the live
    table lacks; `overriding`: other tables' base chains that can drop what ppsguard accepts;
    `foreign`: what those tables do to each allowed entry's packets."""

    state: FirewallState
    missing_entries: frozenset[str] = frozenset()
    overriding: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    foreign: tuple[ForeignEffect, ...] = ()
    evaluated: bool = False  # the whole rule set was evaluated against the registry's entries
    managers: tuple[str, ...] = ()  # other firewall managers present (ufw, docker, ...)
    conflicts: tuple[str, ...] = ()  # what they do against the registry (`firewall.coexist`)

    def foreign_for(self, entry_id: str) -> tuple[ForeignEffect, ...]:
        return tuple(f for f in self.foreign if f.entry_id == entry_id)


@dataclass(frozen=True, slots=True)
class Observations:
    """Everything observed of one host; a view that was not taken is None."""

    host: str
    observed_at: dt.datetime
    listeners: tuple[Listener, ...] | None
    outside: OutsideView | None = None
    firewall: FirewallView | None = None
    addresses: tuple[IPAddress, ...] = ()
    gaps: tuple[str, ...] = field(default_factory=tuple)


# adapters ----------------------------------------------------------------------------------


def listeners_from_inventory(inventory: Inventory) -> tuple[Listener, ...]:
    """Group the inventory's passive sockets by (protocol, family, bind address, port)."""
    groups: dict[tuple[str, str, str, int], list[Listener]] = {}
    for record in inventory.records:
        if record.role is not Role.PASSIVE or record.protocol is Protocol.RAW:
            continue
        address = normalise(record.local_address)
        owner = record.owners[0] if record.owners else None
        listener = Listener(
            protocol=record.protocol,
            family=Family.of(address),
            address=address,
            port=record.local_port,
            exposure=exposure_of(address),
            process=owner.comm if owner else None,
            exe=owner.exe if owner else None,
            unit=record.unit,
            user=(owner.user if owner else None) or record.user,
            pids=tuple(sorted({o.pid for o in record.owners})),
            cmdline=" ".join(owner.cmdline)[:300] if owner and owner.cmdline else None,
        )
        groups.setdefault(listener.key, []).append(listener)
    out: list[Listener] = []
    for items in groups.values():
        first = items[0]
        pids = tuple(sorted({p for item in items for p in item.pids}))
        named = next((i for i in items if i.exe or i.process), first)
        out.append(
            Listener(
                protocol=first.protocol,
                family=first.family,
                address=first.address,
                port=first.port,
                exposure=first.exposure,
                process=named.process,
                exe=named.exe,
                unit=named.unit,
                user=named.user,
                pids=pids,
                cmdline=named.cmdline,
            )
        )
    return tuple(sorted(out, key=lambda x: (x.port, x.protocol.value, x.family.value, x.key[2])))


_REACH = {
    PortState.OPEN: ReachState.OPEN,
    PortState.CLOSED: ReachState.CLOSED,
    PortState.FILTERED: ReachState.FILTERED,
    PortState.UNFILTERED: ReachState.CLOSED,
    PortState.CLOSED_FILTERED: ReachState.FILTERED,
}


def outside_from_scan(
    result: ScanResult,
    vantage: Vantage,
    scanned: Iterable[tuple[Protocol, int]] | None = None,
) -> OutsideView:
    """Turn a scan (or an imported nmap file) into an OutsideView.

    `scanned` says which (protocol, port) pairs were probed: a probed port the result does not
    list was not open (scans list open ports only unless asked for all states). Without it,
    the ports the result names are the scanned set. `open|filtered` (UDP silence) is not
    counted as open.
    """
    results: list[Reach] = []
    named: set[tuple[Protocol, int]] = set()
    addresses: list[IPAddress] = []
    for host in result.hosts:
        if host.address is None:  # a scan target whose name did not resolve: nothing observed
            continue
        addresses.append(normalise(host.address))
        for port in host.ports:
            named.add((port.protocol, port.port))
            state = _REACH.get(port.state)
            if state is None:
                continue
            service = port.service
            evidence = service.evidence if service else None
            mismatch = service.mismatch if service else None
            if mismatch is not None and mismatch.found in ("", "unknown"):
                mismatch = None  # nothing recognised is not a different protocol
            results.append(
                Reach(
                    protocol=port.protocol,
                    port=port.port,
                    address=normalise(host.address),
                    state=state,
                    service=service.name if service else None,
                    product=service.product if service else None,
                    banner=(evidence.response if evidence else None),
                    expected=mismatch.expected if mismatch else None,
                    found=mismatch.found if mismatch else None,
                    identified=(
                        service.name
                        if service is not None and service.confidence is not Confidence.GUESSED
                        else None
                    ),
                )
            )
    probed = frozenset(scanned) if scanned is not None else frozenset(named)
    return OutsideView(
        vantage=vantage,
        addresses=tuple(addresses),
        scanned=probed,
        results=tuple(results),
    )
