"""The drift engine: registry baseline x observations -> typed findings, worst first. Pure.

Every finding type is one rule in the table `audit.rules.RULES`; this module runs the table over
one host's `Case`, keeps the first finding of each id, and orders them: severity (worst first),
then port, then type. `make_report` bundles the findings with the doors and the views taken.
Identity never uses pids (see `model.findings.finding_id`).
"""

from __future__ import annotations

from collections.abc import Mapping

from ppsguard.audit.baseline import Baseline
from ppsguard.audit.context import AuditContext
from ppsguard.audit.rules import RULES, Case, RuleCheck
from ppsguard.audit.views import Observations
from ppsguard.model.findings import AuditReport, Finding, FindingType


def find_drift(
    obs: Observations,
    baseline: Baseline,
    ctx: AuditContext,
    rules: Mapping[FindingType, RuleCheck] = RULES,
) -> tuple[Finding, ...]:
    """Every finding for one host, worst first, then by port (then type)."""
    case = Case.of(obs, baseline, ctx)
    found: dict[str, Finding] = {}
    for check in rules.values():
        for item in check(case):
            found.setdefault(item.id, item)
    return tuple(
        sorted(
            found.values(),
            key=lambda f: (-f.severity.rank, f.port if f.port is not None else -1, f.type.value),
        )
    )


def _firewall(obs: Observations) -> str:
    """`enforced`, or `enforced; other managers: ufw, docker` (`firewall.coexist`)."""
    assert obs.firewall is not None
    names = ", ".join(obs.firewall.managers)
    return str(obs.firewall.state) + (f"; other managers: {names}" if names else "")


def make_report(
    obs: Observations, baseline: Baseline, ctx: AuditContext, findings: tuple[Finding, ...]
) -> AuditReport:
    """Bundle findings with the doors (see `doors.py`) and what each view saw."""
    from ppsguard.audit.doors import doors_of

    outside = obs.outside
    seen_from = "not taken"
    if outside is not None:
        addresses = ", ".join(str(a) for a in outside.addresses) or "no address"
        seen_from = f"{outside.vantage} view of {addresses}"
    views = {
        "inventory": "not taken" if obs.listeners is None else f"{len(obs.listeners)} listeners",
        "outside": seen_from,
        "firewall": "not read" if obs.firewall is None else _firewall(obs),
        "registry": ctx.registry_file or "none",
    }
    hint = None
    if not baseline.documented:
        hint = "no registry: draft one with `pps registry init --from-local -o registry.yaml`"
    return AuditReport(
        host=obs.host,
        observed_at=obs.observed_at,
        findings=findings,
        doors=doors_of(obs, baseline, findings, ctx.service_name),
        registry=ctx.registry_file,
        views=views,
        gaps=obs.gaps,
        draft_hint=hint,
    )


__all__ = ["find_drift", "make_report"]
