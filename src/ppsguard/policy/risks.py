"""Lint findings from the knowledge base's risk catalog for what a registry allows.

For each allowed (provides) entry, every catalog port inside its ranges, and each of its service
names, is looked up with `ppsguard.knowledge.risks.risks_for(port, protocol, service)`. Levels:
  error    critical risks; high risks reachable from anywhere; a cleartext service carrying
           confidential or restricted data;
  warning  other high risks; medium risks from anywhere;
  info     the rest, and anything covered by a waiver that has not expired.
"anywhere" means the entry's sources contain a whole address family (0.0.0.0/0 or ::/0). Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ppsguard.knowledge.risks import risk_catalog, risks_for
from ppsguard.model.findings import Severity
from ppsguard.model.registry import Action, Entry, EntryKind, Rule, Sensitivity
from ppsguard.policy.lint_findings import Finding, FindingLevel, PacketExample


def _from_anywhere(rules: Sequence[Rule]) -> bool:
    return any(net.prefixlen == 0 for rule in rules for net in rule.sources)


def risk_findings(entry: Entry, rules: Sequence[Rule], today: dt.date) -> list[Finding]:
    """Findings for one entry (see the module docstring)."""
    if entry.kind is not EntryKind.PROVIDES or entry.action is not Action.ALLOW:
        return []
    anywhere = _from_anywhere(rules)
    waived = entry.waiver is not None and entry.waiver.expires >= today
    sensitive = entry.sensitivity in (Sensitivity.CONFIDENTIAL, Sensitivity.RESTRICTED)
    out: list[Finding] = []
    seen: set[str] = set()
    listed = {(port, proto) for risk in risk_catalog() for port, proto in risk.ports}
    names: list[str | None] = list(entry.service.split("+")) if entry.service else [None]
    for rule in rules:
        # the catalog's ports inside the entry's ranges, and the first port for name matches
        ports = {
            p for p, proto in listed if proto == rule.protocol and any(p in r for r in rule.ports)
        }
        ports.add(rule.ports[0].first)
        for port in sorted(ports):
            for risk in (r for name in names for r in risks_for(port, rule.protocol, name)):
                if risk.id in seen:
                    continue
                seen.add(risk.id)
                cleartext_sensitive = (
                    risk.kind == "cleartext" and sensitive and entry.encrypted is not True
                )
                if risk.severity == Severity.CRITICAL or cleartext_sensitive:
                    level = FindingLevel.ERROR
                elif risk.severity == Severity.HIGH:
                    level = FindingLevel.ERROR if anywhere else FindingLevel.WARNING
                elif risk.severity == Severity.MEDIUM and anywhere:
                    level = FindingLevel.WARNING
                else:
                    level = FindingLevel.INFO
                note = ""
                if waived and entry.waiver is not None:
                    level = FindingLevel.INFO
                    note = f" (waived until {entry.waiver.expires}: {entry.waiver.reason})"
                where = "from anywhere" if anywhere else "from " + ", ".join(entry.sources)
                extra = " carrying sensitive data" if cleartext_sensitive else ""
                source = str(rule.sources[0].network_address) if rule.sources else "-"
                out.append(
                    Finding(
                        level,
                        f"risk-{risk.id}",
                        f"{entry.id!r} allows {entry.label} {where}{extra}: {risk.title} — "
                        f"{risk.remedy}{note}",
                        None,
                        (entry.id,),
                        entry.location,
                        PacketExample(source, port, str(rule.protocol)),
                    )
                )
    return out
