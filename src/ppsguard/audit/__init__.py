"""`pps audit`: hold what is running, reachable and enforced against the registry.

    report = audit_machine(registry_path, host=None, netns=None, scan=True).report

machine.py runs an audit (`audit_machine`, and the pure `evaluate` over observations taken
elsewhere). sources.py feeds the views (views.py) through one small Protocol, over the I/O in
observe.py. rules/ holds the finding types as a table, one rule each; drift.py runs the table.
baseline.py is the registry as one host's baseline, advise.py writes remedies, doors.py lists
the open doors for the building, init.py drafts a registry from what is observed. Everything but
observe.py, sources.py and `audit_machine` is pure.

The names below are loaded on first use: `pps flows audit` and `pps watch` need only
baseline.py, and importing machine.py (the rules, service identification, TLS) cost them 0.3 s
of start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ppsguard.lazy import lazy_names

if TYPE_CHECKING:
    from ppsguard.audit.context import knowledge_risks, knowledge_service_name
    from ppsguard.audit.machine import AuditRun, audit_machine, baseline_for, evaluate

_HOMES = {
    "AuditRun": "machine",
    "audit_machine": "machine",
    "baseline_for": "machine",
    "evaluate": "machine",
    "knowledge_risks": "context",
    "knowledge_service_name": "context",
}


__getattr__ = lazy_names(__name__, _HOMES)

__all__ = [
    "AuditRun",
    "audit_machine",
    "baseline_for",
    "evaluate",
    "knowledge_risks",
    "knowledge_service_name",
]
