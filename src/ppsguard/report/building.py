"""The building: a host's 65,536 ports drawn as a tower, as one self-contained HTML fragment.

The ground floor holds the 1,024 doors (system ports 0-1023); above it 63 floors of 1,024
windows each hold the user ports (1024-49151, registered) and, at the top, the dynamic ports
(49152-65535, shaded). A floor is one strip whose unlit windows are a CSS background; every
open port is one lit element placed by its position on the floor, so the page stays small
whatever the number of ports. Each lit window is focusable, carries a `title`, an `aria-label`
and a letter (D documented, U undocumented, R risky, B blocked) and a pattern, so it reads
without colour. Every text from the host (service, process, banner) is HTML-escaped.
"""

from __future__ import annotations

import html

from ppsguard.model.findings import AuditReport, Door, DoorStatus, Finding

PORTS_PER_FLOOR = 1024
FLOORS = 64
DYNAMIC_FIRST = 49152
SPACING = 13.0  # ports; a lit window is ~11 px wide on a ~950 px floor

LETTERS = {
    DoorStatus.DOCUMENTED: "D",
    DoorStatus.UNDOCUMENTED: "U",
    DoorStatus.RISKY: "R",
    DoorStatus.BLOCKED: "B",
}
MEANINGS = {
    DoorStatus.DOCUMENTED: "documented in the registry, no finding",
    DoorStatus.UNDOCUMENTED: "open but not in the registry",
    DoorStatus.RISKY: "risky: a risk, a wider bind, a firewall that does not hold",
    DoorStatus.BLOCKED: "listening, but the firewall drops it",
}

CSS = """
.building{max-width:1100px;margin:0 auto 1.5rem;border:3px solid #333;border-bottom:none;
  background:#2b2f3a;padding:12px 10px 0;border-radius:6px 6px 0 0}
.roof{color:#eee;font:600 14px/1.4 system-ui,sans-serif;text-align:center;margin-bottom:6px}
.floor{display:flex;align-items:stretch;height:9px;margin:0 0 1px}
.floor .label{flex:0 0 92px;color:#aab;font:8px/9px ui-monospace,monospace;text-align:right;
  padding-right:6px}
.floor .windows{position:relative;flex:1;background-color:#3a4050;
  background-image:repeating-linear-gradient(90deg,#4a5165 0 1px,transparent 1px 6.25%)}
.floor.dynamic .windows{background-color:#33394a}
.floor.ground{height:30px;margin-top:5px}
.floor.ground .label{line-height:30px}
.floor.ground .windows{background-color:#5b4636;
  background-image:repeating-linear-gradient(90deg,#6e5642 0 2px,transparent 2px 3.125%)}
.lit{position:absolute;top:0;bottom:0;min-width:11px;transform:translateX(-50%);
  font:700 8px/8px ui-monospace,monospace;text-align:center;color:#111;text-decoration:none;
  border:1px solid #111;box-sizing:border-box;overflow:hidden;z-index:1;
  text-shadow:0 0 2px #fff,0 0 2px #fff}
.floor.ground .lit{font-size:10px;line-height:28px;border-radius:6px 6px 0 0;min-width:13px}
.lit:hover,.lit:focus{outline:3px solid #fff;z-index:3}
.lit.documented{background-color:#7fd67f}
.lit.undocumented{background-color:#ffcc4d;
  background-image:repeating-linear-gradient(45deg,transparent 0 3px,#d99a00 3px 5px)}
.lit.risky{background-color:#ff6b6b;
  background-image:repeating-linear-gradient(45deg,transparent 0 2px,#b02020 2px 3px),
  repeating-linear-gradient(-45deg,transparent 0 2px,#b02020 2px 3px)}
.lit.blocked{background-color:#c3c9cf;
  background-image:radial-gradient(#495057 1px,transparent 1.5px);background-size:4px 4px}
.street{max-width:1124px;margin:0 auto;height:10px;background:#555;border-radius:0 0 4px 4px}
.legend{display:flex;flex-wrap:wrap;gap:14px;justify-content:center;margin:10px 0 22px;
  font:13px system-ui,sans-serif}
.legend .lit{position:static;display:inline-block;transform:none;width:18px;height:14px}
.tip{display:none}
"""


def _window_text(door: Door, findings: dict[str, Finding]) -> str:
    parts = [
        f"{door.protocol.value}/{door.port}",
        door.status.value,
        f"service: {door.service or 'unknown'}",
        f"process: {door.process or 'unknown'}",
    ]
    if door.addresses:
        parts.append("bound: " + ", ".join(door.addresses[:6]))
    if door.entry:
        parts.append(f"entry: {door.entry}")
    if door.reachable is not None:
        parts.append("reachable from outside" if door.reachable else "not reachable from outside")
    for fid in door.findings:
        finding = findings.get(fid)
        if finding is not None:
            parts.append(
                f"finding: {finding.type.value} ({finding.severity.value}): {finding.title}"
            )
    if door.banner:
        parts.append(f"banner: {door.banner[:200]}")
    return " — ".join(parts)


def spread(ports: list[int], gap: float = SPACING) -> list[float]:
    """Positions (in ports along the floor) for sorted `ports`, at least `gap` apart so every
    lit window stays visible: neighbours are pushed right, then back left from the wall."""
    positions: list[float] = []
    for port in ports:
        ideal = port % PORTS_PER_FLOOR + 0.5
        positions.append(max(ideal, positions[-1] + gap) if positions else ideal)
    limit = PORTS_PER_FLOOR - gap / 2
    for index in range(len(positions) - 1, -1, -1):
        nxt = positions[index + 1] - gap if index + 1 < len(positions) else limit
        positions[index] = max(min(positions[index], nxt), 0.5)
    return positions


def _lit(door: Door, findings: dict[str, Finding], position: float) -> str:
    left = position / PORTS_PER_FLOOR * 100
    text = html.escape(_window_text(door, findings), quote=True)
    return (
        f'<a class="lit {door.status.value}" href="#door-{door.protocol.value}-{door.port}" '
        f'style="left:{left:.4f}%" tabindex="0" data-port="{door.port}" '
        f'data-protocol="{door.protocol.value}" title="{text}" aria-label="{text}">'
        f"{LETTERS[door.status]}</a>"
    )


def building_html(report: AuditReport) -> str:
    """The building as an HTML fragment (needs `CSS`); one `.lit` element per open door."""
    findings = {f.id: f for f in report.findings}
    by_floor: dict[int, list[Door]] = {}
    for door in report.doors:
        by_floor.setdefault(door.port // PORTS_PER_FLOOR, []).append(door)
    rows: list[str] = []
    for floor in range(FLOORS - 1, -1, -1):
        first = floor * PORTS_PER_FLOOR
        last = first + PORTS_PER_FLOOR - 1
        classes = ["floor"]
        if floor == 0:
            classes.append("ground")
        elif first >= DYNAMIC_FIRST:
            classes.append("dynamic")
        name = "ground floor, doors" if floor == 0 else f"floor {floor}"
        doors = sorted(by_floor.get(floor, []), key=lambda d: (d.port, d.protocol.value))
        places = spread([d.port for d in doors])
        lit = "".join(_lit(d, findings, x) for d, x in zip(doors, places, strict=True))
        rows.append(
            f'<div class="{" ".join(classes)}" role="group" '
            f'aria-label="{name}: ports {first} to {last}">'
            f'<span class="label">{first}–{last}</span><div class="windows">{lit}</div></div>'
        )
    host = html.escape(report.host)
    counts = {s: sum(1 for d in report.doors if d.status is s) for s in DoorStatus}
    summary = ", ".join(f"{counts[s]} {s.value}" for s in DoorStatus)
    legend = "".join(
        f'<span><span class="lit {s.value}" aria-hidden="true">{LETTERS[s]}</span> '
        f"{LETTERS[s]} = {html.escape(MEANINGS[s])}</span>"
        for s in (
            DoorStatus.DOCUMENTED,
            DoorStatus.UNDOCUMENTED,
            DoorStatus.RISKY,
            DoorStatus.BLOCKED,
        )
    )
    return (
        f'<figure class="picture" aria-label="The building of {host}: '
        f'{len(report.doors)} open doors and windows ({summary})">'
        f'<div class="building"><div class="roof">{host} — {len(report.doors)} open of 65,536 '
        f'({summary})</div>{"".join(rows)}</div><div class="street"></div>'
        f'<figcaption class="legend">{legend}<span>upper floors: user ports; '
        "darker top floors: dynamic ports 49152–65535</span></figcaption></figure>"
    )
