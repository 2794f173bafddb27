"""The hardening plan: for each undocumented or risky listener, the change that removes it (pure).

Input: the audit's report and listeners (`ppsguard.audit`), and per listener the facts the survey
read from the machine (`ListenerFacts`: its holders' unit, the daemon's bind setting, the
package). Output: a `Plan` whose `changes` say, door by door, what to do and why, and whose
`units` are what `pps harden apply` stops and disables (socket units first).

Which findings lead to a change:

    unregistered-listener   stop-disable the unit (nobody documented the door)
    risky-service           stop-disable the unit (the risk catalog warns about it)
    exposure-widened        narrow-bind only (the door is documented, it binds too widely)

A unit is never stopped when the registry names it (`unit:` of any entry, with its socket or
service twin), when the door itself is documented (a risky but documented service is the
registry's to change or waive), nor when it also serves another door the registry documents
(stopping it would close that door): the change is then the bind to narrow, or none, and `why`
says which entry holds it. Listeners no service runs (a login session's process, a container,
an unreadable cgroup) get no unit change; `why` says what runs them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ppsguard.audit.baseline import Baseline
from ppsguard.audit.views import Listener
from ppsguard.harden.units import (
    Holder,
    UnitKind,
    UnitTarget,
    protected_names,
    touches_protected,
    unit_file_name,
    unit_stem,
)
from ppsguard.model.findings import AuditReport, Finding, FindingType
from ppsguard.model.registry import Registry

STOP = "stop-disable"
NARROW = "narrow-bind"
NONE = "none"
_UNREGISTERED = FindingType.UNREGISTERED_LISTENER
_STOPPING = frozenset({_UNREGISTERED, FindingType.RISKY_SERVICE})
HARDEN_TYPES = _STOPPING | {FindingType.EXPOSURE_WIDENED}

ListenerKey = tuple[str, str, str, int]  # Listener.key: protocol, family, address, port


@dataclass(frozen=True, slots=True)
class BindChange:
    """The setting that narrows a daemon's bind: where it is now (file, line, value) and the
    line that binds to loopback. `line` None: the key is not set (`default` applies)."""

    daemon: str
    key: str
    narrow: str
    default: str
    source: str
    file: str | None = None
    line: int | None = None
    current: str | None = None


@dataclass(frozen=True, slots=True)
class ListenerFacts:
    """What the survey read about one listener's processes."""

    holders: tuple[Holder, ...]
    target: UnitTarget
    bind: BindChange | None = None
    package: str | None = None


@dataclass(frozen=True, slots=True)
class FindingRef:
    id: str
    type: str
    severity: str
    title: str


@dataclass(frozen=True, slots=True)
class Change:
    """The change proposed for one door."""

    protocol: str
    address: str
    port: int
    service: str | None
    findings: tuple[FindingRef, ...]
    action: str  # stop-disable | narrow-bind | none
    why: str
    kind: str  # UnitKind
    process: str | None = None
    exe: str | None = None
    user: str | None = None
    pids: tuple[int, ...] = ()
    cgroup: str | None = None
    service_unit: str | None = None
    socket_unit: str | None = None
    container: str | None = None
    bind: BindChange | None = None
    package: str | None = None

    @property
    def door(self) -> str:
        return f"{self.protocol}/{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class UnitAction:
    """One unit `pps harden apply` stops and disables, and the doors that closes."""

    name: str
    doors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    host: str
    created_at: dt.datetime
    registry: str | None
    netns: str | None
    changes: tuple[Change, ...]
    units: tuple[UnitAction, ...]
    protected: tuple[str, ...]  # units the registry documents: apply refuses them
    gaps: tuple[str, ...] = field(default_factory=tuple)


def documented_units(registry: Registry | None) -> dict[str, str]:
    """{unit (full name): entry id} for every entry of the registry that names a unit."""
    if registry is None:
        return {}
    return {unit_file_name(e.unit): e.id for e in registry.entries() if e.unit}


def _backing(
    listeners: Sequence[Listener],
    undocumented: set[ListenerKey],
    facts: Mapping[ListenerKey, ListenerFacts],
    baseline: Baseline,
) -> dict[str, list[tuple[ListenerKey, str]]]:
    """{unit: [(door, "tcp/22 (entry ssh)"), ...]}: the documented doors each unit serves."""
    out: dict[str, list[tuple[ListenerKey, str]]] = {}
    for item in listeners:
        if item.key in undocumented:
            continue
        entry = baseline.provides_for(item.protocol, item.port)
        fact = facts.get(item.key)
        if entry is None or fact is None:
            continue
        for unit in fact.target.units:
            label = f"{item.protocol.value}/{item.port} (entry {entry.id})"
            out.setdefault(unit, []).append((item.key, label))
    return out


@dataclass(frozen=True, slots=True)
class _Context:
    documented: Mapping[str, str]  # unit -> entry id
    protected: frozenset[str]
    backing: Mapping[str, list[tuple[ListenerKey, str]]]


def _decide(
    key: ListenerKey,
    findings: Sequence[Finding],
    fact: ListenerFacts,
    entry_here: str | None,
    ctx: _Context,
) -> tuple[str, str]:
    """(action, why) for one door; `entry_here` is the entry that documents the door itself."""
    target = fact.target
    narrow = NARROW if fact.bind is not None else NONE
    stopping = any(f.type in _STOPPING for f in findings)
    reason = "; ".join(dict.fromkeys(f.title for f in findings))
    if target.kind in (UnitKind.SERVICE, UnitKind.SOCKET_ACTIVATED) and target.units:
        named = touches_protected(target, ctx.protected)
        if named is not None:
            stem = unit_stem(named)
            twins = (named, f"{stem}.service", f"{stem}.socket")
            entry = next((ctx.documented[u] for u in twins if u in ctx.documented), "?")
            return narrow, f"{named} is documented by the registry (entry {entry}): not touched"
        if entry_here is not None:
            return narrow, (
                f"the door is documented (entry {entry_here}), so its unit is not stopped: "
                f"{reason} (narrow the bind, or change or waive the entry)"
            )
        served = next(
            (
                f"{unit} also serves {label}"
                for unit in target.units
                for door, label in ctx.backing.get(unit, ())
                if door != key
            ),
            None,
        )
        if served is not None:
            return narrow, f"{served}: stopping it would close that door"
        if not stopping:
            return narrow, reason
        return STOP, reason
    if target.kind is UnitKind.USER_SERVICE:
        return narrow, (
            f"{target.note}: systemctl --user -M {target.user_id}@ disable --now {target.service}"
        )
    return narrow, target.note or "no unit runs it"


def build_plan(
    report: AuditReport,
    listeners: Sequence[Listener],
    facts: Mapping[ListenerKey, ListenerFacts],
    baseline: Baseline,
    *,
    registry: Registry | None,
    netns: str | None = None,
    gaps: Iterable[str] = (),
) -> Plan:
    """The plan for one host (see the module docstring)."""
    by_key: dict[ListenerKey, list[Finding]] = {}
    index = {(i.protocol.value, i.family.value, str(i.address), i.port): i for i in listeners}
    for found in report.findings:
        if found.type not in HARDEN_TYPES or found.port is None or found.protocol is None:
            continue
        key = (found.protocol.value, str(found.family), str(found.address), found.port)
        if key in index:
            by_key.setdefault(key, []).append(found)
    documented = documented_units(registry)
    undocumented = {k for k, found in by_key.items() if any(f.type is _UNREGISTERED for f in found)}
    ctx = _Context(
        documented, protected_names(documented), _backing(listeners, undocumented, facts, baseline)
    )
    services = {(d.protocol.value, d.port): d.service for d in report.doors}
    changes: list[Change] = []
    for key in sorted(by_key, key=lambda k: (k[3], k[0], k[2])):
        item, findings = index[key], by_key[key]
        fact = facts.get(key) or ListenerFacts((), UnitTarget(UnitKind.UNKNOWN, note="no facts"))
        here = None if key in undocumented else baseline.provides_for(item.protocol, item.port)
        action, why = _decide(key, findings, fact, here.id if here else None, ctx)
        target = fact.target
        changes.append(
            Change(
                protocol=item.protocol.value,
                address=str(item.address),
                port=item.port,
                service=services.get((item.protocol.value, item.port)),
                findings=tuple(
                    FindingRef(f.id, f.type.value, f.severity.value, f.title) for f in findings
                ),
                action=action,
                why=why,
                kind=target.kind.value,
                process=item.process,
                exe=item.exe,
                user=item.user,
                pids=item.pids,
                cgroup=target.cgroup,
                service_unit=target.service,
                socket_unit=target.socket,
                container=target.container,
                bind=fact.bind,
                package=fact.package,
            )
        )
    return Plan(
        host=report.host,
        created_at=report.observed_at,
        registry=report.registry,
        netns=netns,
        changes=tuple(changes),
        units=unit_actions(changes),
        protected=tuple(sorted(ctx.protected)),
        gaps=(*report.gaps, *gaps),
    )


def unit_actions(changes: Iterable[Change]) -> tuple[UnitAction, ...]:
    """The units to stop and disable, socket units first, each with the doors it closes."""
    doors: dict[str, list[str]] = {}
    for change in changes:
        if change.action != STOP:
            continue
        for unit in (change.socket_unit, change.service_unit):
            if unit:
                doors.setdefault(unit, []).append(change.door)
    ordered = sorted(doors, key=lambda u: (not u.endswith(".socket"), u))
    return tuple(UnitAction(u, tuple(dict.fromkeys(doors[u]))) for u in ordered)


__all__ = [
    "HARDEN_TYPES",
    "NARROW",
    "NONE",
    "STOP",
    "BindChange",
    "Change",
    "FindingRef",
    "ListenerFacts",
    "Plan",
    "UnitAction",
    "build_plan",
    "documented_units",
]
