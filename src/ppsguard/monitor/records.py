"""Events and alerts as JSON-ready dictionaries (one line each in `pps watch --jsonl`).

Events use Zeek's conn.log names for the 5-tuple (`id.orig_h`, `id.orig_p`, `id.resp_h`,
`id.resp_p`, `proto`) so that the live stream and `pps flows` read alike; alerts carry their key,
kind, severity, message, first/last seen, the remote and local sides, ports, count, the registry
entry {id, file, line} and the evidence. Every line has `"type": "event"` or `"type": "alert"`,
and alerts an `id` (`key#update`) that a receiver can use to drop repeats. Pure.
"""

from __future__ import annotations

from typing import Any

from ppsguard.model.events import Alert, Event
from ppsguard.model.net import ip_text


def event_record(event: Event) -> dict[str, Any]:
    record: dict[str, Any] = {
        "type": "event",
        "ts": round(event.time, 6),
        "kind": event.kind.value,
        "source": event.source.value,
        "proto": event.protocol or None,
        "id.orig_h": None if event.orig is None else ip_text(event.orig),
        "id.orig_p": event.orig_port,
        "id.resp_h": None if event.resp is None else ip_text(event.resp),
        "id.resp_p": event.resp_port,
        "direction": event.direction.value,
    }
    optional = {
        "state": event.state,
        "answered": event.answered,
        "orig_pkts": event.orig_packets,
        "orig_ip_bytes": event.orig_bytes,
        "resp_pkts": event.resp_packets,
        "resp_ip_bytes": event.resp_bytes,
        "community_id": event.community_id,
        "entry": event.entry_id,
        "process": event.process,
        "pid": event.pid,
        "detail": event.detail,
    }
    record.update({k: v for k, v in optional.items() if v is not None})
    if not event.initiated:
        record["initiated"] = False
    if event.count != 1:
        record["count"] = event.count
    return record


def alert_record(alert: Alert) -> dict[str, Any]:
    return {
        "type": "alert",
        "id": f"{alert.key}#{alert.updates}",
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity.value,
        "message": alert.message,
        "first_seen": round(alert.first_seen, 6),
        "last_seen": round(alert.last_seen, 6),
        "remote": None if alert.remote is None else str(alert.remote),
        "local": None if alert.local is None else str(alert.local),
        "ports": list(alert.ports),
        "proto": alert.protocol,
        "count": alert.count,
        "entry": None
        if alert.entry is None
        else {"id": alert.entry.id, "file": alert.entry.file, "line": alert.entry.line},
        "evidence": alert.evidence,
    }
