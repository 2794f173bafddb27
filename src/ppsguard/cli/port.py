"""The `pps port` command: what ppsguard knows about a port or a service name.

One card per match on stdout (a panel on a terminal, plain lines when piped); `--json` prints
the list of matches.
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


Segments = list[tuple[str, str]]  # (text, Rich style) pieces of one card value


def _card_rows(match: PortInfo, ephemeral_range: object) -> list[tuple[str, Segments]]:
    from ppsguard.knowledge.ranges import range_bounds

    rows: list[tuple[str, Segments]] = []
    rows.append(("range", [(f"{match.range.value} ({range_bounds(match.range)})", "")]))
    where = "in" if match.ephemeral else "outside"
    answer = "yes" if match.ephemeral else "no"
    rows.append(("ephemeral", [(f"{answer} ({where} this host's {ephemeral_range})", "")]))
    for entry in match.entries:
        names: Segments = [(entry.name, "bold")]
        if entry.aliases:
            names.append((" (" + ", ".join(entry.aliases) + ")", "dim"))
        if entry.description:
            names.append((f" — {entry.description}", ""))
        rows.append(("service", names))
    if not match.entries:
        rows.append(("service", [("unassigned (no known service name)", "dim")]))
    if not match.risks:
        rows.append(("risks", [("none known", "dim")]))
    for risk in match.risks:
        style = _SEVERITY_STYLE.get(risk.severity.value, "")
        rows.append(
            (
                "risk",
                [
                    (risk.severity.value.upper(), style),
                    (f" {risk.id}: {risk.title}\nwhy: {risk.reason}\nfix: {risk.remedy}", ""),
                ],
            )
        )
    return rows


def _render_cards(matches: Sequence[PortInfo]) -> None:
    """One card per match on stdout: a Rich panel on a terminal; piped, a title line and
    indented `key: value` lines (no box drawing, and no Rich import: start-up counts here)."""
    from ppsguard.cli.output import emit_line, results, stdout_is_terminal
    from ppsguard.knowledge.ranges import host_ephemeral_range

    fancy = stdout_is_terminal()
    ephemeral_range = host_ephemeral_range()
    for match in matches:
        rows = _card_rows(match, ephemeral_range)
        title = f"{match.port}/{match.protocol.value}"
        if match.services:
            title += f"  {match.services[0]}"
        if not fancy:
            lines = [title]
            for key, segments in rows:
                first, *more = "".join(text for text, _ in segments).split("\n")
                lines.append(f"  {key + ':':<11}{first}")
                lines.extend(f"  {'':<11}{line}" for line in more)
            emit_line("\n".join(lines))
            continue
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for key, segments in rows:
            text = Text()
            for piece, style in segments:
                text.append(piece, style=style)
            grid.add_row(key, text)
        results().print(Panel(grid, title=title, title_align="left", expand=False))
