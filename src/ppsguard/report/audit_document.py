"""The `ppsguard.audit` document (`pps audit --json`): built from an `AuditReport`, and read back.

    {"schema": "ppsguard.audit", "version": 1, "host": "building",
     "observed_at": "2026-12-02T07:00:00+00:00", "registry": "examples/seed-building.yaml",
     "findings": [{"id": "3f2a...", "type": "risky-service", "severity": "high", "title": ...,
                   "protocol": "tcp", "port": 21, "address": "::", "family": "ipv6",
                   "process": ..., "pids": [...], "entry": "ftp", "entry_location": ...,
                   "evidence": [...], "remedy": {"summary": ..., "commands": [...],
                                                 "registry_yaml": ...}}],
     "doors": [{"protocol": "tcp", "port": 21, "status": "risky", "service": "ftp", ...}],
     "summary": {"findings": 6, "by_severity": {...}, "by_type": {...}, "open_doors": 7,
                 "fail_on": "medium", "failing": 6, "views": {...}, "gaps": [...],
                 "draft_hint": null}}

`summary` repeats counts for readers that want no arithmetic; `fail_on` and `failing` describe
the run's threshold, not the report, so `load_audit` reads `views`, `gaps` and `draft_hint` from
it and ignores the rest. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ppsguard.model.findings import (
    AuditReport,
    Door,
    DoorStatus,
    Finding,
    FindingType,
    Remedy,
    Severity,
)
from ppsguard.model.net import Family, Protocol
from ppsguard.report.documents import loader, stamp

SCHEMA = "ppsguard.audit"


def finding_document(f: Finding) -> dict[str, Any]:
    """One finding with its evidence and remedy."""
    return {
        "id": f.id,
        "type": f.type.value,
        "severity": f.severity.value,
        "title": f.title,
        "protocol": f.protocol.value if f.protocol else None,
        "port": f.port,
        "address": f.address,
        "family": f.family.value if f.family else None,
        "process": f.process,
        "pids": list(f.pids),
        "entry": f.entry,
        "entry_location": f.entry_location,
        "evidence": list(f.evidence),
        "remedy": {
            "summary": f.remedy.summary,
            "commands": list(f.remedy.commands),
            "registry_yaml": f.remedy.registry_yaml,
        },
    }


def door_document(d: Door) -> dict[str, Any]:
    """One open door as the building draws it."""
    return {
        "protocol": d.protocol.value,
        "port": d.port,
        "status": d.status.value,
        "service": d.service,
        "process": d.process,
        "addresses": list(d.addresses),
        "reachable": d.reachable,
        "findings": list(d.findings),
        "banner": d.banner,
        "entry": d.entry,
    }


def audit_document(report: AuditReport, fail_on: Severity = Severity.MEDIUM) -> dict[str, Any]:
    """The whole audit as the `ppsguard.audit` document (`fail_on`: the run's exit threshold)."""
    return {
        **stamp(SCHEMA),
        "host": report.host,
        "observed_at": report.observed_at.isoformat(),
        "registry": report.registry,
        "findings": [finding_document(f) for f in report.findings],
        "doors": [door_document(d) for d in report.doors],
        "summary": {
            "findings": len(report.findings),
            "by_severity": report.counts(),
            "by_type": report.by_type(),
            "open_doors": len(report.doors),
            "fail_on": fail_on.value,
            "failing": len(report.failing(fail_on)),
            "views": dict(report.views),
            "gaps": list(report.gaps),
            "draft_hint": report.draft_hint,
        },
    }


@loader(SCHEMA)
def load_audit(value: Mapping[str, Any]) -> AuditReport:
    """Read a `ppsguard.audit` document back into an `AuditReport` (validated first)."""
    summary = value["summary"]
    return AuditReport(
        host=value["host"],
        observed_at=dt.datetime.fromisoformat(value["observed_at"]),
        findings=tuple(_finding(f) for f in value["findings"]),
        doors=tuple(_door(d) for d in value["doors"]),
        registry=value["registry"],
        views=dict(summary["views"]),
        gaps=tuple(summary["gaps"]),
        draft_hint=summary["draft_hint"],
    )


def _finding(f: Mapping[str, Any]) -> Finding:
    remedy = f["remedy"]
    return Finding(
        id=f["id"],
        type=FindingType(f["type"]),
        severity=Severity(f["severity"]),
        title=f["title"],
        protocol=None if f["protocol"] is None else Protocol(f["protocol"]),
        family=None if f["family"] is None else Family(f["family"]),
        address=f["address"],
        port=f["port"],
        process=f["process"],
        entry=f["entry"],
        entry_location=f["entry_location"],
        evidence=tuple(f["evidence"]),
        remedy=Remedy(remedy["summary"], tuple(remedy["commands"]), remedy["registry_yaml"]),
        pids=tuple(f["pids"]),
    )


def _door(d: Mapping[str, Any]) -> Door:
    return Door(
        protocol=Protocol(d["protocol"]),
        port=d["port"],
        status=DoorStatus(d["status"]),
        service=d["service"],
        process=d["process"],
        addresses=tuple(d["addresses"]),
        reachable=d["reachable"],
        findings=tuple(d["findings"]),
        banner=d["banner"],
        entry=d["entry"],
    )
