"""The registry as the audit's baseline for one host, and what the firewall does to a door.

Pure. `Baseline` answers, for a (protocol, port): which `provides` entry documents it, which
`denies` entry refuses it from everywhere, and what the default is. `door_verdict` combines the
outside view and the live firewall view into one answer for a listener: reachable from outside,
blocked, or unknown, with the reason in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ppsguard.audit.views import (
    FirewallState,
    FirewallView,
    Listener,
    OutsideView,
    ReachState,
    Vantage,
)
from ppsguard.model.net import Protocol
from ppsguard.model.registry import (
    ANYWHERE,
    Action,
    BindScope,
    Direction,
    Entry,
    EntryKind,
    HostDef,
)
from ppsguard.model.sockets import Exposure

_INDEXED_RANGE = 4096  # ranges up to this many ports are indexed port by port


class _FirstMatch:
    """First entry (in registry order) whose ports contain a (protocol, port): a dict for
    ordinary entries, an ordered scan for the few wide ranges."""

    def __init__(self, entries: list[Entry]) -> None:
        self.exact: dict[tuple[Protocol, int], tuple[int, Entry]] = {}
        self.wide: list[tuple[int, Entry, Protocol, range]] = []
        for order, entry in enumerate(entries):
            for sp in entry.ports:
                span = range(sp.ports.first, sp.ports.last + 1)
                if len(span) > _INDEXED_RANGE:
                    self.wide.append((order, entry, sp.protocol, span))
                    continue
                for port in span:
                    self.exact.setdefault((sp.protocol, port), (order, entry))

    def find(self, protocol: Protocol, port: int) -> Entry | None:
        best = self.exact.get((protocol, port))
        for order, entry, proto, span in self.wide:
            if best is not None and order >= best[0]:
                break
            if proto is protocol and port in span:
                best = (order, entry)
                break
        return best[1] if best else None


@dataclass(frozen=True, slots=True)
class Baseline:
    """One host's entries in evaluation order (denies first), its default, and where from."""

    host: HostDef | None
    entries: tuple[Entry, ...]
    default: Action | None
    registry_file: str | None
    _provides: _FirstMatch = field(init=False, repr=False, compare=False)
    _denies: _FirstMatch = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        provides = [
            e
            for e in self.entries
            if e.kind is EntryKind.PROVIDES and e.direction is not Direction.OUTBOUND
        ]
        denies = [
            e
            for e in self.entries
            if e.kind is EntryKind.DENIES and not e.excluded and ANYWHERE in e.sources
        ]
        object.__setattr__(self, "_provides", _FirstMatch(provides))
        object.__setattr__(self, "_denies", _FirstMatch(denies))

    @property
    def documented(self) -> bool:
        return self.host is not None

    def provides(self) -> tuple[Entry, ...]:
        return tuple(
            e
            for e in self.entries
            if e.kind is EntryKind.PROVIDES and e.direction is not Direction.OUTBOUND
        )

    def provides_for(self, protocol: Protocol, port: int) -> Entry | None:
        return self._provides.find(protocol, port)

    def denies_for(self, protocol: Protocol, port: int) -> Entry | None:
        """The first `denies` entry refusing this port from anywhere, with no exception."""
        return self._denies.find(protocol, port)

    @property
    def restricts(self) -> bool:
        """True when the registry asks the firewall to refuse anything at all."""
        if not self.documented:
            return False
        return self.default is not Action.ALLOW or any(
            e.kind is EntryKind.DENIES for e in self.entries
        )


def widened(listener: Listener, entry: Entry) -> bool:
    """Bound wider than documented: loopback documented, or one address documented."""
    if entry.bind is None or entry.bind.scope is BindScope.ANY:
        return False
    if listener.exposure is Exposure.LOOPBACK:
        return False
    if entry.bind.scope is BindScope.LOOPBACK:
        return True
    return listener.exposure is Exposure.ANY or listener.address != entry.bind.address


class Verdict(StrEnum):
    """What reaches a door from outside the host."""

    OPEN = "open"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class DoorVerdict:
    verdict: Verdict
    reason: str
    evidence: bool  # True when the outside view itself saw it (not inferred from rules)


def _outside(listener: Listener, outside: OutsideView | None) -> DoorVerdict | None:
    if outside is None or listener.exposure is Exposure.LOOPBACK:
        return None
    if not outside.probed(listener.protocol, listener.port):
        return None
    relevant = [
        r
        for r in outside.at(listener.protocol, listener.port)
        if listener.exposure is Exposure.ANY or r.address == listener.address
    ]
    opened = [r for r in relevant if r.state is ReachState.OPEN]
    where = "from this host" if outside.vantage is Vantage.SELF else f"from {outside.vantage}"
    if opened and outside.vantage is not Vantage.SELF:
        addresses = ", ".join(str(r.address) for r in opened)
        return DoorVerdict(Verdict.OPEN, f"open {where} scan on {addresses}", True)
    filtered = [r for r in relevant if r.state is ReachState.FILTERED]
    if filtered and not opened:
        return DoorVerdict(Verdict.BLOCKED, f"filtered (dropped) in the {where} scan", True)
    if relevant and not opened and outside.vantage is not Vantage.SELF:
        return DoorVerdict(Verdict.BLOCKED, f"refused in the {where} scan", True)
    if not relevant and outside.vantage is not Vantage.SELF:
        return DoorVerdict(Verdict.BLOCKED, f"not open in the {where} scan", True)
    return None


def door_verdict(
    listener: Listener,
    baseline: Baseline,
    outside: OutsideView | None,
    firewall: FirewallView | None,
) -> DoorVerdict:
    """Reachable from outside, blocked, or unknown: the outside view first, then the rules."""
    if listener.exposure is Exposure.LOOPBACK:
        return DoorVerdict(Verdict.BLOCKED, "bound to loopback only", False)
    seen = _outside(listener, outside)
    if seen is not None:
        return seen
    if firewall is None or firewall.state in (FirewallState.UNKNOWN, FirewallState.FOREIGN):
        if firewall is not None and firewall.state is FirewallState.FOREIGN:
            return DoorVerdict(Verdict.UNKNOWN, "another firewall decides (not ppsguard's)", False)
        return DoorVerdict(Verdict.UNKNOWN, "the firewall was not read", False)
    if firewall.state is FirewallState.NONE:
        return DoorVerdict(Verdict.OPEN, "no firewall rules at all", False)
    if not baseline.documented:
        return DoorVerdict(Verdict.UNKNOWN, "no registry to evaluate the rules with", False)
    deny = baseline.denies_for(listener.protocol, listener.port)
    provide = baseline.provides_for(listener.protocol, listener.port)
    changed = firewall.state is FirewallState.CHANGED
    if deny is not None:
        if deny.id in firewall.missing_entries:
            return DoorVerdict(
                Verdict.OPEN, f"the deny rule of entry {deny.id!r} is missing from the table", False
            )
        return DoorVerdict(Verdict.BLOCKED, f"ppsguard's table drops it (entry {deny.id!r})", False)
    if provide is not None:
        if provide.id in firewall.missing_entries:
            return DoorVerdict(
                Verdict.UNKNOWN,
                f"the rule of entry {provide.id!r} is missing from the table",
                False,
            )
        effects = firewall.foreign_for(provide.id)
        if effects:
            sure = any(e.certainty == "all" and e.verdict in {"drop", "reject"} for e in effects)
            return DoorVerdict(
                Verdict.BLOCKED if sure else Verdict.UNKNOWN,
                f"another table drops it: {effects[0].where} rule {effects[0].rule!r}",
                False,
            )
        if firewall.overriding and not firewall.evaluated:
            return DoorVerdict(Verdict.UNKNOWN, "another table may drop it", False)
        return DoorVerdict(Verdict.OPEN, f"allowed by entry {provide.id!r}", False)
    if baseline.default in (Action.DENY, Action.REJECT, None) and not changed:
        return DoorVerdict(Verdict.BLOCKED, "ppsguard's table drops it (default deny)", False)
    if changed:
        return DoorVerdict(Verdict.UNKNOWN, "ppsguard's table was changed since applied", False)
    return DoorVerdict(Verdict.OPEN, "the registry's default allows it", False)
