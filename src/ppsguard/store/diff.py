"""What changed between two runs: ports opened, closed, changed state, service or version;
findings new and fixed. Pure: two Snapshots in, one Difference out (rendered by the CLI).

Like ndiff, a port missing from one side counts as not open there (nmap XML lists only the ports
it reports), so "open -> absent" is a closed door.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ppsguard.store.documents import PortView, Snapshot

PortKey = tuple[str, str, int]


@dataclass(frozen=True, slots=True)
class PortChange:
    host: str
    protocol: str
    port: int
    change: str  # opened, closed, state, service, version
    before: PortView | None
    after: PortView | None

    def as_dict(self) -> dict[str, Any]:
        def view(v: PortView | None) -> dict[str, Any] | None:
            return (
                None
                if v is None
                else {"state": v.state, "service": v.service, "version": v.version}
            )

        return {
            "host": self.host,
            "protocol": self.protocol,
            "port": self.port,
            "change": self.change,
            "before": view(self.before),
            "after": view(self.after),
        }


@dataclass(frozen=True, slots=True)
class Difference:
    ports: list[PortChange] = field(default_factory=list)
    new_findings: list[dict[str, Any]] = field(default_factory=list)
    fixed_findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def same(self) -> bool:
        return not (self.ports or self.new_findings or self.fixed_findings)

    def as_dict(self, a: str, b: str) -> dict[str, Any]:
        return {
            "a": a,
            "b": b,
            "same": self.same,
            "ports": [p.as_dict() for p in self.ports],
            "findings_new": self.new_findings,
            "findings_fixed": self.fixed_findings,
        }


def _change(before: PortView | None, after: PortView | None) -> str | None:
    was_open = before is not None and before.state == "open"
    is_open = after is not None and after.state == "open"
    if was_open and not is_open:
        return "closed"
    if is_open and not was_open:
        return "opened"
    if before is None or after is None:
        return None if before is after else "state"
    if before.state != after.state:
        return "state"
    if before.service != after.service:
        return "service"
    if before.version != after.version:
        return "version"
    return None


def compare(a: Snapshot, b: Snapshot) -> Difference:
    changes = []
    for key in sorted(set(a.ports) | set(b.ports), key=lambda k: (k[0], k[2], k[1])):
        before, after = a.ports.get(key), b.ports.get(key)
        change = _change(before, after)
        if change is not None:
            changes.append(PortChange(key[0], key[1], key[2], change, before, after))
    new = [b.findings[k] for k in sorted(set(b.findings) - set(a.findings))]
    fixed = [a.findings[k] for k in sorted(set(a.findings) - set(b.findings))]
    return Difference(changes, new, fixed)
