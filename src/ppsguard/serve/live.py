"""Live alerts for the desk: what `pps watch` announces, followed while it happens.

Two sources, polled every POLL seconds by one task per browser stream:
    * alert files — what `pps watch --alerts-to jsonl:FILE` appends, one JSON line per
      announcement, or what `pps watch --jsonl > FILE` writes, events too (`pps serve --alerts
      [HOST=]FILE`); read from their end at start, so only new lines appear; a truncated or
      replaced file is read again from its start;
    * the store — the watch runs `pps watch --store` records when it stops, each alert once.

An alert becomes an `Item`: the source host (the label given with --alerts, or the run's host),
the kind, severity, message, remote and ports; the page renders it (escaped) and the building
blinks its ports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ppsguard.store import desk

POLL = 0.25  # seconds: an alert line is on screen well within the 2 s
MAX_LINE = 65536
MAX_READ = 4 << 20  # bytes read from one file per poll (a flood does not stall the stream)


@dataclass(frozen=True, slots=True)
class Item:
    """One alert as the desk shows it."""

    id: str
    host: str
    kind: str
    severity: str
    message: str
    remote: str | None
    ports: tuple[int, ...]
    proto: str | None
    at: float
    entry: str | None
    type: str = "alert"  # or "event": one connection or listener change (`pps watch --jsonl`)

    def knock(self) -> dict[str, Any]:
        return {"host": self.host, "ports": list(self.ports[:64]), "proto": self.proto}


def event_of(record: dict[str, Any], host: str) -> Item | None:
    """An Item from one event record (monitor/records.event_record): the door is the
    responder's port of an inbound connection, or the listener's port."""
    if record.get("id.resp_p") is None and record.get("id.orig_h") is None:
        return None  # not an event of a connection or a listener
    kind = str(record.get("kind") or "event")[:32]
    port = record.get("id.resp_p")
    inbound = record.get("direction") in ("inbound", "local") or kind.startswith("listener")
    ports = (port,) if inbound and isinstance(port, int) and 0 <= port <= 65535 else ()
    orig = f"{record.get('id.orig_h')}:{record.get('id.orig_p')}"
    resp = f"{record.get('id.resp_h')}:{record.get('id.resp_p')}"
    detail = record.get("detail") or record.get("process") or ""
    at = record.get("ts")
    return Item(
        id="",
        host=host,
        kind=kind,
        severity="",
        message=f"{orig} -> {resp} {detail}".strip()[:500],
        remote=None if record.get("id.orig_h") is None else str(record["id.orig_h"])[:64],
        ports=ports,
        proto=None if record.get("proto") is None else str(record["proto"])[:8],
        at=float(at) if isinstance(at, int | float) else 0.0,
        entry=None if record.get("entry") is None else str(record["entry"])[:64],
        type="event",
    )


def item_of(record: Any, host: str) -> Item | None:
    """An Item from one alert or event record (monitor/records), None for anything else."""
    if isinstance(record, dict) and record.get("type") == "event":
        return event_of(record, host)
    if not isinstance(record, dict) or record.get("type", "alert") != "alert":
        return None
    ports = tuple(p for p in record.get("ports") or () if isinstance(p, int) and 0 <= p <= 65535)
    entry = record.get("entry")
    where = None
    if isinstance(entry, dict):
        where = f"{entry.get('id')} {entry.get('file')}:{entry.get('line')}"
    last = record.get("last_seen")
    return Item(
        id=str(record.get("id") or record.get("key") or ""),
        host=host,
        kind=str(record.get("kind") or "alert")[:64],
        severity=str(record.get("severity") or "info")[:16],
        message=str(record.get("message") or "")[:2000],
        remote=None if record.get("remote") is None else str(record["remote"])[:64],
        ports=ports,
        proto=None if record.get("proto") is None else str(record["proto"])[:8],
        at=float(last) if isinstance(last, int | float) else 0.0,
        entry=where,
    )


@dataclass
class FileFollower:
    """Follows one JSON-lines alert file from where it ended when the follower was made."""

    host: str
    path: Path
    offset: int = 0
    inode: int | None = None
    rest: bytes = b""

    def __post_init__(self) -> None:
        try:
            stat = self.path.stat()
        except OSError:
            return
        self.offset, self.inode = stat.st_size, stat.st_ino

    def poll(self) -> list[Item]:
        try:
            stat = self.path.stat()
        except OSError:
            return []
        if stat.st_ino != self.inode or stat.st_size < self.offset:  # replaced or truncated
            self.offset, self.inode, self.rest = 0, stat.st_ino, b""
        if stat.st_size == self.offset:
            return []
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read(MAX_READ)
        except OSError:
            return []
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()[:MAX_LINE]
        out = []
        for line in lines:
            try:
                record = orjson.loads(line[:MAX_LINE])
            except orjson.JSONDecodeError:
                continue
            item = item_of(record, self.host)
            if item is not None:
                out.append(item)
        return out


@dataclass
class StoreFollower:
    """Follows the watch runs recorded in the store after the follower was made."""

    url: str
    after: int = -1
    failures: int = field(default=0)

    def poll(self) -> list[Item]:
        try:
            if self.after < 0:
                self.after = desk.last_run_id(self.url)
                return []
            runs = desk.watch_runs_after(self.url, self.after)
        except Exception:  # a store that is down only pauses this source
            self.failures += 1
            return []
        out: list[Item] = []
        for run_id, host, document in runs:
            self.after = max(self.after, run_id)
            for record in document.get("alerts") or [] if isinstance(document, dict) else []:
                item = item_of(record, host)
                if item is not None:
                    out.append(item)
        return out


def parse_alert_source(text: str) -> tuple[str, Path]:
    """`HOST=FILE` or `FILE` (host: the file's name without its suffix)."""
    host, sep, path = text.partition("=")
    if not sep:
        path, host = text, Path(text).stem
    return host, Path(path).expanduser()
