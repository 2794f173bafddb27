"""The flow audit (`pps flows audit --html`) as one self-contained HTML page, like `pps audit`'s.

    page = render_flows_html(document(result))   # flows.audit's JSON-ready document

The counts, the findings (severity, type, entry, flows, message, peers and example uids) and the
per-entry summary. No external assets and no script: the inline CSS of `report.html`, and a
Content-Security-Policy that forbids everything else, so the page opens offline and a hostile
uid or entry name has nothing to run in. Every value passes through `html.escape`, after
control characters are made visible (`sanitize.visible`). Pure: a dict in, text out.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from ppsguard.report.flows_markdown import entries_of, failing, findings_of, texts
from ppsguard.report.html import PAGE_CSS
from ppsguard.report.sanitize import visible

EXTRA_CSS = "ul.peers{margin:0;padding-left:1.1rem;font-size:12px}"


def _e(value: object) -> str:
    return html.escape(visible(value), quote=True)


def _list(values: list[str]) -> str:
    if not values:
        return ""
    return (
        '<ul class="peers">' + "".join(f"<li><code>{_e(v)}</code></li>" for v in values) + "</ul>"
    )


def _finding_row(finding: Mapping[str, object]) -> str:
    severity = _e(finding.get("severity"))
    return (
        f'<tr><td class="sev sev-{severity}">{severity}</td><td>{_e(finding.get("type"))}</td>'
        f"<td>{_e(finding.get('entry'))}</td><td>{_e(finding.get('count'))}</td>"
        f"<td>{_e(finding.get('message'))}</td><td>{_list(texts(finding.get('peers')))}</td>"
        f"<td>{_list(texts(finding.get('examples')))}</td></tr>"
    )


def render_flows_html(doc: Mapping[str, object]) -> str:
    """The whole page as text."""
    findings = findings_of(doc)
    host = _e(doc.get("host"))
    counts = doc.get("counts")
    count_html = (
        "".join(f"<span>{_e(k)}: {_e(v)}</span>" for k, v in sorted(counts.items()))
        if isinstance(counts, Mapping)
        else ""
    )
    rows = "".join(_finding_row(f) for f in findings) or (
        '<tr><td colspan="7">No findings: every flow was one the registry allows.</td></tr>'
    )
    entry_rows = (
        "".join(
            f"<tr><td>{_e(e.get('entry'))}</td><td>{_e(e.get('connections'))}</td>"
            f"<td>{_e(e.get('allowed'))}</td><td>{_e(e.get('peers'))}</td></tr>"
            for e in entries_of(doc)
        )
        or '<tr><td colspan="4">No flow matched a registry entry.</td></tr>'
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>ppsguard flows audit of {host}</title>"
        f"<style>{PAGE_CSS}{EXTRA_CSS}</style></head><body>"
        f"<h1>ppsguard flows audit of {host}</h1>"
        f'<p class="meta">{_e(doc.get("flows"))} flows held against the registry · '
        f"{len(findings)} findings, {failing(doc)} beyond the expected denied attempts</p>"
        f'<p class="counts">{count_html}</p>'
        "<h2>Findings</h2><table><thead><tr><th>severity</th><th>type</th><th>entry</th>"
        "<th>flows</th><th>what</th><th>peers</th><th>flows that show it (uid)</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
        "<h2>Registry entries</h2><table><thead><tr><th>entry</th><th>connections</th>"
        f"<th>allowed</th><th>peers</th></tr></thead><tbody>{entry_rows}</tbody></table>"
        "</body></html>\n"
    )
