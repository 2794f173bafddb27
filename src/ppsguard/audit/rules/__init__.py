"""The finding types of the audit, as a table: one rule per `FindingType`. Pure.

A rule is a function `Case -> Iterator[Finding]` (see `case.py` for what a `Case` holds). The
table `RULES` below is the one place where rules are registered; `audit.drift.find_drift` runs
every rule of it and orders what they find.

To add a finding type: add the member to `model.findings.FindingType`, write its rule beside the
rules that read the same things (listeners.py: the host's own doors; entries.py: the registry's
entries; outside.py: the outside view; firewall.py, risks.py), add one line to `RULES`, and one
row to the tests in tests/unit/test_audit_drift.py. A fact that several rules share belongs in
`case.Door` or `case.Case`, named once, never in a flag that one rule sets for another.

The order of the table does not matter: a finding's id includes its type, so two rules never
yield the same finding, and `find_drift` orders findings by severity, port and type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType

from ppsguard.audit.rules import entries, firewall, listeners, outside, risks
from ppsguard.audit.rules.case import Case
from ppsguard.model.findings import Finding, FindingType

RuleCheck = Callable[[Case], Iterator[Finding]]

RULES: Mapping[FindingType, RuleCheck] = MappingProxyType(
    {
        FindingType.UNREGISTERED_LISTENER: listeners.unregistered_listener,
        FindingType.MISSING_SERVICE: entries.missing_service,
        FindingType.EXPOSURE_WIDENED: listeners.exposure_widened,
        FindingType.OWNER_CHANGED: listeners.owner_changed,
        FindingType.REACHABLE_UNDOCUMENTED: outside.reachable_undocumented,
        FindingType.LISTENING_BUT_BLOCKED: listeners.listening_but_blocked,
        FindingType.FIREWALL_NOT_ENFORCING: firewall.firewall_not_enforcing,
        FindingType.RISKY_SERVICE: risks.risky_service,
        FindingType.PROTOCOL_MISMATCH: outside.protocol_mismatch,
        FindingType.WAIVER_EXPIRED: entries.waiver_expired,
    }
)

__all__ = ["RULES", "Case", "RuleCheck"]
