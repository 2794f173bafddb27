"""What the finding rules need besides the observations: today, the knowledge base, names. Pure.

The knowledge base (risk catalog, service names) is adapted here to plain callables, so the rules
take functions and a test can hand them its own; `knowledge_risks` and `knowledge_service_name`
are the real ones. Nothing here reads the machine.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass

from ppsguard.model.findings import Severity
from ppsguard.model.net import Protocol


@dataclass(frozen=True, slots=True)
class RiskNote:
    """A catalog risk as the audit needs it (see `knowledge.risks.Risk`)."""

    id: str
    severity: Severity
    title: str
    reason: str
    remedy: str
    kind: str  # cleartext | legacy | exposure


RiskLookup = Callable[[int, Protocol, str | None], tuple[RiskNote, ...]]
ServiceNamer = Callable[[int, Protocol], str | None]


def _no_risks(_port: int, _protocol: Protocol, _service: str | None) -> tuple[RiskNote, ...]:
    return ()


def _no_names(_port: int, _protocol: Protocol) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Today (for waivers), the knowledge base as callables, and what the remedies name."""

    today: dt.date
    risks: RiskLookup = _no_risks
    service_name: ServiceNamer = _no_names
    registry_file: str | None = None
    host: str | None = None
    netns: str | None = None


@functools.cache
def _risky_ports() -> frozenset[tuple[int, Protocol]]:
    from ppsguard.knowledge.risks import risk_catalog

    return frozenset(pair for risk in risk_catalog() for pair in risk.ports)


@functools.lru_cache(maxsize=65536)
def knowledge_risks(port: int, protocol: Protocol, service: str | None) -> tuple[RiskNote, ...]:
    """The knowledge base's risk catalog, as RiskNotes. The catalog is scanned linearly per
    call (~0.3 ms), so ports no risk lists and no service names are answered from an index
    (an audit of 35,000 doors: 15 s -> a few)."""
    from ppsguard.knowledge.risks import risks_for

    if not service and (port, protocol) not in _risky_ports():
        return ()

    return tuple(
        RiskNote(
            id=r.id,
            severity=r.severity,
            title=r.title,
            reason=r.reason,
            remedy=r.remedy,
            kind=r.kind,
        )
        for r in risks_for(port, protocol, service)
    )


@functools.lru_cache(maxsize=65536)
def knowledge_service_name(port: int, protocol: Protocol) -> str | None:
    """The registered service name of a (port, protocol), from the knowledge base."""
    from ppsguard.knowledge.services import service_name

    return service_name(port, protocol)


__all__ = [
    "AuditContext",
    "RiskLookup",
    "RiskNote",
    "ServiceNamer",
    "knowledge_risks",
    "knowledge_service_name",
]
