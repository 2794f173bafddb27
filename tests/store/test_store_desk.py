"""The desk's reads (store/desk.py) on SQLite and a real PostgreSQL: one host, its runs, the
newest run of a kind, door rows (the building's raw-cursor path too), and the watch runs
recorded after a given run — what `pps serve` shows."""

from __future__ import annotations

from typing import Any

import pytest

from ppsguard.errors import UsageError
from ppsguard.serve.building import building_data
from ppsguard.store import HostIdentity, desk, record_run

HOST = HostIdentity("d" * 32, "desk1")


def test_desk_reads(store_url: str, make_audit: Any) -> None:
    first = record_run(
        store_url,
        "audit",
        make_audit("2026-12-01T10:00:00+00:00", [("f1", "high", 22)], [22, 80]),
        identity=HOST,
    )
    second = record_run(
        store_url,
        "audit",
        make_audit("2026-12-02T10:00:00+00:00", [], [22, 80, 8080]),
        identity=HOST,
    )
    assert desk.last_run_id(store_url) == second.run_id
    watch = {
        "schema": "ppsguard.watch",
        "version": 1,
        "host": "desk1",
        "observed_at": "2026-12-02T11:00:00+00:00",
        "alerts": [
            {
                "type": "alert",
                "key": "k",
                "kind": "scan",
                "severity": "high",
                "message": "198.18.0.66 is scanning",
                "ports": [22, 23],
            }
        ],
    }
    watched = record_run(store_url, "watch", watch, identity=HOST)
    (host,) = desk.all_hosts(store_url)
    assert desk.host(store_url, host.id).identity == HOST
    with pytest.raises(UsageError):
        desk.host(store_url, host.id + 1000)
    kinds = [(r.id, r.kind) for r in desk.host_runs(store_url, host.id)]
    assert kinds == [(watched.run_id, "watch"), (second.run_id, "audit"), (first.run_id, "audit")]
    newest = desk.newest_run(store_url, host.id, ("scan", "audit"))
    assert newest is not None and newest.id == second.run_id and newest.open_doors == 3
    assert desk.newest_run(store_url, host.id, ("scan",)) is None
    rows = desk.run_doors(store_url, second.run_id)
    assert [(r.protocol, r.port, r.status) for r in rows] == [
        ("tcp", 22, "undocumented"),
        ("tcp", 80, "undocumented"),
        ("tcp", 8080, "undocumented"),
    ]
    assert len(desk.run_doors(store_url, second.run_id, limit=2)) == 2
    assert desk.door_count(store_url, second.run_id) == 3
    raw = sorted(desk.building_rows(store_url, second.run_id))
    assert raw == [
        (22, "tcp", "open", "undocumented", None),
        (80, "tcp", "open", "undocumented", None),
        (8080, "tcp", "open", "undocumented", None),
    ]
    assert building_data("desk1", second.run_id, "audit", raw)["lit"] == 3
    run, document = desk.run_with_document(store_url, first.run_id)
    assert run.kind == "audit" and document["findings"][0]["id"] == "f1"
    after = desk.watch_runs_after(store_url, second.run_id)
    assert [(r, label, d["alerts"][0]["kind"]) for r, label, d in after] == [
        (watched.run_id, "desk1", "scan")
    ]
    assert desk.watch_runs_after(store_url, watched.run_id) == []
