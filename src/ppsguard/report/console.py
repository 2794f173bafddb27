"""The audit on the terminal (Rich, on stderr): a summary line, the findings, the top remedies.

Host-supplied text (banners, process names, titles quoting them) is passed as `Text`, never as
markup, so `[bold]` or escape sequences in a banner print literally.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ppsguard.model.findings import AuditReport, Finding, Severity

_STYLES = {
    Severity.CRITICAL: "bold red",
    Severity.HIGH: "red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
MAX_REMEDIES = 8


def _clean(value: object) -> str:
    text = "" if value is None else str(value)
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:200]


def _door(finding: Finding) -> str:
    if finding.port is None:
        return "host"
    proto = finding.protocol.value if finding.protocol else "?"
    return f"{proto}/{finding.port} {finding.address or ''}".strip()


def print_report(report: AuditReport, console: Console, *, remedies: bool = True) -> None:
    counts = report.counts()
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no findings"
    console.print(
        Text(
            f"audit of {_clean(report.host)}: {len(report.findings)} findings ({summary}); "
            f"{len(report.doors)} open doors",
            style="bold",
        )
    )
    for name, value in report.views.items():
        console.print(Text(f"  {name}: {_clean(value)}", style="dim"))
    for gap in report.gaps:
        console.print(Text(f"  could not see: {_clean(gap)}", style="yellow"))
    if report.findings:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("severity", "type", "door", "process", "entry", "what"):
            table.add_column(column, overflow="fold")
        for finding in report.findings:
            table.add_row(
                Text(finding.severity.value, style=_STYLES[finding.severity]),
                Text(finding.type.value),
                Text(_clean(_door(finding))),
                Text(_clean(finding.process)),
                Text(_clean(finding.entry)),
                Text(_clean(finding.title)),
            )
        console.print(table)
    if remedies:
        for finding in report.findings[:MAX_REMEDIES]:
            if not finding.remedy.summary:
                continue
            console.print(Text(f"▸ {_door(finding)} {finding.type.value}: ", style="bold"), end="")
            console.print(Text(_clean(finding.remedy.summary)))
            for command in finding.remedy.commands:
                console.print(Text(f"    $ {_clean(command)}", style="green"))
    if report.draft_hint:
        console.print(Text(report.draft_hint, style="bold yellow"))
