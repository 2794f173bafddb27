"""The fleet view: every host in the store — last seen, open doors, findings by severity from its
last audit, drift since its previous run, and whether it stopped reporting.

Two queries for the whole fleet (each host's last two runs by a window function; their findings
and doors), then plain Python. A host is stale when its last run is older than `stale_after`
(default: three times its last interval between runs, at least an hour; a day with one run).
Must not print.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, String, cast, func, literal, select

from ppsguard.store.read import _host_rows, _read
from ppsguard.store.schema import doors, findings, hosts, runs

MIN_STALE = dt.timedelta(hours=1)
ONE_RUN_STALE = dt.timedelta(days=1)


def _joined(conn: Connection, column: Any) -> Any:
    """The values of `column` in a group, space-separated (keys and door labels have no space)."""
    if conn.dialect.name == "postgresql":
        return func.string_agg(column, literal(" "))
    return func.group_concat(column, literal(" "))


def _newest(kind: str | None, offset: int) -> Any:
    """A scalar subquery: the id of a host's newest run (offset 0) or the one before (1)."""
    inner = select(runs.c.id).where(runs.c.host_id == hosts.c.id)
    if kind is not None:
        inner = inner.where(runs.c.kind == kind)
    return (
        inner.order_by(runs.c.observed_at.desc(), runs.c.id.desc())
        .limit(1)
        .offset(offset)
        .correlate(hosts)
        .scalar_subquery()
    )


def _last_two(conn: Connection) -> dict[int, list[Any]]:
    """host id -> its last two audits (newest first), or its last two runs of any kind when it
    has no audit. Two index seeks per host (correlated subqueries), not a pass over all runs."""
    picks = conn.execute(
        select(
            hosts.c.id,
            _newest("audit", 0),
            _newest("audit", 1),
            _newest(None, 0),
            _newest(None, 1),
        )
    ).all()
    chosen: dict[int, list[int]] = {}
    for host_id, last_audit, prev_audit, last_any, prev_any in picks:
        pair = [last_audit, prev_audit] if last_audit is not None else [last_any, prev_any]
        chosen[int(host_id)] = [int(r) for r in pair if r is not None]
    wanted = [r for pair in chosen.values() for r in pair]
    by_id: dict[int, Any] = {}
    for start in range(0, len(wanted), 5000):
        for row in conn.execute(
            select(
                runs.c.id,
                runs.c.host_id,
                runs.c.kind,
                runs.c.observed_at,
                runs.c.findings,
                runs.c.open_doors,
                runs.c.by_severity,
            ).where(runs.c.id.in_(wanted[start : start + 5000]))
        ):
            by_id[int(row.id)] = row
    return {h: [by_id[r] for r in pair if r in by_id] for h, pair in chosen.items()}


def fleet(url: str, now: dt.datetime, stale_after: dt.timedelta | None = None) -> dict[str, Any]:
    """The fleet document `pps fleet --json` prints."""

    def work(conn: Connection) -> dict[str, Any]:
        host_rows = _host_rows(conn)
        last_two = _last_two(conn)
        counts: dict[Any, Any] = dict(
            conn.execute(select(runs.c.host_id, func.count()).group_by(runs.c.host_id)).all()
        )
        wanted = [r.id for rows in last_two.values() for r in rows]
        keys: dict[int, set[str]] = defaultdict(set)
        door_keys: dict[int, set[str]] = defaultdict(set)
        door = cast(doors.c.port, String) + literal("/") + doors.c.protocol
        for chunk in range(0, len(wanted), 5000):  # one aggregated row per run, not per finding
            ids = wanted[chunk : chunk + 5000]
            for run_id, joined in conn.execute(
                select(findings.c.run_id, _joined(conn, findings.c.key))
                .where(findings.c.run_id.in_(ids))
                .group_by(findings.c.run_id)
            ):
                keys[run_id] = set(joined.split(" "))
            for run_id, joined in conn.execute(
                select(doors.c.run_id, _joined(conn, door))
                .where(doors.c.run_id.in_(ids), doors.c.state == "open")
                .group_by(doors.c.run_id)
            ):
                door_keys[run_id] = set(joined.split(" "))
        hosts_out = []
        for host in host_rows:
            rows = last_two.get(host.id, [])
            if not rows:
                continue
            last, prev = rows[0], rows[1] if len(rows) > 1 else None
            limit = stale_after
            if limit is None:
                limit = (
                    max(MIN_STALE, 3 * (last.observed_at - prev.observed_at))
                    if prev is not None
                    else ONE_RUN_STALE
                )
            seen = max(host.last_seen, last.observed_at)
            drift: dict[str, Any] | None = None
            if prev is not None:
                a_k, b_k = keys[prev.id], keys[last.id]
                a_d, b_d = door_keys[prev.id], door_keys[last.id]
                drift = {
                    "since": prev.observed_at,
                    "findings_new": len(b_k - a_k),
                    "findings_fixed": len(a_k - b_k),
                    "doors_opened": sorted(b_d - a_d),
                    "doors_closed": sorted(a_d - b_d),
                }
            hosts_out.append(
                {
                    "host": host.identity.label,
                    "host_id": int(host.id),
                    "identity": host.identity.as_dict(),
                    "last_seen": seen,
                    "last_kind": last.kind,
                    "last_run": int(last.id),
                    "runs": int(counts.get(host.id, 0)),
                    "open_doors": int(last.open_doors),
                    "findings": int(last.findings),
                    "by_severity": json.loads(last.by_severity or "{}"),
                    "drift": drift,
                    "stale": now - seen > limit,
                    "silent_for_seconds": round((now - seen).total_seconds()),
                }
            )
        return {
            "generated_at": now,
            "hosts": hosts_out,
            "summary": {
                "hosts": len(hosts_out),
                "stale": sum(1 for h in hosts_out if h["stale"]),
                "with_drift": sum(
                    1
                    for h in hosts_out
                    if h["drift"]
                    and (
                        h["drift"]["findings_new"]
                        or h["drift"]["findings_fixed"]
                        or h["drift"]["doors_opened"]
                        or h["drift"]["doors_closed"]
                    )
                ),
            },
        }

    result: dict[str, Any] = _read(url, work)
    return result
