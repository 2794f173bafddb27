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

from sqlalchemy import Connection, func, select

from ppsguard.store.read import _host_rows, _read
from ppsguard.store.schema import doors, findings, runs

MIN_STALE = dt.timedelta(hours=1)
ONE_RUN_STALE = dt.timedelta(days=1)


def _last_two(conn: Connection) -> dict[int, list[Any]]:
    """host id -> its last two runs (newest first), from the audits when it has any."""
    rank = (
        func.row_number()
        .over(
            partition_by=runs.c.host_id,
            order_by=(runs.c.observed_at.desc(), runs.c.id.desc()),
        )
        .label("rank")
    )
    # audits first: a host with audits is judged by them, others by their last runs of any kind
    audit_first = select(
        runs.c.id,
        runs.c.host_id,
        runs.c.kind,
        runs.c.observed_at,
        runs.c.findings,
        runs.c.open_doors,
        runs.c.by_severity,
        rank,
    ).where(runs.c.kind == "audit")
    ranked = audit_first.subquery()
    out: dict[int, list[Any]] = defaultdict(list)
    for row in conn.execute(select(ranked).where(ranked.c.rank <= 2)):
        out[row.host_id].append(row)
    missing = [h for (h,) in conn.execute(select(runs.c.host_id).distinct()) if h not in out]
    if missing:
        rank_all = (
            func.row_number()
            .over(
                partition_by=runs.c.host_id,
                order_by=(runs.c.observed_at.desc(), runs.c.id.desc()),
            )
            .label("rank")
        )
        everything = (
            select(
                runs.c.id,
                runs.c.host_id,
                runs.c.kind,
                runs.c.observed_at,
                runs.c.findings,
                runs.c.open_doors,
                runs.c.by_severity,
                rank_all,
            )
            .where(runs.c.host_id.in_(missing))
            .subquery()
        )
        for row in conn.execute(select(everything).where(everything.c.rank <= 2)):
            out[row.host_id].append(row)
    for rows in out.values():
        rows.sort(key=lambda r: (r.observed_at, r.id), reverse=True)
    return out


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
        door_keys: dict[int, set[tuple[str, int]]] = defaultdict(set)
        for chunk in range(0, len(wanted), 5000):
            ids = wanted[chunk : chunk + 5000]
            for run_id, key in conn.execute(
                select(findings.c.run_id, findings.c.key).where(findings.c.run_id.in_(ids))
            ):
                keys[run_id].add(key)
            for run_id, protocol, port in conn.execute(
                select(doors.c.run_id, doors.c.protocol, doors.c.port).where(
                    doors.c.run_id.in_(ids), doors.c.state == "open"
                )
            ):
                door_keys[run_id].add((protocol, port))
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
                    "doors_opened": sorted(f"{p}/{n}" for n, p in b_d - a_d),
                    "doors_closed": sorted(f"{p}/{n}" for n, p in a_d - b_d),
                }
            hosts_out.append(
                {
                    "host": host.identity.label,
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
