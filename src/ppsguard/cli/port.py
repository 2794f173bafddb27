"""The `pps port` command: what ppsguard knows about a port or a service name.

Human output is one card per match on stderr; `--json` prints the list of matches on stdout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ppsguard.knowledge.query import PortInfo

_SEVERITY_STYLE = {
    "info": "dim",
    "low": "cyan",
    "medium": "yellow",
    "high": "bold red",
    "critical": "bold white on red",
}

_HELP = (
    "Look up a port number, a service name or PORT/PROTO.\n\n"
    "Shows the IANA range class (system 0-1023, registered 1024-49151, dynamic 49152-65535), "
    "whether the port lies in this host's ephemeral range (net.ipv4.ip_local_port_range), "
    "the service names assigned to it, and known risks with severity, reason and usual remedy.\n\n"
    "Examples: pps port 3306 · pps port mysql · pps port 23/tcp · pps port 53/udp · "
    "pps port 50000 --json\n\n"
    "Exit codes: 0 answered (an unassigned port is an answer, not an error); 2 unknown name, "
    "bad protocol or port outside 0-65535."
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""

    @app.command("port", help=_HELP, short_help="Look up a port or service: range, names, risks.")
    def port_command(
        query: Annotated[
            str,
            typer.Argument(
                help="A port (3306), a service name or alias (mysql), or PORT/PROTO (23/tcp).",
                show_default=False,
                metavar="QUERY",
            ),
        ],
        as_json: Annotated[
            bool, typer.Option("--json", help="Print the matches as a JSON list on stdout.")
        ] = False,
    ) -> None:
        from ppsguard.cli.output import emit_json
        from ppsguard.knowledge.query import resolve_query

        matches = resolve_query(query)
        if as_json:
            emit_json([match.to_json() for match in matches])
            return
        _render_cards(matches)


def _render_cards(matches: Sequence[PortInfo]) -> None:
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from ppsguard.cli.output import human
    from ppsguard.knowledge.ranges import host_ephemeral_range, range_bounds

    console = human()
    ephemeral_range = host_ephemeral_range()
    for match in matches:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        grid.add_row("range", f"{match.range.value} ({range_bounds(match.range)})")
        where = "in" if match.ephemeral else "outside"
        grid.add_row(
            "ephemeral",
            f"{'yes' if match.ephemeral else 'no'} ({where} this host's {ephemeral_range})",
        )
        if match.entries:
            for entry in match.entries:
                names = Text(entry.name, style="bold")
                if entry.aliases:
                    names.append(" (" + ", ".join(entry.aliases) + ")", style="dim")
                if entry.description:
                    names.append(f" — {entry.description}")
                grid.add_row("service", names)
        else:
            grid.add_row("service", Text("unassigned (no known service name)", style="dim"))
        if not match.risks:
            grid.add_row("risks", Text("none known", style="dim"))
        for risk in match.risks:
            style = _SEVERITY_STYLE.get(risk.severity.value, "")
            head = Text()
            head.append(f"{risk.severity.value.upper()}", style=style)
            head.append(f" {risk.id}: {risk.title}")
            body = head
            body.append(f"\nwhy: {risk.reason}\nfix: {risk.remedy}")
            grid.add_row("risk", body)
        title = f"{match.port}/{match.protocol.value}"
        if match.services:
            title += f"  {match.services[0]}"
        console.print(Panel(grid, title=title, title_align="left", expand=False))
