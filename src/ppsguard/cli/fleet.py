"""The `pps fleet` command: every host in the store at a glance — last seen, open doors, findings
by severity, drift since its previous run, and the hosts that stopped reporting. Reads only."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ppsguard.cli.storeopt import ReadStoreOption, emit, now, read_url, when
from ppsguard.errors import UsageError
from ppsguard.report.sanitize import visible

HELP = """Show every host recorded in the store: when it last reported, its open doors, the
findings of its last audit by severity, what changed since its previous run (findings new/fixed,
doors opened/closed), and STALE for hosts that stopped reporting (silent longer than --stale, by
default three times the host's last interval between runs, at least an hour).

Exit codes: 0 every host reporting, 1 some host stale, 2 bad input, 3 the store cannot be read.
See docs/store.md for a PostgreSQL store shared by a fleet.
"""
COLUMNS = ("HOST", "LAST SEEN", "RUNS", "DOORS", "CRIT", "HIGH", "MED", "LOW", "INFO", "DRIFT", "")


def _drift(drift: dict[str, Any] | None) -> str:
    if drift is None:
        return "-"
    parts = []
    if drift["findings_new"]:
        parts.append(f"+{drift['findings_new']} findings")
    if drift["findings_fixed"]:
        parts.append(f"-{drift['findings_fixed']} fixed")
    parts += [f"+{d}" for d in drift["doors_opened"][:5]]
    parts += [f"-{d}" for d in drift["doors_closed"][:5]]
    extra = len(drift["doors_opened"]) + len(drift["doors_closed"]) - 10
    if extra > 0:
        parts.append(f"(+{extra} doors more)")
    return " ".join(parts) or "none"


def render(doc: dict[str, Any]) -> None:
    rows = [COLUMNS]
    for h in doc["hosts"]:
        sev = h["by_severity"]
        rows.append(
            (
                h["host"],
                when(h["last_seen"]),
                str(h["runs"]),
                str(h["open_doors"]),
                *(str(sev.get(s, 0)) for s in ("critical", "high", "medium", "low", "info")),
                _drift(h["drift"]),
                "STALE" if h["stale"] else "",
            )
        )
    shown = [[visible(c) for c in r] for r in rows]  # host names came from outside
    widths = [max(len(r[i]) for r in shown) for i in range(len(COLUMNS))]
    for r in shown:
        sys.stdout.write(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
        )
    s = doc["summary"]
    sys.stdout.write(f"{s['hosts']} hosts, {s['stale']} stale, {s['with_drift']} with drift\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add `pps fleet` to `app`."""

    @app.command(
        "fleet",
        help=HELP,
        short_help="Every recorded host: last seen, doors, findings, drift, stale.",
    )
    def fleet_command(
        stale: Annotated[
            str | None,
            typer.Option("--stale", help="A host silent longer than this is stale (e.g. 2h, 1d)."),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
        store: ReadStoreOption = None,
    ) -> None:
        from ppsguard.store.fleet import fleet
        from ppsguard.store.history import parse_duration

        limit = None
        if stale is not None:
            limit = parse_duration(stale)
            if limit is None:
                raise UsageError("not a duration (30m, 2h, 1d, 2w)", token=stale)
        url = read_url(store)
        doc = fleet(url, now(), limit)
        if json_out:
            emit(doc)
        else:
            render(doc)
        if doc["summary"]["stale"]:
            raise typer.Exit(1)
