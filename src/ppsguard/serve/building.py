"""The building as data for the browser: a host's door rows in one compact document that
`static/building.js` draws on one canvas (65,536 doors and windows, 0-1023 on the ground floor).

    {"host": "web1", "run": 12, "kind": "audit", "lit": 7,
     "port": [22, ...], "proto": [0, ...], "code": [1, ...], "service": [0, ...],
     "services": ["ssh", ...], "protocols": ["tcp", "udp", "sctp"],
     "codes": ["", "documented", ...]}

Door i is (port[i], protocols[proto[i]], codes[code[i]], services[service[i]] or none for -1).

A door is lit when the audit found it open (any verdict) or a scan or socket listing saw it open;
filtered and closed scan results are drawn dim and do not count as lit. Pure: rows in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

PROTOCOLS = ("tcp", "udp", "sctp")
PORTS = 65536
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


_CODE = {name: index for index, name in enumerate(CODES) if name}
_PROTO = {name: index for index, name in enumerate(PROTOCOLS)}
# Drawing precedence by code: lit doors above dim results; among lit ones the worse verdict.
_RANK = (0, 6, 8, 9, 7, 5, 3, 1, 2)
Row = tuple[int, str, str, str | None, str | None]  # port, protocol, state, status, service


def code_of(state: str, status: str | None) -> int:
    """The drawing code of one door: its audit verdict, else its observed state."""
    if status is not None and 1 <= _CODE.get(status, 0) <= 4:
        return _CODE[status]
    return _CODE.get(state, 0)


def building_data(
    label: str, run_id: int | None, kind: str | None, rows: Iterable[Row]
) -> dict[str, Any]:
    """The compact building document: one entry per protocol and port (the worst code wins),
    as four parallel columns so that 65,535 results cost no per-door object. One slot per
    protocol and port in flat lists, then NumPy for the order: 0.1 s for 65,535 rows here,
    against 0.6 s with a dict of per-door lists (most of it the garbage collector)."""
    size = PORTS
    codes = [0] * (len(PROTOCOLS) * size)
    names: list[str | None] = [None] * (len(PROTOCOLS) * size)
    for port, protocol, state, status, service in rows:
        proto = _PROTO.get(protocol)
        if proto is None or not 0 <= port < size:
            continue
        code = code_of(state, status)
        slot = proto * size + port
        if code and _RANK[code] > _RANK[codes[slot]]:
            codes[slot] = code
            names[slot] = service or names[slot]
        elif service and names[slot] is None:
            names[slot] = service
    grid = np.asarray(codes, dtype=np.int8).reshape(len(PROTOCOLS), size)
    protos, ports = np.nonzero(grid)
    order = np.lexsort((protos, ports))
    protos, ports = protos[order], ports[order]
    found = grid[protos, ports]
    services: dict[str, int] = {}
    service_column = []
    for slot in (protos * size + ports).tolist():
        name = names[slot]
        service_column.append(services.setdefault(name, len(services)) if name else -1)
    return {
        "host": label,
        "run": run_id,
        "kind": kind,
        "lit": int(np.isin(found, sorted(LIT)).sum()),
        "port": ports.tolist(),
        "proto": protos.tolist(),
        "code": found.tolist(),
        "service": service_column,
        "services": list(services),
        "protocols": list(PROTOCOLS),
        "codes": list(CODES),
    }
