"""The audit for people (on stdout): a summary line, the findings, the top remedies.

Host-supplied text (banners, process names, titles quoting them) goes through
`sanitize.visible` and is passed as `Text`, never as markup, so `[bold]` or escape sequences in a
banner print literally. With `fancy=False` (piped) or past `fast_rows` findings, the findings are
a plain aligned table (`streams.table_lines`) written straight to the console's file.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ppsguard.model.findings import AuditReport, Finding, Severity
from ppsguard.report.sanitize import visible
from ppsguard.report.streams import table_lines, write_lines

_STYLES = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
MAX_REMEDIES = 8


COLUMNS = ("severity", "type", "door", "process", "entry", "what")


def _clean(value: object) -> str:
    text = visible(value)
    return text if len(text) <= 200 else text[:199] + "…"


def _cells(finding: Finding) -> tuple[str, ...]:
    return (
        finding.severity.value,
        finding.type.value,
        _clean(_door(finding)),
        _clean(finding.process),
        _clean(finding.entry),
        _clean(finding.title),
    )


def _door(finding: Finding) -> str:
    if finding.port is None:
        return "host"
    proto = finding.protocol.value if finding.protocol else "?"
    return f"{proto}/{finding.port} {finding.address or ''}".strip()


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def print_report(
    report: AuditReport,
    console: Console,
    *,
    remedies: bool = True,
    fancy: bool = True,
    fast_rows: int = 1000,
) -> None:
    counts = report.counts()
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    found = f"{_count(len(report.findings), 'finding')} ({summary})" if summary else "no findings"
    console.print(
        Text(
            f"audit of {_clean(report.host)}: {found}; {_count(len(report.doors), 'open door')}",
            style="bold",
        )
    )
    for name, value in report.views.items():
        console.print(Text(f"  {name}: {_clean(value)}", style="dim"))
    for gap in report.gaps:
        console.print(Text(f"  could not see: {_clean(gap)}", style="yellow"))
    if report.findings and (not fancy or len(report.findings) > fast_rows):
        console.file.flush()
        write_lines(console.file, table_lines(COLUMNS, lambda: map(_cells, report.findings)))
    elif report.findings:
        table = Table(show_edge=False, pad_edge=False)
        for column in COLUMNS:
            table.add_column(column, overflow="fold")
        for finding in report.findings:
            cells = _cells(finding)
            table.add_row(
                Text(cells[0], style=_STYLES[finding.severity]), *(Text(c) for c in cells[1:])
            )
        console.print(table)
    if remedies:
        for finding in report.findings[:MAX_REMEDIES]:
            if not finding.remedy.summary:
                continue
            console.print(
                Text(f"▸ {_clean(_door(finding))} {finding.type.value}: ", style="bold"), end=""
            )
            console.print(Text(_clean(finding.remedy.summary)))
            for command in finding.remedy.commands:
                console.print(Text(f"    $ {_clean(command)}", style="green"))
    if report.draft_hint:
        console.print(Text(visible(report.draft_hint, keep_newlines=True), style="bold yellow"))
