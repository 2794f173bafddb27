"""Resolve a `pps port` query ("3306", "mysql", "23/tcp", "mysql/udp") into port facts.

Pure apart from reading this host's ephemeral range. Errors are UsageError naming the token,
with a did-you-mean suggestion for misspelt service names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from ppsguard.errors import UsageError
from ppsguard.knowledge.ranges import host_ephemeral_range, range_class
from ppsguard.knowledge.risks import Risk, risks_for
from ppsguard.knowledge.services import ServiceCatalog, ServiceEntry, default_catalog
from ppsguard.model.net import MAX_PORT, PortRange, Protocol, RangeClass

QUERY_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
_MAX_QUERY = 100
_NUMBER = re.compile(r"[0-9]+")
_NAME = re.compile(r"[a-z0-9][a-z0-9._+-]*")


@dataclass(frozen=True, slots=True)
class PortInfo:
    """Everything ppsguard knows about one port and protocol."""

    port: int
    protocol: Protocol
    range: RangeClass
    ephemeral: bool
    services: tuple[str, ...]
    risks: tuple[Risk, ...]
    entries: tuple[ServiceEntry, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The documented `pps port --json` shape of one match."""
        return {
            "port": self.port,
            "protocol": self.protocol.value,
            "range": self.range.value,
            "ephemeral": self.ephemeral,
            "services": list(self.services),
            "risks": [
                {
                    "id": risk.id,
                    "severity": risk.severity.value,
                    "reason": risk.reason,
                    "remedy": risk.remedy,
                }
                for risk in self.risks
            ],
        }


def port_info(
    port: int,
    protocol: Protocol,
    catalog: ServiceCatalog | None = None,
    ephemeral: PortRange | None = None,
) -> PortInfo:
    """Facts about one port/protocol: range, ephemeral, names and risks (by port and by name)."""
    catalog = default_catalog() if catalog is None else catalog
    window = host_ephemeral_range() if ephemeral is None else ephemeral
    entries = catalog.entries_for(port, protocol)
    names = catalog.names_for(port, protocol)
    risks: dict[str, Risk] = {risk.id: risk for risk in risks_for(port, protocol)}
    for entry in entries:
        for risk in risks_for(port, protocol, entry.name):
            risks.setdefault(risk.id, risk)
    ordered = tuple(sorted(risks.values(), key=lambda risk: -risk.severity.rank))
    return PortInfo(
        port=port,
        protocol=protocol,
        range=range_class(port),
        ephemeral=port in window,
        services=names,
        risks=ordered,
        entries=entries,
    )


def _shown(token: str) -> str:
    return token if len(token) <= 30 else token[:30] + "..."


def _parse_port(text: str, original: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise UsageError("not a port number", token=_shown(original))
    if len(text) > 5 or int(text) > MAX_PORT:
        raise UsageError("port out of range 0-65535", token=_shown(original))
    return int(text)


def _parse_protocol(text: str, original: str) -> Protocol:
    try:
        protocol = Protocol(text)
    except ValueError:
        protocol = None
    if protocol not in QUERY_PROTOCOLS:
        allowed = "/".join(p.value for p in QUERY_PROTOCOLS)
        raise UsageError(f"unknown protocol (use {allowed})", token=_shown(original))
    assert protocol is not None
    return protocol


def _unknown_name(name: str, catalog: ServiceCatalog) -> UsageError:
    close = difflib.get_close_matches(name, catalog.known_names(), n=1, cutoff=0.7)
    hint = f"did you mean {close[0]!r}?" if close else None
    return UsageError("unknown service name", token=_shown(name), hint=hint)


def resolve_query(query: str, catalog: ServiceCatalog | None = None) -> list[PortInfo]:
    """Turn a query into matches, ordered by port then protocol.

    - `3306`: the protocols that have a name there; `tcp` and `udp` if the port is unassigned.
    - `23/tcp`: exactly that port and protocol (assigned or not).
    - `mysql` (name or alias, any case): every port and protocol the name is assigned to.
    - `mysql/udp`: the same, restricted to one protocol.
    Raises UsageError for an unknown name, a port outside 0-65535 or an unknown protocol.
    """
    catalog = default_catalog() if catalog is None else catalog
    original = query
    text = query.strip().lower()
    if not text:
        raise UsageError("empty port query", hint="give a port number, name or PORT/PROTO")
    if len(text) > _MAX_QUERY:
        raise UsageError("port query too long", token=_shown(original))
    window = host_ephemeral_range()
    head, slash, tail = text.partition("/")
    protocol = _parse_protocol(tail, original) if slash else None

    if _NUMBER.fullmatch(head):
        port = _parse_port(head, original)
        if protocol is not None:
            protocols: tuple[Protocol, ...] = (protocol,)
        else:
            protocols = tuple(p for p in QUERY_PROTOCOLS if catalog.names_for(port, p))
            protocols = protocols or (Protocol.TCP, Protocol.UDP)
        return [port_info(port, p, catalog, window) for p in protocols]

    if not _NAME.fullmatch(head):
        raise UsageError("not a port number or service name", token=_shown(original))
    entries = catalog.ports_for(head)
    if not entries:
        raise _unknown_name(head, catalog)
    pairs = dict.fromkeys((e.port, e.protocol) for e in entries)
    if protocol is not None:
        pairs = {pair: None for pair in pairs if pair[1] == protocol}
        if not pairs:
            raise UsageError(
                f"service {head!r} has no {protocol.value} port",
                token=_shown(original),
                hint="try it without /" + protocol.value,
            )
    ordered = sorted(pairs, key=lambda pair: (pair[0], QUERY_PROTOCOLS.index(pair[1])))
    return [port_info(port, proto, catalog, window) for port, proto in ordered]
