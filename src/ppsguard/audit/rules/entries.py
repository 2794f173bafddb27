"""Finding rules about the registry's own entries: a documented service missing, a waiver expired.

Pure: each rule reads a `Case` and yields findings; see `rules/__init__.py` for the table.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from ppsguard.audit import advise
from ppsguard.audit.rules.case import Case, finding
from ppsguard.model.findings import Finding, FindingType, Severity
from ppsguard.model.net import Protocol
from ppsguard.model.registry import ANYWHERE, Entry, ServicePort

_MAX_PROBED = 1024  # ports of one range looked up in the outside view


def waiver_expired(case: Case) -> Iterator[Finding]:
    """An entry's waiver ran out: the exception it granted needs a new decision."""
    for entry in case.baseline.entries:
        waiver = entry.waiver
        if waiver is None or waiver.expires >= case.ctx.today:
            continue
        yield finding(
            FindingType.WAIVER_EXPIRED,
            Severity.MEDIUM,
            f"the waiver of entry {entry.id!r} expired on {waiver.expires}",
            address="*",
            identity=entry.id,
            entry=entry,
            evidence=(f"waiver: {waiver.reason}", f"expired {waiver.expires}"),
            remedy=advise.for_waiver(entry),
        )


def missing_service(case: Case) -> Iterator[Finding]:
    """A documented service is not running: nothing listens on its ports (or, without a local
    inventory, an open-to-anywhere service is not open in the outside view)."""
    listeners = case.obs.listeners
    listening: dict[Protocol, list[int]] = {}
    for item in listeners or ():
        listening.setdefault(item.protocol, []).append(item.port)
    for ports in listening.values():
        ports.sort()
    for entry in case.baseline.provides():
        for sp in entry.ports:
            if listeners is not None:
                found = listening.get(sp.protocol, [])
                at = bisect.bisect_left(found, sp.ports.first)
                if at < len(found) and found[at] <= sp.ports.last:
                    continue
                how = "nothing listens on the host"
            elif _absent_outside(case, entry, sp):
                how = "not open in the outside view (no local inventory)"
            else:
                continue
            yield finding(
                FindingType.MISSING_SERVICE,
                Severity.LOW,
                f"{entry.service or entry.id} ({sp}) is documented but {how}",
                protocol=sp.protocol,
                address=str(entry.bind.address) if entry.bind and entry.bind.address else "*",
                port=sp.ports.first,
                identity=entry.unit or entry.process or f"entry:{entry.id}",
                entry=entry,
                evidence=(f"entry {entry.id!r} at {entry.location}: {sp}", how),
                remedy=advise.for_missing(entry),
            )


def _absent_outside(case: Case, entry: Entry, sp: ServicePort) -> bool:
    """An open-to-anywhere entry whose probed ports all answered closed or filtered."""
    outside = case.obs.outside
    if outside is None or entry.sources != (ANYWHERE,):
        return False
    probed = [
        p for p in range(sp.ports.first, sp.ports.last + 1) if outside.probed(sp.protocol, p)
    ][:_MAX_PROBED]
    return bool(probed) and not any(outside.open_on(sp.protocol, p) for p in probed)
