"""`audit_machine`: observe a machine (or a network namespace) and hold it against the registry.

    run = audit_machine(Path("registry.yaml"), netns=None, scan=True)
    run.report.findings

The edge of the audit: it loads the registry, takes the observations (`audit.sources`: I/O) and
hands them to the pure part, `evaluate` (the rule table in `audit.rules`). `evaluate` and
`baseline_for` read nothing from the machine, so a caller holding observations from elsewhere
(a stored run, a flow file) audits them with the same two calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ppsguard.audit.baseline import Baseline
from ppsguard.audit.context import AuditContext, knowledge_risks, knowledge_service_name
from ppsguard.audit.drift import find_drift, make_report
from ppsguard.audit.views import Observations
from ppsguard.model.findings import AuditReport
from ppsguard.model.net import IPNetwork
from ppsguard.model.registry import HostPolicy, Registry


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
    registry_path: Path | Registry | None,
    *,
    host: str | None = None,
    netns: str | None = None,
    scan: bool = True,
    scan_from: str | None = None,
    nmap_file: Path | None = None,
    local: bool = True,
    identify: bool = True,
    scope: Sequence[IPNetwork] | None = None,
) -> AuditRun:
    """Observe this machine (or `netns`) and audit it against the registry (if given); the
    outside view scans only addresses inside `scope` (when given)."""
    import socket

    from ppsguard.audit.sources import observe

    registry: Registry | None = None
    if isinstance(registry_path, Registry):
        registry = registry_path
        registry_path = Path(registry.files[0]) if registry.files else None
    elif registry_path is not None:
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
        scope=scope,
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
