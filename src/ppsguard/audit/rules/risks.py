"""The risky-service rule: the risk catalog's verdict on a door, once per risk.

Pure: reads a `Case`, yields findings; see `rules/__init__.py` for the table. Cleartext and
legacy risks are findings of their own; an exposure risk is folded into the exposure finding of
the same door when there is one (`Door.exposure_reported`), and dropped while the registry's
restriction holds. A documented door repeats only risks of high severity or worse, and a running
waiver silences them all.
"""

from __future__ import annotations

from collections.abc import Iterator

from ppsguard.audit import advise
from ppsguard.audit.baseline import Verdict
from ppsguard.audit.rules.case import Case, Door, finding, waived
from ppsguard.audit.views import Reach
from ppsguard.model.findings import Finding, FindingType, Severity


def risky_service(case: Case) -> Iterator[Finding]:
    """A door, or a port seen open from outside, runs a service the risk catalog warns about."""
    for door in case.doors:
        yield from _door(case, door)
    for reach in case.unexplained:
        yield from _reach(case, reach)


def _door(case: Case, door: Door) -> Iterator[Finding]:
    item, entry = door.listener, door.entry
    for risk in door.risks:
        if risk.kind == "exposure" and (
            door.exposure_reported
            or door.exposure_contained
            or door.verdict.verdict is Verdict.BLOCKED
        ):
            continue
        if waived(entry, case.ctx):
            continue
        if (
            door.provide is not None
            and risk.kind != "exposure"
            and risk.severity.rank < Severity.HIGH.rank
        ):
            continue  # documented, and not bad enough to repeat on every audit
        yield finding(
            FindingType.RISKY_SERVICE,
            risk.severity,
            f"{item.protocol.value}/{item.port}: {risk.title}",
            entry=entry,
            evidence=(door.seen, risk.reason, door.verdict.reason),
            remedy=advise.for_risk(item, risk.remedy, entry),
            **door.keys,
        )


def _reach(case: Case, reach: Reach) -> Iterator[Finding]:
    if case.baseline.denies_for(reach.protocol, reach.port) is not None:
        return  # the firewall-not-enforcing finding says it
    provide = case.baseline.provides_for(reach.protocol, reach.port)
    seen, _why = case.reach_evidence(reach)
    for risk in case.ctx.risks(reach.port, reach.protocol, reach.service):
        if waived(provide, case.ctx) or (
            provide is not None and risk.severity.rank < Severity.HIGH.rank
        ):
            continue
        yield finding(
            FindingType.RISKY_SERVICE,
            risk.severity,
            f"{reach.protocol.value}/{reach.port}: {risk.title}",
            entry=provide,
            evidence=(seen, risk.reason),
            remedy=advise.for_risk(None, risk.remedy, provide),
            **case.reach_keys(reach),
        )
