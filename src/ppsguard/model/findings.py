"""What an audit concludes: typed findings, their severity and remedy, the doors it saw.

Produced by `ppsguard.audit.drift` (pure: registry baseline x observations) and rendered by
`ppsguard.report` (console, JSON, Markdown, HTML building, CSV). Pure data.

A finding's `id` is a stable hash of (type, protocol, family, normalised bind address, port,
service identity): never a pid, fd or inode, so restarting every service changes no id and
creates no new finding. Drift tools that key on pids or inodes alert on every restart (the
complaints about Wazuh's rule 533: wazuh#179, wazuh-ansible#364).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from ppsguard.model.net import Family, Protocol


class FindingType(StrEnum):
    """The ten kinds of difference between the registry and what is observed."""

    UNREGISTERED_LISTENER = "unregistered-listener"
    MISSING_SERVICE = "missing-service"
    EXPOSURE_WIDENED = "exposure-widened"
    OWNER_CHANGED = "owner-changed"
    REACHABLE_UNDOCUMENTED = "reachable-undocumented"
    LISTENING_BUT_BLOCKED = "listening-but-blocked"
    FIREWALL_NOT_ENFORCING = "firewall-not-enforcing"
    RISKY_SERVICE = "risky-service"
    PROTOCOL_MISMATCH = "protocol-mismatch"
    WAIVER_EXPIRED = "waiver-expired"


class Severity(StrEnum):
    """How much a finding or a catalog risk matters, lowest first. The one severity scale:
    the knowledge base's risk catalog, lint and the audit all use it. Compares by rank
    (info < low < medium < high < critical), never alphabetically."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank

    def __lt__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: str) -> bool:
        if not isinstance(other, Severity):
            return NotImplemented
        return self.rank >= other.rank


_RANKS = {s: i for i, s in enumerate(Severity)}


class DoorStatus(StrEnum):
    """What the audit says of one open door, as the building draws it (worst first)."""

    RISKY = "risky"
    UNDOCUMENTED = "undocumented"
    BLOCKED = "blocked"
    DOCUMENTED = "documented"


def finding_id(  # noqa: PLR0917 - the six identity fields, in their documented order
    kind: FindingType | str,
    protocol: Protocol | str | None,
    family: Family | str | None,
    address: str | None,
    port: int | None,
    service_identity: str | None,
) -> str:
    """Stable id: 16 hex digits of SHA-256 over the identity fields (no pid, fd or inode)."""
    parts = (
        str(kind),
        str(protocol or "-"),
        str(family or "-"),
        address or "-",
        "-" if port is None else str(port),
        service_identity or "-",
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Remedy:
    """What to do: a sentence, commands that can be run, and registry YAML to add or remove."""

    summary: str
    commands: tuple[str, ...] = ()
    registry_yaml: str | None = None

    def text(self) -> str:
        lines = [self.summary, *(f"$ {c}" for c in self.commands)]
        if self.registry_yaml:
            lines.append(self.registry_yaml.rstrip())
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference, with the registry entry it concerns, the evidence and the remedy.

    `address` is the normalised bind address (v4-mapped unwrapped), `*` for an entry-level
    finding, None for a host-level one; `process` the service identity (unit, else executable,
    else command name); `pids` are shown as evidence only and never part of `id`.
    """

    id: str
    type: FindingType
    severity: Severity
    title: str
    protocol: Protocol | None = None
    family: Family | None = None
    address: str | None = None
    port: int | None = None
    process: str | None = None
    entry: str | None = None
    entry_location: str | None = None
    evidence: tuple[str, ...] = ()
    remedy: Remedy = field(default_factory=lambda: Remedy(""))
    pids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Door:
    """One open (protocol, port) of the host, as the building draws it."""

    protocol: Protocol
    port: int
    status: DoorStatus
    service: str | None
    process: str | None
    addresses: tuple[str, ...]
    reachable: bool | None
    findings: tuple[str, ...] = ()  # finding ids
    banner: str | None = None
    entry: str | None = None


@dataclass(frozen=True, slots=True)
class AuditReport:
    """A whole audit of one host: findings, the doors seen, and what each view could see."""

    host: str
    observed_at: dt.datetime
    findings: tuple[Finding, ...]
    doors: tuple[Door, ...]
    registry: str | None
    views: dict[str, str] = field(default_factory=dict)
    gaps: tuple[str, ...] = ()
    draft_hint: str | None = None

    def counts(self) -> dict[str, int]:
        """Findings per severity (every severity present, zero included)."""
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def by_type(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.type.value] = out.get(f.type.value, 0) + 1
        return dict(sorted(out.items()))

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def failing(self, threshold: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity.at_least(threshold))
