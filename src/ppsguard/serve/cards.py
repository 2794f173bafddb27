"""What the desk gathers for one door, for the registry page's applied-versus-registry view, and
for a downloadable report — from the store's runs and the registry, by the library's own calls.

A door card: the door as the host's last audit saw it (verdict, service, process, bind
addresses, reachability, banner), the registry entry that documents it (file:line, purpose,
owner), the sockets holding it (the last `pps sockets` run), the scan evidence (the last
`pps scan` run), the audit's findings with their remedies, and its history (opened and closed,
from `pps history`'s tracks).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ppsguard.errors import PpsError, UsageError
from ppsguard.serve import registry_view
from ppsguard.store import desk
from ppsguard.store.read import HostRow, history

FIREWALL_TYPES = ("firewall-not-enforcing", "listening-but-blocked", "reachable-undocumented")
MEDIA = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8"}


@dataclass
class DoorCard:
    host: HostRow
    protocol: str
    port: int
    door: dict[str, Any] | None = None
    run: desk.RunRow | None = None
    entry: registry_view.EntryRow | None = None
    entry_problem: str | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    sockets: list[desk.DoorRow] = field(default_factory=list)
    scanned: list[desk.DoorRow] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def drifted(drift: dict[str, Any] | None) -> bool:
    return bool(
        drift
        and (
            drift["findings_new"]
            or drift["findings_fixed"]
            or drift["doors_opened"]
            or drift["doors_closed"]
        )
    )


def fleet_row(h: dict[str, Any]) -> dict[str, Any]:
    """One fleet table row with its cells already written (a 1,000-host page renders in a
    third of the time when the template only places strings)."""
    sev = h["by_severity"]
    drift = h["drift"]
    runs = "run" if h["runs"] == 1 else "runs"
    if drift is None:
        drift_text = "-"
    elif not drifted(drift):
        drift_text = "none"
    else:
        drift_text = f"+{drift['findings_new']}/−{drift['findings_fixed']} findings"
        if drift["doors_opened"]:
            drift_text += "; opened " + " ".join(drift["doors_opened"][:10])
        if drift["doors_closed"]:
            drift_text += "; closed " + " ".join(drift["doors_closed"][:10])
    return {
        "host": h["host"],
        "host_id": h["host_id"],
        "stale": h["stale"],
        "seen": h["last_seen"].strftime("%Y-%m-%d %H:%M:%S") if h["last_seen"] else "-",
        "silent": ago(h["silent_for_seconds"]),
        "open_doors": h["open_doors"],
        "findings": h["findings"],
        "high": sev.get("high", 0) + sev.get("critical", 0),
        "severities": " ".join(
            f"{s} {sev[s]}" for s in ("critical", "high", "medium", "low", "info") if sev.get(s)
        ),
        "drift_text": drift_text,
        "last": f"{h['last_kind']} #{h['last_run']} ({h['runs']} {runs})",
    }


def ago(seconds: float) -> str:
    """A duration as people say it: 3 d, 5 h, 12 min, 40 s."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if whole >= size:
            return f"{whole // size} {unit}"
    return f"{whole} s"


def _registry_for(configured: Path | None, run: desk.RunRow | None) -> Path | None:
    if configured is not None:
        return configured
    if run is not None and run.registry:
        path = Path(run.registry)
        return path if path.is_file() else None
    return None


def door_card(url: str, registry: Path | None, host: HostRow, proto: str, port: int) -> DoorCard:
    """Everything the store and the registry say about one door of `host`."""
    if not 0 <= port <= 65535:
        raise UsageError("no such port", token=str(port))
    card = DoorCard(host, proto, port)
    audit = desk.newest_run(url, host.id, ("audit",))
    if audit is not None:
        card.run, document = desk.run_with_document(url, audit.id)
        for d in document.get("doors") or []:
            if d.get("protocol") == proto and d.get("port") == port:
                card.door = d
        wanted = set(card.door.get("findings") or []) if card.door else set()
        card.findings = [
            f
            for f in document.get("findings") or []
            if f.get("id") in wanted or (f.get("protocol") == proto and f.get("port") == port)
        ]
    entry_id = (card.door or {}).get("entry") or next(
        (f.get("entry") for f in card.findings if f.get("entry")), None
    )
    path = _registry_for(registry, card.run)
    if entry_id and path is not None:
        try:
            reg = registry_view.load(path)
            name = _registry_host(reg, document.get("host") if audit else None)
            card.entry = registry_view.find_entry(reg, name, str(entry_id))
        except (PpsError, ValueError) as exc:
            card.entry_problem = registry_view.problem(exc)
    elif entry_id:
        card.entry_problem = f"entry {entry_id}: the registry file is not available here"
    for kind, target in (("sockets", card.sockets), ("scan", card.scanned)):
        run = desk.newest_run(url, host.id, (kind,))
        if run is not None:
            target.extend(
                r for r in desk.run_doors(url, run.id) if r.protocol == proto and r.port == port
            )
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for item in history(url, host.identity.label, None, now):
        if item["identity"] != host.identity.as_dict():
            continue
        card.history = [d for d in item["doors"] if d["protocol"] == proto and d["port"] == port]
    return card


def _registry_host(reg: Any, name: Any) -> str | None:
    names = registry_view.host_names(reg)
    if isinstance(name, str) and name in names:
        return name
    return names[0] if len(names) == 1 else None


def applied_differences(url: str, host_name: str | None) -> list[dict[str, Any]]:
    """The firewall findings of the last audit of every stored host named `host_name` (or all):
    where what the kernel enforces differs from what the registry says."""
    out: list[dict[str, Any]] = []
    every = desk.all_hosts(url)
    named = [h for h in every if host_name in (h.identity.hostname, h.identity.label)]
    for host in named or every:
        run = desk.newest_run(url, host.id, ("audit",))
        if run is None:
            continue
        _, document = desk.run_with_document(url, run.id)
        for f in document.get("findings") or []:
            if f.get("type") in FIREWALL_TYPES:
                out.append({"host": host.identity.label, "observed": run.observed_at, **f})
    return out


def report(url: str, registry: Path | None, run_id: int, fmt: str) -> tuple[str, str]:
    """(text, media type) of the audit report of one recorded audit run: html, md or csv."""
    from ppsguard.audit.machine import baseline_for
    from ppsguard.report.audit_document import load_audit

    run, document = desk.run_with_document(url, run_id)
    if run.kind != "audit":
        raise UsageError(f"run {run_id} is a {run.kind} run: reports exist for audits")
    report_ = load_audit(document)
    if fmt == "html":
        from ppsguard.report.html import render_html

        return render_html(report_), MEDIA["html"]
    if fmt == "md":
        from ppsguard.report.markdown import render_markdown

        return render_markdown(report_), MEDIA["md"]
    if fmt == "csv":
        from ppsguard.report.csvdoc import render_csv

        path = _registry_for(registry, run)
        reg = registry_view.load(path) if path is not None else None
        name = _registry_host(reg, report_.host) if reg is not None else None
        baseline, _ = baseline_for(reg, name)
        return render_csv(report_, baseline), "text/csv; charset=utf-8"
    raise UsageError("a report is html, md or csv", token=fmt)
