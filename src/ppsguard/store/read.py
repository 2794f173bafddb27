"""Reading the store: hosts, one run's document, a host's history, the last audit's findings,
statistics, and pruning (the one write here, one transaction).

Each function opens the store (migrating it if needed) and returns plain values; database
failures become one RuntimeFailure line. Must not print.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, select, text

from ppsguard.errors import UsageError
from ppsguard.store import history as hist
from ppsguard.store.engine import current_revision, guarded, open_store, read_options
from ppsguard.store.identity import HostIdentity
from ppsguard.store.schema import doors, findings, hosts, runs


@dataclass(frozen=True, slots=True)
class HostRow:
    id: int
    identity: HostIdentity
    first_seen: dt.datetime
    last_seen: dt.datetime


def _read(url: str, work: Any) -> Any:
    engine = open_store(url)

    def run() -> Any:
        with engine.connect().execution_options(**read_options()) as conn, conn.begin():
            return work(conn)

    return guarded(url, run)


def _host_rows(conn: Connection) -> list[HostRow]:
    rows = conn.execute(select(hosts).order_by(hosts.c.hostname, hosts.c.netns)).all()
    return [
        HostRow(r.id, HostIdentity(r.machine_id, r.hostname, r.netns), r.first_seen, r.last_seen)
        for r in rows
    ]


def match_hosts(all_hosts: list[HostRow], wanted: str | None) -> list[HostRow]:
    """Hosts whose label, hostname, netns or machine-id is `wanted` (all when None)."""
    if wanted is None:
        return all_hosts
    chosen = [
        h
        for h in all_hosts
        if wanted
        in (h.identity.label, h.identity.hostname, h.identity.netns, h.identity.machine_id)
    ]
    if not chosen:
        raise UsageError("no such host in the store", token=wanted)
    return chosen


def run_document(url: str, run_id: int) -> tuple[str, Any, str]:
    """(kind, document, host label) of one recorded run, or UsageError."""

    def work(conn: Connection) -> tuple[str, Any, str]:
        row = conn.execute(
            select(runs.c.kind, runs.c.document, hosts.c.hostname, hosts.c.netns)
            .join(hosts, hosts.c.id == runs.c.host_id)
            .where(runs.c.id == run_id)
        ).first()
        if row is None:
            raise UsageError("no such run in the store", token=str(run_id))
        label = HostIdentity("", row.hostname, row.netns).label
        return str(row.kind), json.loads(row.document), label

    result: tuple[str, Any, str] = _read(url, work)
    return result


def last_audit_keys(url: str, identity: HostIdentity) -> set[str] | None:
    """The finding ids of the host's last recorded audit (None: no audit recorded yet)."""

    def work(conn: Connection) -> set[str] | None:
        last = conn.execute(
            select(runs.c.id)
            .join(hosts, hosts.c.id == runs.c.host_id)
            .where(
                hosts.c.machine_id == identity.machine_id,
                hosts.c.hostname == identity.hostname,
                hosts.c.netns == identity.netns,
                runs.c.kind == "audit",
            )
            .order_by(runs.c.observed_at.desc(), runs.c.id.desc())
            .limit(1)
        ).scalar()
        if last is None:
            return None
        return set(conn.execute(select(findings.c.key).where(findings.c.run_id == last)).scalars())

    result: set[str] | None = _read(url, work)
    return result


def _host_history(
    conn: Connection, host: HostRow, since: dt.datetime | None, now: dt.datetime
) -> dict[str, Any]:
    cond = [runs.c.host_id == host.id, runs.c.kind == "audit"]
    if since is not None:
        cond.append(runs.c.observed_at >= since)
    run_list = [
        (int(r.id), r.observed_at)
        for r in conn.execute(
            select(runs.c.id, runs.c.observed_at)
            .where(*cond)
            .order_by(runs.c.observed_at, runs.c.id)
        )
    ]
    found: dict[int, dict[Hashable, dict[str, Any]]] = defaultdict(dict)
    for f in conn.execute(  # a join, so both engines walk runs by host, then findings by run
        select(
            findings.c.run_id,
            findings.c.key,
            findings.c.type,
            findings.c.severity,
            findings.c.title,
            findings.c.protocol,
            findings.c.port,
        )
        .select_from(runs.join(findings, findings.c.run_id == runs.c.id))
        .where(*cond)
    ):
        run_id, key, kind, severity, title, protocol, port = f
        found[run_id][key] = {
            "key": key,
            "type": kind,
            "severity": severity,
            "title": title,
            "protocol": protocol,
            "port": port,
        }
    opened: dict[int, dict[Hashable, dict[str, Any]]] = defaultdict(dict)
    for d in conn.execute(
        select(doors.c.run_id, doors.c.protocol, doors.c.port, doors.c.service, doors.c.process)
        .select_from(runs.join(doors, doors.c.run_id == runs.c.id))
        .where(*cond, doors.c.state == "open")
    ):
        run_id, protocol, port, service, process = d
        opened[run_id][(protocol, port)] = {
            "protocol": protocol,
            "port": port,
            "service": service,
            "process": process,
        }
    finding_tracks = hist.track(run_list, found)
    door_tracks = hist.track(run_list, opened)

    def rows(tracks: list[hist.Track]) -> list[dict[str, Any]]:
        return [
            {
                **t.info,
                "open": t.is_open,
                "intervals": [
                    {
                        "opened": i.opened,
                        "closed": i.closed,
                        "open_seconds": round(i.seconds(now)),
                        "opened_before_first_run": i.since_first,
                    }
                    for i in t.intervals
                ],
            }
            for t in tracks
        ]

    return {
        "host": host.identity.label,
        "identity": host.identity.as_dict(),
        "audits": len(run_list),
        "first": run_list[0][1] if run_list else None,
        "last": run_list[-1][1] if run_list else None,
        "findings": rows(finding_tracks),
        "doors": rows(door_tracks),
        "events": hist.events(finding_tracks, "finding") + hist.events(door_tracks, "door"),
    }


def history(
    url: str, host: str | None, since: dt.datetime | None, now: dt.datetime
) -> list[dict[str, Any]]:
    """Per host: its audits, and each finding's and door's open/closed intervals and events."""

    def work(conn: Connection) -> list[dict[str, Any]]:
        chosen = match_hosts(_host_rows(conn), host)
        out = [_host_history(conn, h, since, now) for h in chosen]
        for item in out:
            item["events"].sort(key=lambda e: (e["time"], e["event"] != "closed"))
        return out

    result: list[dict[str, Any]] = _read(url, work)
    return result


def stats(url: str) -> dict[str, Any]:
    """Row counts, runs per kind, oldest and newest run, schema revision, size on disk."""

    def work(conn: Connection) -> dict[str, Any]:
        counts = {
            str(t.name): int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (hosts, runs, findings, doors)
        }
        kinds: dict[Any, Any] = dict(
            conn.execute(select(runs.c.kind, func.count()).group_by(runs.c.kind)).all()
        )
        oldest, newest = conn.execute(
            select(func.min(runs.c.observed_at), func.max(runs.c.observed_at))
        ).one()
        doc_bytes = conn.execute(select(func.sum(func.length(runs.c.document)))).scalar()
        if conn.dialect.name == "postgresql":
            size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        else:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
            page_size = conn.exec_driver_sql("PRAGMA page_size").scalar() or 0
            size = int(pages) * int(page_size)
        return {
            "dialect": conn.dialect.name,
            "revision": current_revision(conn),
            "rows": counts,
            "runs_by_kind": {str(k): int(v) for k, v in sorted(kinds.items())},
            "oldest_run": oldest,
            "newest_run": newest,
            "document_bytes": int(doc_bytes or 0),
            "size_bytes": int(size or 0),
        }

    result: dict[str, Any] = _read(url, work)
    return result


def prune(url: str, before: dt.datetime) -> dict[str, int]:
    """Delete runs observed before `before` (their findings and doors too), then hosts left
    with no run — in one transaction."""
    engine = open_store(url)

    def work() -> dict[str, int]:
        with engine.begin() as conn:
            old = select(runs.c.id).where(runs.c.observed_at < before).scalar_subquery()
            gone_f = conn.execute(delete(findings).where(findings.c.run_id.in_(old))).rowcount
            gone_d = conn.execute(delete(doors).where(doors.c.run_id.in_(old))).rowcount
            gone_r = conn.execute(delete(runs).where(runs.c.observed_at < before)).rowcount
            with_runs = select(runs.c.host_id).distinct().scalar_subquery()
            gone_h = conn.execute(delete(hosts).where(hosts.c.id.not_in(with_runs))).rowcount
        return {"runs": gone_r, "findings": gone_f, "doors": gone_d, "hosts": gone_h}

    result: dict[str, int] = guarded(url, work)
    return result
