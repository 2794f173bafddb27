"""What a scan finds: hosts, ports, states with nmap's names and reasons, and identified services.

Shared by the scan engines (which produce it), service identification (which fills `service`),
the nmap XML import/export, and the audit (which consumes it). Pure data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from ppsguard.model.net import IPAddress, Protocol


class PortState(StrEnum):
    """Port states exactly as nmap names them."""

    OPEN = "open"
    CLOSED = "closed"
    FILTERED = "filtered"
    UNFILTERED = "unfiltered"
    OPEN_FILTERED = "open|filtered"
    CLOSED_FILTERED = "closed|filtered"


class Reason(StrEnum):
    """Why a port got its state (nmap's reason names)."""

    SYN_ACK = "syn-ack"
    CONN_REFUSED = "conn-refused"
    RESET = "reset"
    NO_RESPONSE = "no-response"
    PORT_UNREACH = "port-unreach"
    HOST_UNREACH = "host-unreach"
    NET_UNREACH = "net-unreach"
    PROTO_UNREACH = "proto-unreach"
    ADMIN_PROHIBITED = "admin-prohibited"
    HOST_PROHIBITED = "host-prohibited"
    NET_PROHIBITED = "net-prohibited"
    UDP_RESPONSE = "udp-response"
    USER_SET = "user-set"
    LOCALHOST_RESPONSE = "localhost-response"
    ECHO_REPLY = "echo-reply"
    ARP_RESPONSE = "arp-response"
    ND_RESPONSE = "nd-response"
    TIMESTAMP_REPLY = "timestamp-reply"
    UNKNOWN = "unknown"


class HostState(StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


class Confidence(StrEnum):
    """How sure a service identification is."""

    CONFIRMED = "confirmed"  # a protocol handshake was parsed
    MATCHED = "matched"  # a signature matched
    GUESSED = "guessed"  # port number only


@dataclass(frozen=True, slots=True)
class TlsInfo:
    """TLS as spoken on a port (directly or after STARTTLS)."""

    version: str
    cipher: str
    subject: str | None = None
    issuer: str | None = None
    sans: tuple[str, ...] = ()
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    self_signed: bool | None = None
    expired: bool | None = None
    starttls: str | None = None  # the protocol that upgraded, e.g. "smtp"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What was sent and what came back (escaped text, safe for terminals and reports)."""

    probe: str | None
    response: str | None
    elapsed_s: float | None = None


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The service found is not the one the port number suggests."""

    expected: str
    found: str


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """The service identified behind one open port."""

    name: str | None
    product: str | None = None
    version: str | None = None
    extra: str | None = None
    cpe: tuple[str, ...] = ()
    confidence: Confidence = Confidence.GUESSED
    tls: TlsInfo | None = None
    evidence: Evidence | None = None
    mismatch: Mismatch | None = None


@dataclass(frozen=True, slots=True)
class PortResult:
    """One port of one host."""

    port: int
    protocol: Protocol
    state: PortState
    reason: Reason
    service: ServiceInfo | None = None
    reason_ttl: int | None = None


@dataclass(frozen=True, slots=True)
class HostResult:
    """One scanned host. `ports` lists open ports (all ports with --all-states); `summary` counts
    every state; `flags` carries accuracy warnings such as "implausible-open-share"; `reason` says
    why discovery found it up or down (None: not asked, as with -Pn); `error` also carries why an
    address was not scanned ("not scanned: broadcast address")."""

    address: IPAddress | None  # None: the hostname did not resolve (see `error`)
    hostname: str | None
    state: HostState
    ports: tuple[PortResult, ...] = ()
    summary: dict[str, int] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    error: str | None = None
    reason: Reason | None = None


@dataclass(frozen=True, slots=True)
class ScanStats:
    started: dt.datetime
    elapsed_s: float
    probes_sent: int
    retransmissions: int
    seed: int


@dataclass(frozen=True, slots=True)
class ScanResult:
    """A whole scan: what `pps scan --json` prints and `-oX` writes."""

    hosts: tuple[HostResult, ...]
    stats: ScanStats
    engine: str = "connect"
    arguments: str = ""
