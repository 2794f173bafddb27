"""The doors of the building: every open (protocol, port), with what the audit says of it. Pure.

A door is open when something listens on it locally (any bind) or the outside view found it open.
Its status is the worst thing the findings say: risky (a risk, a widened bind, a firewall that
does not hold), undocumented, blocked (listening but dropped), else documented.
"""

from __future__ import annotations

from collections.abc import Callable

from ppsguard.audit.baseline import Baseline
from ppsguard.audit.views import Observations, ReachState, Vantage
from ppsguard.model.findings import Door, DoorStatus, Finding, FindingType
from ppsguard.model.net import Protocol

_RISKY = {
    FindingType.RISKY_SERVICE,
    FindingType.EXPOSURE_WIDENED,
    FindingType.FIREWALL_NOT_ENFORCING,
    FindingType.PROTOCOL_MISMATCH,
    FindingType.OWNER_CHANGED,
}
_UNDOCUMENTED = {FindingType.UNREGISTERED_LISTENER, FindingType.REACHABLE_UNDOCUMENTED}


def status_of(findings: list[Finding], documented: bool) -> DoorStatus:
    types = {f.type for f in findings}
    if types & _RISKY:
        return DoorStatus.RISKY
    if types & _UNDOCUMENTED or not documented:
        return DoorStatus.UNDOCUMENTED
    if FindingType.LISTENING_BUT_BLOCKED in types:
        return DoorStatus.BLOCKED
    return DoorStatus.DOCUMENTED


def doors_of(
    obs: Observations,
    baseline: Baseline,
    findings: tuple[Finding, ...],
    service_name: Callable[[int, Protocol], str | None],
) -> tuple[Door, ...]:
    """One Door per open (protocol, port), sorted by port then protocol."""
    addresses: dict[tuple[Protocol, int], list[str]] = {}
    process: dict[tuple[Protocol, int], str | None] = {}
    for item in obs.listeners or ():
        key = (item.protocol, item.port)
        addresses.setdefault(key, []).append(str(item.address))
        process[key] = process.get(key) or item.service_identity
    reached: dict[tuple[Protocol, int], tuple[str | None, str | None]] = {}
    if obs.outside is not None:
        for reach in obs.outside.results:
            if reach.state is not ReachState.OPEN:
                continue
            reached[(reach.protocol, reach.port)] = (reach.service, reach.banner)
            if obs.outside.vantage is Vantage.SELF:
                continue
            seen_at = addresses.setdefault((reach.protocol, reach.port), [])
            if str(reach.address) not in seen_at:
                seen_at.append(str(reach.address))
    per_door: dict[tuple[Protocol | None, int | None], list[Finding]] = {}
    for finding in findings:
        per_door.setdefault((finding.protocol, finding.port), []).append(finding)
    doors: list[Door] = []
    for (protocol, port), where in sorted(
        addresses.items(), key=lambda kv: (kv[0][1], kv[0][0].value)
    ):
        mine = per_door.get((protocol, port), [])
        entry = baseline.provides_for(protocol, port) or baseline.denies_for(protocol, port)
        seen_service, banner = reached.get((protocol, port), (None, None))
        remote = obs.outside is not None and obs.outside.vantage is not Vantage.SELF
        doors.append(
            Door(
                protocol=protocol,
                port=port,
                status=status_of(mine, entry is not None),
                service=seen_service
                or (entry.service if entry else None)
                or service_name(port, protocol),
                process=process.get((protocol, port)),
                addresses=tuple(where),
                reachable=((protocol, port) in reached) if remote else None,
                findings=tuple(f.id for f in mine),
                banner=banner,
                entry=entry.id if entry else None,
            )
        )
    return tuple(doors)
