"""`pps audit`: hold what is running, reachable and enforced against the registry.

    report = audit_machine(registry_path, host=None, netns=None, scan=True).report

machine.py runs an audit (`audit_machine`, and the pure `evaluate` over observations taken
elsewhere). sources.py feeds the views (views.py) through one small Protocol, over the I/O in
observe.py. rules/ holds the finding types as a table, one rule each; drift.py runs the table.
baseline.py is the registry as one host's baseline, advise.py writes remedies, doors.py lists
the open doors for the building, init.py drafts a registry from what is observed. Everything but
observe.py, sources.py and `audit_machine` is pure.
"""

from __future__ import annotations

from ppsguard.audit.context import knowledge_risks, knowledge_service_name
from ppsguard.audit.machine import AuditRun, audit_machine, baseline_for, evaluate

__all__ = [
    "AuditRun",
    "audit_machine",
    "baseline_for",
    "evaluate",
    "knowledge_risks",
    "knowledge_service_name",
]
