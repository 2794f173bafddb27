"""Finding rules about the outside view: a port open that nothing documents, a protocol mismatch.

Pure: each rule reads a `Case` and yields findings; see `rules/__init__.py` for the table.
"""

from __future__ import annotations

from collections.abc import Iterator

from ppsguard.audit import advise
from ppsguard.audit.rules.case import Case, finding, who
from ppsguard.audit.views import Reach
from ppsguard.model.findings import Finding, FindingType, Severity
from ppsguard.model.net import Family
from ppsguard.model.sockets import Exposure
from ppsguard.scan.identify import families


def reachable_undocumented(case: Case) -> Iterator[Finding]:
    """A port open from outside that no local listener explains and no entry documents."""
    for reach in case.unexplained:
        base = case.baseline
        if base.denies_for(reach.protocol, reach.port) is not None:
            continue  # firewall-not-enforcing says it
        if base.provides_for(reach.protocol, reach.port) is not None:
            continue
        yield finding(
            FindingType.REACHABLE_UNDOCUMENTED,
            Severity.HIGH,
            f"{reach.protocol.value}/{reach.port} ({reach.service or 'unknown'}) is open "
            "from outside but not in the registry",
            evidence=(
                *case.reach_evidence(reach),
                *(x for x in (reach.product, reach.banner) if x),
            ),
            remedy=advise.for_reachable(
                reach.protocol.value, reach.port, reach.service, case.apply
            ),
            **case.reach_keys(reach),
        )


def protocol_mismatch(case: Case) -> Iterator[Finding]:
    """Service identification found another protocol than the port's own (http on 22)."""
    view = case.obs.outside
    for reach in view.results if view is not None else ():
        entry = case.baseline.provides_for(reach.protocol, reach.port)
        documented = entry.service if entry is not None else None
        if documented and reach.identified:  # the registry's word replaces the port table's
            verdict = families.mismatch(documented, reach.identified, source="registry")
            if verdict is not None:
                yield _mismatch(case, reach, verdict.expected, verdict.found)
        elif reach.expected and reach.found:
            yield _mismatch(case, reach, reach.expected, reach.found)


def _mismatch(case: Case, reach: Reach, expected: str, found: str) -> Finding:
    """One finding per door: keyed by the local listener's bind when one explains the port
    (so the v4 and v6 views of one dual-stack socket are one finding), else the address."""
    holder = next(
        (
            item
            for item in case.obs.listeners or ()
            if item.protocol is reach.protocol
            and item.port == reach.port
            and (item.exposure is Exposure.ANY or item.address == reach.address)
        ),
        None,
    )
    return finding(
        FindingType.PROTOCOL_MISMATCH,
        Severity.MEDIUM,
        f"{reach.protocol.value}/{reach.port} should be {expected} but {found} answers",
        protocol=reach.protocol,
        family=holder.family if holder else Family.of(reach.address),
        address=str(holder.address) if holder else str(reach.address),
        port=reach.port,
        identity=f"{found}@{holder.service_identity}" if holder else found,
        entry=case.baseline.provides_for(reach.protocol, reach.port),
        evidence=tuple(
            x
            for x in (
                f"identified as {found} on {reach.address}",
                f"held by {who(holder)}" if holder else None,
                reach.product,
                reach.banner,
            )
            if x
        ),
        remedy=advise.for_mismatch(expected, found),
        pids=holder.pids if holder else (),
    )
