"""The one adapter between the documents the commands print and the store's rows.

Today the documents are what `pps audit --json` (cli/audit.py `report_document`), `pps scan
--json` (cli/scan.py `result_json`) and `pps sockets --json` (a list of cli/sockets.py rows)
print. When the report layer's schema-named documents land, only this module changes.

Pure: values in, values out — no database, no files, no clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from ppsguard.errors import InputError

KINDS = ("sockets", "scan", "audit", "watch", "flows-audit")
SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class PortView:
    """One port of one host as a diff compares it."""

    state: str
    service: str | None = None
    version: str | None = None
    process: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What two runs are compared on: ports per (host, protocol, port), findings per id."""

    ports: dict[tuple[str, str, int], PortView] = field(default_factory=dict)
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    label: str = ""


def kind_of(document: Any, source: str = "document") -> str:
    """Which command wrote `document` (audit, scan, sockets), or InputError."""
    if isinstance(document, dict):
        schema = document.get("schema")
        if isinstance(schema, str):  # the report layer's named documents
            for kind in KINDS:
                if schema.startswith(("ppsguard." + kind, kind)):
                    return kind
        if "findings" in document and "doors" in document:
            return "audit"
        if "hosts" in document and "stats" in document:
            return "scan"
    if isinstance(document, list) and all(
        isinstance(r, dict) and "local_port" in r for r in document
    ):
        return "sockets"
    raise InputError(
        "not a document written by pps audit, pps scan or pps sockets with --json", file=source
    )


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO time as naive UTC (the store's convention), or None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def observed_at(kind: str, document: Any) -> dt.datetime | None:
    if kind == "audit":
        return parse_time(document.get("observed_at"))
    if kind == "scan":
        return parse_time((document.get("stats") or {}).get("started"))
    if isinstance(document, dict):
        return parse_time(document.get("observed_at"))
    return None


def _text(value: Any, limit: int = 2000) -> str | None:
    return None if value is None else str(value)[:limit]


def _keyed(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _other_findings(kind: str, document: Any) -> list[dict[str, Any]]:
    """Watch alerts and flow-audit findings as finding rows (keys: alert key; type + entry)."""
    rows = []
    if kind == "watch":
        for a in document.get("alerts") or []:
            ports = a.get("ports") or []
            rows.append(
                {
                    "key": _keyed("watch", a.get("key")),
                    "type": str(a.get("kind") or "")[:64],
                    "severity": str(a.get("severity") or "info")[:16],
                    "title": str(a.get("message") or ""),
                    "protocol": _text(a.get("proto"), 8),
                    "port": ports[0] if len(ports) == 1 and isinstance(ports[0], int) else None,
                    "address": _text(a.get("remote"), 64),
                    "process": None,
                }
            )
    elif kind == "flows-audit":
        for f in document.get("findings") or []:
            rows.append(
                {
                    "key": _keyed("flows", f.get("type"), f.get("entry")),
                    "type": str(f.get("type") or "")[:64],
                    "severity": str(f.get("severity") or "info")[:16],
                    "title": str(f.get("message") or ""),
                    "protocol": None,
                    "port": None,
                    "address": None,
                    "process": None,
                }
            )
    return rows


def finding_rows(kind: str, document: Any) -> list[dict[str, Any]]:
    """One row per finding, keyed by the finding's stable id (audits), the alert's key (watch),
    or type and registry entry (flow audits)."""
    if kind != "audit":
        return _other_findings(kind, document)
    rows = []
    for f in document.get("findings") or []:
        rows.append(
            {
                "key": str(f["id"])[:64],
                "type": str(f.get("type") or "")[:64],
                "severity": str(f.get("severity") or "info")[:16],
                "title": str(f.get("title") or ""),
                "protocol": _text(f.get("protocol"), 8),
                "port": f.get("port") if isinstance(f.get("port"), int) else None,
                "address": _text(f.get("address"), 64),
                "process": _text(f.get("process")),
            }
        )
    return rows


def _service_version(service: Any) -> tuple[str | None, str | None]:
    if not isinstance(service, dict):
        return None, None
    words = [service.get("product"), service.get("version"), service.get("extra")]
    version = " ".join(str(w) for w in words if w) or None
    return _text(service.get("name"), 200), version


def _process_of(row: dict[str, Any]) -> str | None:
    if row.get("unit"):
        return _text(row["unit"])
    for owner in row.get("owners") or []:
        return _text(owner.get("exe") or owner.get("comm"))
    return "kernel" if row.get("kernel_owned") else None


def door_rows(kind: str, document: Any) -> list[dict[str, Any]]:
    """One row per open door: audit doors, listening sockets, open (or all listed) scan ports."""
    rows: list[dict[str, Any]] = []
    if kind == "audit":
        for d in document.get("doors") or []:
            rows.append(
                {
                    "address": ",".join(d.get("addresses") or ())[:64] or "*",
                    "protocol": str(d["protocol"])[:8],
                    "port": int(d["port"]),
                    "state": "open",
                    "service": _text(d.get("service")),
                    "version": _text(d.get("banner"), 200),
                    "process": _text(d.get("process")),
                    "status": _text(d.get("status"), 24),
                }
            )
    elif kind == "scan":
        for h in document.get("hosts") or []:
            address = str(h.get("address") or h.get("hostname") or "?")[:64]
            for p in h.get("ports") or []:
                name, version = _service_version(p.get("service"))
                rows.append(
                    {
                        "address": address,
                        "protocol": str(p["protocol"])[:8],
                        "port": int(p["port"]),
                        "state": str(p.get("state") or "")[:24],
                        "service": name,
                        "version": version,
                        "process": None,
                        "status": None,
                    }
                )
    elif kind == "sockets":
        for r in document:
            if r.get("role") != "passive":
                continue
            rows.append(
                {
                    "address": str(r.get("local_address") or "*")[:64],
                    "protocol": str(r.get("protocol"))[:8],
                    "port": int(r.get("local_port") or 0),
                    "state": "open",
                    "service": _text(r.get("service")),
                    "version": None,
                    "process": _process_of(r),
                    "status": _text(r.get("exposure"), 24),
                }
            )
    return rows


def summary(
    kind: str, document: Any, doors: list[dict[str, Any]]
) -> tuple[int, int, dict[str, int]]:
    """(number of findings, open doors, findings by severity) of a run."""
    by_severity = dict.fromkeys(SEVERITIES, 0)
    rows = finding_rows(kind, document)
    for f in rows:
        by_severity[f["severity"]] = by_severity.get(f["severity"], 0) + 1
    count = len(rows)
    open_doors = len(
        {(d["address"], d["protocol"], d["port"]) for d in doors if d["state"] == "open"}
    )
    return count, open_doors, by_severity


def snapshot(kind: str, document: Any, label: str = "") -> Snapshot:
    """The comparable view of a document, for `pps diff`."""
    ports: dict[tuple[str, str, int], PortView] = {}
    host = str(document.get("host") or "") if kind == "audit" else ""
    for d in door_rows(kind, document):
        address = host if kind == "audit" else d["address"]
        ports[(address, d["protocol"], d["port"])] = PortView(
            d["state"], d["service"], d["version"], d["process"]
        )
    findings = {row["key"]: row for row in finding_rows(kind, document)}
    return Snapshot(ports, findings, label)
