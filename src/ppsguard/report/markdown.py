"""The audit as Markdown: a summary, one section per finding with evidence and remedy, the doors.

Text from the host (banners, process names) is made inert: table cells escape `|`, `<`, `>`
and backticks, and evidence and remedies go into fenced code blocks whose fence is longer than
any backtick run inside; control characters are shown escaped (`sanitize.visible`), so `cat
report.md` on a terminal runs no escape sequence.
"""

from __future__ import annotations

import re

from ppsguard.model.findings import AuditReport, Finding
from ppsguard.report.sanitize import visible


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    return visible(re.sub(r"[\r\n\t]+", " ", text))[:300]


def _fence(text: str) -> str:
    text = visible(text, keep_newlines=True)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _door(finding: Finding) -> str:
    if finding.port is None:
        return "host"
    proto = finding.protocol.value if finding.protocol else "?"
    return f"{proto}/{finding.port} on {finding.address or '*'}"


def render_markdown(report: AuditReport) -> str:
    lines = [
        f"# ppsguard audit of {_cell(report.host)}",
        "",
        f"Observed {report.observed_at.isoformat(timespec='seconds')}; registry: "
        f"{_cell(report.registry or 'none')}; {len(report.findings)} findings; "
        f"{len(report.doors)} open doors.",
        "",
        "| severity | count |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in report.counts().items()),
        "",
    ]
    if report.draft_hint:
        lines += [f"**{_cell(report.draft_hint)}**", ""]
    lines += ["## Findings", ""]
    if not report.findings:
        lines += [
            "No findings: what runs, what is reachable and what is enforced match the registry.",
            "",
        ]
    lines += [
        "| severity | type | door | process | entry | what |",
        "|---|---|---|---|---|---|",
        *(
            f"| {f.severity.value} | {f.type.value} | {_cell(_door(f))} | {_cell(f.process)} | "
            f"{_cell(f.entry)} | {_cell(f.title)} |"
            for f in report.findings
        ),
        "",
    ]
    for finding in report.findings:
        lines += [
            f"### {finding.severity.value}: {finding.type.value} — {_cell(_door(finding))}",
            "",
            f"{_cell(finding.title)} (id `{finding.id}`"
            + (
                f", entry `{_cell(finding.entry)}` at {_cell(finding.entry_location)}"
                if finding.entry
                else ""
            )
            + ")",
            "",
            "Evidence:",
            "",
            _fence("\n".join(finding.evidence)),
            "",
            "Remedy:",
            "",
            _fence(finding.remedy.text()),
            "",
        ]
    lines += [
        "## Open doors",
        "",
        "| door | status | service | process | bound to | entry |",
        "|---|---|---|---|---|---|",
        *(
            f"| {d.protocol.value}/{d.port} | {d.status.value} | {_cell(d.service)} | "
            f"{_cell(d.process)} | {_cell(', '.join(d.addresses))} | {_cell(d.entry)} |"
            for d in report.doors
        ),
        "",
        "## What was looked at",
        "",
        *(f"- {k}: {_cell(v)}" for k, v in report.views.items()),
        *(f"- could not see: {_cell(g)}" for g in report.gaps),
        "",
    ]
    return "\n".join(lines)
