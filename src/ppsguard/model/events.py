"""Who came and went: one traffic or socket event, whatever saw it, and the alerts raised on it.

An `Event` is the common currency of the live monitor (`pps watch`: conntrack, NFLOG, socket-table
deltas) and of the evidence readers (`pps flows`): a time, a connection's 5-tuple oriented from
the side that opened it (`orig` -> `resp`, as Zeek names them), the direction relative to the
watched host, what kind of moment it records, counters when known, the Community ID, the source
of evidence, and the process or registry entry when known. Pure values; no I/O.

An `Alert` is what a detector says about events: a kind, a severity, a stable key (so an alert is
updated, not repeated, while its cause goes on), first and last seen, a count, the registry entry
or rule it concerns, and the evidence in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from ppsguard.model.findings import Severity
from ppsguard.model.net import IPAddress


class EventKind(StrEnum):
    """The moment an event records."""

    OPENED = "opened"  # a connection was seen starting (conntrack NEW, first packet)
    ANSWERED = "answered"  # the responder replied: established (TCP) or a reply (UDP)
    REFUSED = "refused"  # the responder refused (TCP RST, ICMP unreachable)
    CLOSED = "closed"  # the connection ended (conntrack DESTROY, flow record end)
    LOGGED = "logged"  # a firewall rule logged the packet (NFLOG, kernel log line)
    LISTENER_ADDED = "listener-added"
    LISTENER_REMOVED = "listener-removed"
    LISTENER_CHANGED = "listener-changed"  # bind widened or owner changed
    LOST = "lost"  # the source lost events (buffer overrun): `count` says how many, if known


class Direction(StrEnum):
    """Which way a connection goes, seen from the watched host."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    LOCAL = "local"  # both ends on this host
    TRANSIT = "transit"  # neither end is this host (routed, or evidence from elsewhere)
    UNKNOWN = "unknown"


class EvidenceSource(StrEnum):
    CONNTRACK = "conntrack"
    NFLOG = "nflog"
    SOCKETS = "sockets"
    SYNTHETIC = "synthetic"


@dataclass(frozen=True, slots=True)
class Event:
    """One observation. Addresses and ports are None where the kind has none (a LOST event).

    For TCP, `initiated` says whether the opening packet was a plain SYN (a real attempt) rather
    than a SYN-ACK or RST picked up mid-stream (backscatter, which is never a scan).
    """

    time: float
    kind: EventKind
    source: EvidenceSource
    protocol: str  # "tcp", "udp", "icmp", "ipv6-icmp", or the protocol number as text
    orig: IPAddress | None = None
    orig_port: int | None = None
    resp: IPAddress | None = None
    resp_port: int | None = None
    direction: Direction = Direction.UNKNOWN
    initiated: bool = True
    answered: bool | None = None  # did the responder answer (None: not known yet)
    state: str | None = None  # the source's own state word (conntrack TCP state, ...)
    orig_packets: int | None = None
    orig_bytes: int | None = None
    resp_packets: int | None = None
    resp_bytes: int | None = None
    community_id: str | None = None
    entry_id: str | None = None  # from a `pps:<entry id>` log prefix
    process: str | None = None
    pid: int | None = None
    count: int = 1  # LOST events: how many were lost (0 = unknown)
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class EntryRef:
    """A registry entry named by an alert: its id and where it is written."""

    id: str
    file: str
    line: int


@dataclass(slots=True)
class Alert:
    """A detector's finding; mutable while its cause goes on (last_seen, count, ports grow)."""

    key: str
    kind: str
    severity: Severity
    message: str
    first_seen: float
    last_seen: float
    remote: IPAddress | None = None
    local: IPAddress | None = None
    ports: list[int] = field(default_factory=list)
    protocol: str | None = None
    count: int = 1
    entry: EntryRef | None = None
    evidence: str = ""
    updates: int = 0  # how many times this alert was updated after it was first raised
