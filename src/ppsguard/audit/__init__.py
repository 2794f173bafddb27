"""`pps audit`: hold what is running, reachable and enforced against the registry.

    report = audit_machine(registry_path, host=None, netns=None, scan=True).report

observe.py collects (I/O), drift.py compares (pure), advise.py writes remedies, doors.py lists
the open doors for the building, init.py drafts a registry from what is observed. The knowledge
base (risk catalog, service names) is adapted here so the pure core takes plain callables.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

from ppsguard.audit.baseline import Baseline
from ppsguard.audit.drift import AuditContext, RiskNote, find_drift, make_report
from ppsguard.audit.views import Observations
from ppsguard.model.findings import AuditReport, Severity
from ppsguard.model.net import Protocol
from ppsguard.model.registry import HostPolicy, Registry


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
            severity=Severity(r.severity.value),
            title=r.title,
            reason=r.reason,
            remedy=r.remedy,
            kind=r.kind,
        )
        for r in risks_for(port, protocol, service)
    )


@functools.lru_cache(maxsize=65536)
def knowledge_service_name(port: int, protocol: Protocol) -> str | None:
    from ppsguard.knowledge.services import service_name

    return service_name(port, protocol)


def baseline_for(registry: Registry | None, host: str | None) -> tuple[Baseline, HostPolicy | None]:
    """The host's baseline and compiled policy; an empty baseline without a registry."""
    if registry is None:
        return Baseline(None, (), None, None), None
    from ppsguard.policy.compile import compile_host_policy, ordered_entries, select_host

    chosen = select_host(registry, host)
    policy = compile_host_policy(registry, chosen.name)
    baseline = Baseline(
        host=chosen,
        entries=ordered_entries(registry, chosen),
        default=policy.default_action,
        registry_file=registry.files[0] if registry.files else None,
    )
    return baseline, policy


def evaluate(
    obs: Observations,
    baseline: Baseline,
    *,
    registry_file: str | None,
    host: str | None,
    netns: str | None,
    today: dt.date | None = None,
) -> AuditReport:
    """Pure part of the audit over already collected observations."""
    ctx = AuditContext(
        today=today or obs.observed_at.date(),
        risks=knowledge_risks,
        service_name=knowledge_service_name,
        registry_file=registry_file,
        host=host,
        netns=netns,
    )
    findings = find_drift(obs, baseline, ctx)
    return make_report(obs, baseline, ctx, findings)


@dataclass(frozen=True, slots=True)
class AuditRun:
    """One audit of a machine: the report, and the baseline it was held against."""

    report: AuditReport
    baseline: Baseline


def audit_machine(
    registry_path: Path | None,
    *,
    host: str | None = None,
    netns: str | None = None,
    scan: bool = True,
    scan_from: str | None = None,
    nmap_file: Path | None = None,
    local: bool = True,
    identify: bool = True,
) -> AuditRun:
    """Observe this machine (or `netns`) and audit it against the registry (if given)."""
    import socket

    from ppsguard.audit.observe import observe

    registry = None
    if registry_path is not None:
        from ppsguard.registry.load import load_registry

        registry = load_registry(registry_path)
    baseline, policy = baseline_for(registry, host)
    name = baseline.host.name if baseline.host else (host or netns or socket.gethostname())
    obs = observe(
        host=name,
        baseline=baseline,
        policy=policy,
        netns=netns,
        local=local,
        scan=scan,
        scan_from=scan_from,
        nmap_file=nmap_file,
        identify=identify,
    )
    report = evaluate(
        obs,
        baseline,
        registry_file=str(registry_path) if registry_path else None,
        host=baseline.host.name if baseline.host else host,
        netns=netns,
    )
    return AuditRun(report, baseline)


__all__ = ["AuditRun", "audit_machine", "baseline_for", "evaluate"]
