"""The building as data for the browser: a host's door rows in one compact document that
`static/building.js` draws on one canvas (65,536 doors and windows, 0-1023 on the ground floor).

    {"host": "web1", "run": 12, "kind": "audit", "lit": 7,
     "doors": [[port, protocol, code, service index], ...], "services": ["ssh", ...],
     "protocols": ["tcp", "udp", "sctp"], "codes": ["", "documented", ...]}

A door is lit when the audit found it open (any verdict) or a scan or socket listing saw it open;
filtered and closed scan results are drawn dim and do not count as lit. Pure: rows in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ppsguard.store.desk import DoorRow

PROTOCOLS = ("tcp", "udp", "sctp")
# The index of each name is the code the canvas reads; order = the drawing precedence.
CODES = (
    "",
    "documented",
    "undocumented",
    "risky",
    "blocked",
    "open",
    "filtered",
    "closed",
    "open|filtered",
)
LIT = frozenset({1, 2, 3, 4, 5})
MEANINGS = {
    "documented": "documented in the registry, no finding",
    "undocumented": "open but not in the registry",
    "risky": "risky: a risk, a wider bind, a firewall that does not hold",
    "blocked": "listening, but the firewall drops it",
    "open": "open (no audit verdict: a scan or a socket listing)",
    "filtered": "filtered: no answer from outside",
    "closed": "closed",
    "open|filtered": "open or filtered (UDP without an answer)",
}


def code_of(row: DoorRow) -> int:
    """The drawing code of one door row: its audit verdict, else its observed state."""
    if row.status in CODES[1:5]:
        return CODES.index(row.status)
    if row.state in CODES:
        return CODES.index(row.state)
    return CODES.index("open") if row.state == "open" else 0


def building_data(
    label: str, run_id: int | None, kind: str | None, rows: Iterable[DoorRow]
) -> dict[str, Any]:
    """The compact building document (one entry per protocol and port; the worst code wins)."""
    best: dict[tuple[int, int], tuple[int, str | None]] = {}
    for row in rows:
        if row.protocol not in PROTOCOLS or not 0 <= row.port <= 65535:
            continue
        key = (row.port, PROTOCOLS.index(row.protocol))
        code = code_of(row)
        old = best.get(key)
        if old is None or _rank(code) > _rank(old[0]):
            best[key] = (code, row.service or (old[1] if old else None))
    services: dict[str, int] = {}
    out: list[list[int]] = []
    for (port, proto), (code, service) in sorted(best.items()):
        index = -1
        if service:
            index = services.setdefault(service, len(services))
        out.append([port, proto, code, index])
    return {
        "host": label,
        "run": run_id,
        "kind": kind,
        "lit": sum(1 for d in out if d[2] in LIT),
        "doors": out,
        "services": list(services),
        "protocols": list(PROTOCOLS),
        "codes": list(CODES),
    }


def _rank(code: int) -> int:
    """Lit doors above dim results; among lit ones the worse verdict wins."""
    order = (0, 6, 8, 9, 7, 5, 3, 1, 2)  # by code: none, doc, undoc, risky, blocked, open, ...
    return order[code]
