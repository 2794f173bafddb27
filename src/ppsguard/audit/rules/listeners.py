"""Finding rules about the host's own listeners: undocumented, widened, a new owner, blocked.

Pure: each rule reads a `Case` and yields findings; see `rules/__init__.py` for the table.
"""

from __future__ import annotations

from collections.abc import Iterator

from ppsguard.audit import advise
from ppsguard.audit.baseline import Verdict, widened
from ppsguard.audit.rules.case import Case, finding, worse
from ppsguard.model.findings import Finding, FindingType, Severity


def unregistered_listener(case: Case) -> Iterator[Finding]:
    """Something listens on a port no registry entry documents (nor denies, if outward)."""
    for door in case.doors:
        if not door.unregistered:
            continue
        item, verdict = door.listener, door.verdict
        severity = Severity.MEDIUM if door.outward else Severity.LOW
        if verdict.verdict is Verdict.OPEN and verdict.evidence:
            severity = Severity.HIGH
        evidence = [door.seen, verdict.reason]
        if not case.baseline.documented:
            evidence.append("no registry: everything is undocumented")
        yield finding(
            FindingType.UNREGISTERED_LISTENER,
            severity,
            f"{item.protocol.value}/{item.port} ({door.service or 'unknown service'}) listens "
            f"on {item.address} but is not in the registry",
            evidence=tuple(evidence),
            remedy=advise.for_unregistered(item, door.service),
            **door.keys,
        )


def exposure_widened(case: Case) -> Iterator[Finding]:
    """A documented service listens wider than its `bind:`; its exposure risks fold in."""
    for door in case.doors:
        if not door.bind_widened:
            continue
        item, provide = door.listener, door.provide
        assert provide is not None  # a widened door is documented
        yield finding(
            FindingType.EXPOSURE_WIDENED,
            worse(Severity.HIGH, door.exposure_severity or Severity.HIGH),
            f"{item.protocol.value}/{item.port} is documented as bound to "
            f"{provide.bind} but listens on {item.address}",
            entry=provide,
            evidence=(
                door.seen,
                f"documented bind: {provide.bind}",
                door.verdict.reason,
                *door.exposure_notes,
            ),
            remedy=advise.for_widened(item, provide, case.apply),
            **door.keys,
        )


def owner_changed(case: Case) -> Iterator[Finding]:
    """A documented port is held by another process or unit than `process:`/`unit:` says."""
    for door in case.doors:
        item, provide = door.listener, door.provide
        if not door.documented or provide is None:
            continue
        owner_ok = (provide.process is None or item.matches_process(provide.process)) and (
            provide.unit is None or item.matches_unit(provide.unit)
        )
        if owner_ok or not (item.process or item.exe or item.unit):
            continue
        documented = provide.unit or provide.process
        yield finding(
            FindingType.OWNER_CHANGED,
            Severity.MEDIUM,
            f"{item.protocol.value}/{item.port} is held by "
            f"{item.unit or item.exe or item.process}, documented as {documented}",
            entry=provide,
            evidence=(door.seen, f"documented: {documented}"),
            remedy=advise.for_owner(item, provide),
            **door.keys,
        )


def listening_but_blocked(case: Case) -> Iterator[Finding]:
    """A listener the firewall drops: harmless when denied, stale when documented as open."""
    for door in case.doors:
        item, verdict = door.listener, door.verdict
        if verdict.verdict is not Verdict.BLOCKED:
            continue
        if door.denied:
            yield finding(
                FindingType.LISTENING_BUT_BLOCKED,
                Severity.INFO,
                f"{item.protocol.value}/{item.port} listens but is dropped as documented "
                "(harmless)",
                entry=door.deny,
                evidence=(door.seen, verdict.reason),
                remedy=advise.for_blocked(item, door.deny, False, case.apply),
                **door.keys,
            )
            continue
        provide = door.provide
        if (
            door.documented
            and provide is not None
            and door.outward
            and not door.restricted
            and verdict.evidence
            and (provide.bind is None or not widened(item, provide))
            # not stale when another table drops it: firewall-not-enforcing names that table
            and not (case.obs.firewall is not None and case.obs.firewall.foreign_for(provide.id))
        ):
            yield finding(
                FindingType.LISTENING_BUT_BLOCKED,
                Severity.LOW,
                f"{item.protocol.value}/{item.port} is documented open to anywhere but the "
                "firewall drops it (stale)",
                entry=provide,
                evidence=(door.seen, verdict.reason),
                remedy=advise.for_blocked(item, provide, True, case.apply),
                **door.keys,
            )
