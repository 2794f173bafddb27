"""The `pps history` command: per host, when each finding and door opened and closed, and how
long each stayed open, from the audits in the store. Reads only; renders a table or JSON."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ppsguard.cli.storeopt import ReadStoreOption, emit, now, parse_since, read_url, when
from ppsguard.report.sanitize import visible

HELP = """Show, per host, the findings and doors opened and closed over time, from the audits
recorded with `pps audit --store`.

For every event: the time of the audit that first saw it (opened) or first missed it (closed),
and how long it stayed open. A finding or door already present in the first audit considered is
marked "<=" (it opened at or before then). Without --store the default store is read.
Exit codes: 0, 2 bad input (an unknown host), 3 the store cannot be read. See docs/store.md.
"""


def _label(track: dict[str, Any], what: str) -> str:
    if what == "door":
        service = f" {track['service']}" if track.get("service") else ""
        return f"door {track['port']}/{track['protocol']}{service}"
    where = f" {track['protocol']}/{track['port']}" if track.get("port") is not None else ""
    return f"finding {track['severity']} {track['type']}{where}: {track['title']}"


def render(items: list[dict[str, Any]]) -> None:
    """Per host, each finding and door with its open intervals, opened/closed times, duration."""
    from ppsguard.store.history import duration_text

    def write(text: str) -> None:  # stored text came from outside: the one sanitizer
        sys.stdout.write(visible(text, keep_newlines=True))

    for item in items:
        write(f"{item['host']}: {item['audits']} audits, {when(item['first'])} .. ")
        write(f"{when(item['last'])}\n")
        for what, tracks in (("finding", item["findings"]), ("door", item["doors"])):
            for track in tracks:
                write(f"  {_label(track, what)}\n")
                for i in track["intervals"]:
                    mark = "<= " if i["opened_before_first_run"] else "   "
                    closed = when(i["closed"]) if i["closed"] else "still open"
                    span = duration_text(i["open_seconds"])
                    write(f"    opened {mark}{when(i['opened'])}  closed {closed}  ({span})\n")
        if not item["findings"] and not item["doors"]:
            write("  no findings and no open doors recorded\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add `pps history` to `app`."""

    @app.command(
        "history", help=HELP, short_help="When each finding and door opened and closed (the store)."
    )
    def history_command(
        host: Annotated[
            str | None,
            typer.Option(
                "--host", help="Only this host: hostname, hostname/netns, netns or machine-id."
            ),
        ] = None,
        since: Annotated[
            str | None,
            typer.Option("--since", help="Only audits since DATE (2026-12-01, ISO time, or 7d)."),
        ] = None,
        json_out: Annotated[bool, typer.Option("--json", help="JSON on stdout.")] = False,
        store: ReadStoreOption = None,
    ) -> None:
        from ppsguard.store.read import history

        url = read_url(store)
        current = now()
        items = history(url, host, parse_since(since), current)
        if json_out:
            emit(items)
        else:
            render(items)
