"""PPS documentation export: CSV with the columns of FedRAMP's SSP table 10-4.

Columns: direction, boundary crossing, source, destination, port, protocol, service, purpose,
encrypted, data sensitivity. Rows come from the registry's entries for the host (what is
documented), then one row per open door the registry does not document, with TODO purpose.
Cells that a spreadsheet would run as a formula (leading = + - @ tab CR) are prefixed with `'`
(`sanitize.csv_cell`, the guard every CSV writer uses).
"""

from __future__ import annotations

import csv
import io

from ppsguard.audit.baseline import Baseline
from ppsguard.model.findings import AuditReport, DoorStatus
from ppsguard.model.registry import Entry, EntryKind
from ppsguard.report.sanitize import csv_cell

COLUMNS = (
    "direction",
    "boundary crossing",
    "source",
    "destination",
    "port",
    "protocol",
    "service",
    "purpose",
    "encrypted",
    "data sensitivity",
)


def _safe(value: object) -> str:
    """The one CSV guard (`sanitize.csv_cell`), after folding line breaks to spaces."""
    text = "" if value is None else str(value)
    return csv_cell(text.replace("\r", " ").replace("\n", " "))


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _entry_rows(entry: Entry, host: str) -> list[dict[str, str]]:
    rows = []
    outbound = entry.kind is EntryKind.USES
    for sp in entry.ports:
        rows.append(
            {
                "direction": str(entry.direction or ("outbound" if outbound else "inbound")),
                "boundary crossing": entry.boundary or "",
                "source": host if outbound else ", ".join(entry.sources),
                "destination": ", ".join(entry.destinations) if outbound else host,
                "port": str(sp.ports),
                "protocol": sp.protocol.value.upper(),
                "service": entry.service or "",
                "purpose": (entry.purpose or "")
                + (f" (denied: {entry.action})" if entry.kind is EntryKind.DENIES else ""),
                "encrypted": _yes_no(entry.encrypted),
                "data sensitivity": str(entry.sensitivity or ""),
            }
        )
    return rows


def pps_rows(report: AuditReport, baseline: Baseline) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    host = baseline.host.name if baseline.host else report.host
    for entry in baseline.entries:
        rows.extend(_entry_rows(entry, host))
    if baseline.host is not None:
        roles_uses = baseline.host.uses
        for entry in roles_uses:
            rows.extend(_entry_rows(entry, host))
    for door in report.doors:
        if door.entry is not None or door.status is DoorStatus.DOCUMENTED:
            continue
        rows.append(
            {
                "direction": "inbound",
                "boundary crossing": "",
                "source": "TODO",
                "destination": host,
                "port": str(door.port),
                "protocol": door.protocol.value.upper(),
                "service": door.service or "",
                "purpose": "TODO: undocumented (observed open)",
                "encrypted": "",
                "data sensitivity": "",
            }
        )
    return rows


def render_csv(report: AuditReport, baseline: Baseline) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in pps_rows(report, baseline):
        writer.writerow({k: _safe(v) for k, v in row.items()})
    return buffer.getvalue()
