"""The audit as one self-contained HTML page: the building first, then findings and doors.

No external assets, no script: inline CSS only, so the page opens anywhere, offline, and a
hostile banner has nothing to run in. Every string from the host or the registry passes
through `html.escape`.
"""

from __future__ import annotations

import html

from ppsguard.model.findings import AuditReport, Finding
from ppsguard.report.building import CSS as BUILDING_CSS
from ppsguard.report.building import building_html

PAGE_CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;padding:18px 22px;color:#222;background:#f6f7f9}
h1{font-size:1.5rem;margin:0 0 .3rem} h2{font-size:1.15rem;margin:1.6rem 0 .5rem}
.meta{color:#555;margin:0 0 1rem}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{border:1px solid #d0d4da;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eceff3}
td pre{margin:0;white-space:pre-wrap;word-break:break-word;font-size:12px}
.sev{font-weight:700;text-transform:uppercase;font-size:11px}
.sev-critical,.sev-high{color:#b00020} .sev-medium{color:#a15c00} .sev-low{color:#29557a}
.sev-info{color:#555}
.counts span{display:inline-block;margin-right:14px}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _door(finding: Finding) -> str:
    if finding.port is None:
        return "host"
    proto = finding.protocol.value if finding.protocol else "?"
    return f"{proto}/{finding.address or '*'}:{finding.port}"


def _finding_row(finding: Finding) -> str:
    evidence = "\n".join(finding.evidence)
    return (
        f'<tr id="finding-{_e(finding.id)}"><td class="sev sev-{_e(finding.severity.value)}">'
        f"{_e(finding.severity.value)}</td><td>{_e(finding.type.value)}</td>"
        f"<td>{_e(_door(finding))}</td><td>{_e(finding.process)}</td>"
        f"<td>{_e(finding.entry)}<br><small>{_e(finding.entry_location)}</small></td>"
        f"<td>{_e(finding.title)}<pre>{_e(evidence)}</pre></td>"
        f"<td><pre>{_e(finding.remedy.text())}</pre></td><td><code>{_e(finding.id)}</code></td></tr>"
    )


def render_html(report: AuditReport) -> str:
    """The whole page as text."""
    counts = report.counts()
    count_html = "".join(
        f'<span class="sev sev-{_e(k)}">{_e(k)}: {v}</span>' for k, v in counts.items()
    )
    rows = "".join(_finding_row(f) for f in report.findings) or (
        '<tr><td colspan="8">No findings: what runs, what is reachable and what is enforced '
        "match the registry.</td></tr>"
    )
    door_rows = "".join(
        f'<tr id="door-{_e(d.protocol.value)}-{d.port}"><td>{_e(d.protocol.value)}/{d.port}</td>'
        f"<td>{_e(d.status.value)}</td><td>{_e(d.service)}</td><td>{_e(d.process)}</td>"
        f"<td>{_e(', '.join(d.addresses))}</td>"
        f"<td>{_e('' if d.reachable is None else ('yes' if d.reachable else 'no'))}</td>"
        f"<td>{_e(d.entry)}</td><td><pre>{_e(d.banner)}</pre></td></tr>"
        for d in report.doors
    )
    views = "".join(f"<li>{_e(k)}: {_e(v)}</li>" for k, v in report.views.items())
    gaps = "".join(f"<li>{_e(g)}</li>" for g in report.gaps)
    hint = f"<p><strong>{_e(report.draft_hint)}</strong></p>" if report.draft_hint else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        f"<title>ppsguard audit of {_e(report.host)}</title>"
        f"<style>{BUILDING_CSS}{PAGE_CSS}</style></head><body>"
        f"<h1>ppsguard audit of {_e(report.host)}</h1>"
        f'<p class="meta">observed {_e(report.observed_at.isoformat(timespec="seconds"))} · '
        f"registry: {_e(report.registry or 'none')} · {len(report.findings)} findings</p>"
        f"{building_html(report)}"
        f'<p class="counts">{count_html}</p>{hint}'
        "<h2>Findings</h2><table><thead><tr><th>severity</th><th>type</th><th>door</th>"
        "<th>process</th><th>registry entry</th><th>what and evidence</th><th>remedy</th>"
        f"<th>id</th></tr></thead><tbody>{rows}</tbody></table>"
        "<h2>Open doors</h2><table><thead><tr><th>door</th><th>status</th><th>service</th>"
        "<th>process</th><th>bound to</th><th>reachable</th><th>entry</th><th>banner</th></tr>"
        f"</thead><tbody>{door_rows}</tbody></table>"
        f"<h2>What was looked at</h2><ul>{views}</ul>"
        + (f"<h2>What could not be seen</h2><ul>{gaps}</ul>" if gaps else "")
        + "</body></html>\n"
    )
