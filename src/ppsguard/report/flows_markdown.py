"""The flow audit (`pps flows audit --markdown`) as Markdown, in the shape of `pps audit`'s report.

    text = render_flows_markdown(document(result))   # flows.audit's JSON-ready document

A summary with the counts per finding type, the findings table, one section per finding with
the peers and the flows (uids) that show it, and the per-entry summary. It renders the audit
document (schema `ppsguard.flows-audit`), not the engine's objects, so a document read back
from `--json` or the store renders the same. Text from the evidence (uids from a Zeek log,
registry entry names, messages) is made inert as `report.markdown` does it: table cells escape
`|`, `<`, `>` and backticks, lists go into fenced blocks longer than any backtick run inside,
and control characters are shown escaped (`sanitize.visible`). Pure: a dict in, text out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ppsguard.report.markdown import _cell, _fence

FINDING_ORDER = ("critical", "high", "medium", "low", "info")


def findings_of(doc: Mapping[str, object]) -> list[Mapping[str, object]]:
    """The document's findings, most severe first (then as the document orders them)."""
    raw = doc.get("findings")
    items = [f for f in raw if isinstance(f, Mapping)] if isinstance(raw, Sequence) else []

    def rank(finding: Mapping[str, object]) -> int:
        severity = str(finding.get("severity", ""))
        return FINDING_ORDER.index(severity) if severity in FINDING_ORDER else len(FINDING_ORDER)

    return sorted(items, key=rank)


def entries_of(doc: Mapping[str, object]) -> list[Mapping[str, object]]:
    raw = doc.get("entries")
    return [e for e in raw if isinstance(e, Mapping)] if isinstance(raw, Sequence) else []


def texts(value: object) -> list[str]:
    """A list field of the document (peers, examples) as strings; anything else as empty."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        return []
    return [str(v) for v in value]


def failing(doc: Mapping[str, object]) -> int:
    """Findings that make `pps flows audit` exit 1 (all but the denied-attempts summaries)."""
    return sum(1 for f in findings_of(doc) if f.get("type") != "denied-attempts")


def render_flows_markdown(doc: Mapping[str, object]) -> str:
    """The whole report as text."""
    findings = findings_of(doc)
    entries = entries_of(doc)
    counts = doc.get("counts")
    count_rows = (
        [f"| {_cell(k)} | {_cell(v)} |" for k, v in sorted(counts.items())]
        if isinstance(counts, Mapping)
        else []
    )
    lines = [
        f"# ppsguard flows audit of {_cell(doc.get('host'))}",
        "",
        f"{_cell(doc.get('flows'))} flows held against the registry; {len(findings)} findings, "
        f"{failing(doc)} of them beyond the denied attempts the registry expects.",
        "",
        "| finding type | count |",
        "|---|---|",
        *count_rows,
        "",
        "## Findings",
        "",
    ]
    if not findings:
        lines += ["No findings: every flow was one the registry allows.", ""]
    else:
        lines += [
            "| severity | type | entry | flows | what |",
            "|---|---|---|---|---|",
            *(
                f"| {_cell(f.get('severity'))} | {_cell(f.get('type'))} | {_cell(f.get('entry'))}"
                f" | {_cell(f.get('count'))} | {_cell(f.get('message'))} |"
                for f in findings
            ),
            "",
        ]
    for finding in findings:
        peers = texts(finding.get("peers"))
        examples = texts(finding.get("examples"))
        lines += [
            f"### {_cell(finding.get('severity'))}: {_cell(finding.get('type'))}"
            + (f" — entry {_cell(finding.get('entry'))}" if finding.get("entry") else ""),
            "",
            f"{_cell(finding.get('message'))} (flows: {_cell(finding.get('count'))})",
            "",
        ]
        if peers:
            lines += [f"Peers ({len(peers)}):", "", _fence("\n".join(peers)), ""]
        if examples:
            lines += ["Flows (uid):", "", _fence("\n".join(examples)), ""]
    lines += ["## Registry entries", ""]
    if not entries:
        lines += ["No flow matched a registry entry.", ""]
    else:
        lines += [
            "| entry | connections | allowed | peers |",
            "|---|---|---|---|",
            *(
                f"| {_cell(e.get('entry'))} | {_cell(e.get('connections'))} | "
                f"{_cell(e.get('allowed'))} | {_cell(e.get('peers'))} |"
                for e in entries
            ),
            "",
        ]
    return "\n".join(lines)
