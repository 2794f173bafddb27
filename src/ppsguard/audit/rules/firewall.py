"""The firewall-not-enforcing rule: per door, per port seen open from outside, per entry that
another table takes packets from, and per host.

Pure: reads a `Case`, yields findings; see `rules/__init__.py` for the table. A host-level
finding is raised only when no door or port explains the problem already.
"""

from __future__ import annotations

from collections.abc import Iterator

from ppsguard.audit import advise
from ppsguard.audit.rules.case import Case, finding, worse
from ppsguard.audit.views import FirewallState
from ppsguard.model.findings import Finding, FindingType, Remedy, Severity
from ppsguard.model.net import Protocol

T = FindingType.FIREWALL_NOT_ENFORCING


def firewall_not_enforcing(case: Case) -> Iterator[Finding]:
    """The registry refuses or restricts a door, and the firewall does not hold it."""
    per_port = [*_doors(case), *_unexplained(case)]
    yield from per_port
    yield from _foreign(case)
    yield from _managers(case)
    yield from _host(case, explained=bool(per_port))


def _doors(case: Case) -> Iterator[Finding]:
    for door in case.doors:
        item = door.listener
        if door.open_despite_deny:
            assert door.deny is not None
            yield finding(
                T,
                worse(Severity.HIGH, door.exposure_severity or Severity.HIGH),
                f"{item.protocol.value}/{item.port} is denied by the registry but gets through",
                entry=door.deny,
                evidence=(door.seen, door.verdict.reason, *door.exposure_notes),
                remedy=advise.for_firewall(case.apply, f"entry {door.deny.id!r} must drop it."),
                **door.keys,
            )
        elif door.restriction_unenforced:
            assert door.provide is not None
            yield finding(
                T,
                Severity.HIGH,
                f"{item.protocol.value}/{item.port} is restricted to "
                f"{', '.join(door.provide.sources)} but no firewall enforces it",
                entry=door.provide,
                evidence=(door.seen, "no firewall rules at all"),
                remedy=advise.for_firewall(case.apply, f"entry {door.provide.id!r} restricts it."),
                **door.keys,
            )


def _unexplained(case: Case) -> Iterator[Finding]:
    for reach in case.unexplained:
        deny = case.baseline.denies_for(reach.protocol, reach.port)
        if deny is None:
            continue
        yield finding(
            T,
            Severity.HIGH,
            f"{reach.protocol.value}/{reach.port} is denied by the registry but is open",
            entry=deny,
            evidence=case.reach_evidence(reach),
            remedy=advise.for_firewall(case.apply, f"entry {deny.id!r} must drop it."),
            **case.reach_keys(reach),
        )


def _foreign(case: Case) -> Iterator[Finding]:
    """Another table (any family, hook or priority; iptables-legacy too) drops, rejects, queues
    or rewrites packets an entry allows: found by evaluating the whole rule set."""
    fw = case.obs.firewall
    for effect in fw.foreign if fw is not None else ():
        entry = next((e for e in case.baseline.entries if e.id == effect.entry_id), None)
        sure = effect.certainty == "all" and effect.verdict in {"drop", "reject"}
        yield finding(
            T,
            Severity.MEDIUM if sure else Severity.LOW,
            f"{effect.where} {effect.verdict}s packets that entry {effect.entry_id!r} allows"
            + ("" if sure else f" ({effect.certainty})"),
            protocol=Protocol(effect.protocol),
            address="*",
            port=effect.port,
            identity=f"{effect.where}: {effect.rule}",
            entry=entry,
            evidence=(effect.description,),
            remedy=Remedy(
                f"Another table decides beside ppsguard's: change rule {effect.rule!r} in "
                f"{effect.where}, or document why entry {effect.entry_id!r} is not reachable."
            ),
        )


def _managers(case: Case) -> Iterator[Finding]:
    """Another firewall manager (ufw, firewalld, Docker, ...) disagrees with the registry on
    a port: a DNAT publishes it past INPUT (medium), or an accept or drop contradicts it."""
    fw = case.obs.firewall
    for line in fw.conflicts if fw is not None else ():
        yield finding(
            T,
            Severity.MEDIUM if " publishes " in line else Severity.LOW,
            line,
            identity=f"manager: {line}",
            evidence=(f"firewall: {fw.state if fw else '?'}",),
            remedy=Remedy(
                "Two managers decide on this port: change the other manager's rule, or the "
                "registry, so that they agree."
            ),
        )


def _host(case: Case, *, explained: bool) -> Iterator[Finding]:
    fw = case.obs.firewall
    if fw is None or not case.baseline.restricts:
        return
    if fw.state is FirewallState.NONE:
        title = "no firewall rules at all: the registry is not enforced"
        severity = Severity.HIGH
    elif fw.state is FirewallState.FOREIGN:
        title = "ppsguard's table is not loaded; another firewall decides"
        severity = Severity.MEDIUM
    elif fw.state is FirewallState.CHANGED and not explained:
        title, severity = "ppsguard's table was changed since it was applied", Severity.MEDIUM
    else:
        return
    yield finding(
        T,
        severity,
        title,
        identity=f"host:{case.obs.host}",
        evidence=(f"firewall: {fw.state}", *fw.notes, *fw.overriding),
        remedy=advise.for_firewall(case.apply, "apply the registry's policy."),
    )
