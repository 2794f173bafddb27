"""Reads for the web desk (`pps serve`): one host, its runs, one run's door rows, the newest
run of a kind, and the watch runs recorded after a given run.

Each function opens the store (migrating it if needed) and returns plain values; database
failures become one RuntimeFailure line (store.engine.guarded). Must not print.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from ppsguard.errors import UsageError
from ppsguard.store.identity import HostIdentity
from ppsguard.store.read import HostRow, _host_rows, _read
from ppsguard.store.schema import doors, hosts, runs


@dataclass(frozen=True, slots=True)
class RunRow:
    """One recorded run, without its document."""

    id: int
    host_id: int
    kind: str
    observed_at: dt.datetime
    findings: int
    open_doors: int
    by_severity: dict[str, int]
    registry: str | None


@dataclass(frozen=True, slots=True)
class DoorRow:
    """One door row of a run (an audit door, a listening socket, a scanned port)."""

    address: str
    protocol: str
    port: int
    state: str
    service: str | None
    version: str | None
    process: str | None
    status: str | None


def _run(r: Any) -> RunRow:
    return RunRow(
        int(r.id),
        int(r.host_id),
        str(r.kind),
        r.observed_at,
        int(r.findings),
        int(r.open_doors),
        json.loads(r.by_severity or "{}"),
        r.registry,
    )


_RUN_COLUMNS = (
    runs.c.id,
    runs.c.host_id,
    runs.c.kind,
    runs.c.observed_at,
    runs.c.findings,
    runs.c.open_doors,
    runs.c.by_severity,
    runs.c.registry,
)


def host(url: str, host_id: int) -> HostRow:
    """One host by its id, or UsageError."""

    def work(conn: Connection) -> HostRow:
        r = conn.execute(select(hosts).where(hosts.c.id == host_id)).first()
        if r is None:
            raise UsageError("no such host in the store", token=str(host_id))
        return HostRow(
            int(r.id), HostIdentity(r.machine_id, r.hostname, r.netns), r.first_seen, r.last_seen
        )

    result: HostRow = _read(url, work)
    return result


def all_hosts(url: str) -> list[HostRow]:
    """Every host, by hostname and namespace."""
    result: list[HostRow] = _read(url, _host_rows)
    return result


def host_runs(url: str, host_id: int, limit: int = 200) -> list[RunRow]:
    """The host's runs, newest first."""

    def work(conn: Connection) -> list[RunRow]:
        rows = conn.execute(
            select(*_RUN_COLUMNS)
            .where(runs.c.host_id == host_id)
            .order_by(runs.c.observed_at.desc(), runs.c.id.desc())
            .limit(limit)
        )
        return [_run(r) for r in rows]

    result: list[RunRow] = _read(url, work)
    return result


def newest_run(url: str, host_id: int, kinds: tuple[str, ...]) -> RunRow | None:
    """The host's newest run of the first kind in `kinds` that it has (None: none of them)."""

    def work(conn: Connection) -> RunRow | None:
        for kind in kinds:
            r = conn.execute(
                select(*_RUN_COLUMNS)
                .where(runs.c.host_id == host_id, runs.c.kind == kind)
                .order_by(runs.c.observed_at.desc(), runs.c.id.desc())
                .limit(1)
            ).first()
            if r is not None:
                return _run(r)
        return None

    result: RunRow | None = _read(url, work)
    return result


def run_doors(url: str, run_id: int, limit: int | None = None) -> list[DoorRow]:
    """The door rows of one run, by port (the first `limit` of them)."""

    def work(conn: Connection) -> list[DoorRow]:
        rows = conn.execute(
            select(
                doors.c.address,
                doors.c.protocol,
                doors.c.port,
                doors.c.state,
                doors.c.service,
                doors.c.version,
                doors.c.process,
                doors.c.status,
            )
            .where(doors.c.run_id == run_id)
            .order_by(doors.c.port, doors.c.protocol)
            .limit(limit)
        )
        return [DoorRow(*r) for r in rows]

    result: list[DoorRow] = _read(url, work)
    return result


_BUILDING_QMARK = "SELECT port, protocol, state, status, service FROM doors WHERE run_id = ?"
_BUILDING_FORMAT = "SELECT port, protocol, state, status, service FROM doors WHERE run_id = %s"


def building_rows(url: str, run_id: int) -> list[tuple[int, str, str, str | None, str | None]]:
    """(port, protocol, state, status, service) of every door row of a run, as plain tuples.

    The building of a host with 65,535 scan results reads them all: through SQLAlchemy Row
    objects that took 1.0 s here, through the driver's own cursor 0.1 s (measured 2026-12-02).
    """

    def work(conn: Connection) -> list[tuple[int, str, str, str | None, str | None]]:
        query = _BUILDING_QMARK if conn.dialect.paramstyle == "qmark" else _BUILDING_FORMAT
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(
                query,
                (run_id,),
            )
            return list(cursor.fetchall())
        finally:
            cursor.close()

    result: list[tuple[int, str, str, str | None, str | None]] = _read(url, work)
    return result


def door_count(url: str, run_id: int) -> int:
    """How many door rows a run has."""

    def work(conn: Connection) -> int:
        return int(
            conn.execute(
                select(func.count()).select_from(doors).where(doors.c.run_id == run_id)
            ).scalar_one()
        )

    result: int = _read(url, work)
    return result


def run_with_document(url: str, run_id: int) -> tuple[RunRow, Any]:
    """One run and its parsed document, or UsageError."""

    def work(conn: Connection) -> tuple[RunRow, Any]:
        r = conn.execute(select(*_RUN_COLUMNS, runs.c.document).where(runs.c.id == run_id)).first()
        if r is None:
            raise UsageError("no such run in the store", token=str(run_id))
        return _run(r), json.loads(r.document)

    result: tuple[RunRow, Any] = _read(url, work)
    return result


def watch_runs_after(url: str, after_id: int) -> list[tuple[int, str, Any]]:
    """(run id, host label, document) of every watch run recorded with an id above `after_id`."""

    def work(conn: Connection) -> list[tuple[int, str, Any]]:
        rows = conn.execute(
            select(runs.c.id, runs.c.document, hosts.c.hostname, hosts.c.netns)
            .join(hosts, hosts.c.id == runs.c.host_id)
            .where(runs.c.kind == "watch", runs.c.id > after_id)
            .order_by(runs.c.id)
            .limit(100)
        )
        return [
            (int(r.id), HostIdentity("", r.hostname, r.netns).label, json.loads(r.document))
            for r in rows
        ]

    result: list[tuple[int, str, Any]] = _read(url, work)
    return result


def last_run_id(url: str) -> int:
    """The highest run id in the store (0 when empty)."""

    def work(conn: Connection) -> int:
        value = conn.execute(select(runs.c.id).order_by(runs.c.id.desc()).limit(1)).scalar()
        return int(value or 0)

    result: int = _read(url, work)
    return result
