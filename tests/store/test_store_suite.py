"""The store test suite, run against SQLite and a real PostgreSQL (see conftest.py): recording,
dedupe, identities, history, fleet, prune, stats, import, a store that is down, concurrent
writers, a writer SIGKILLed mid-transaction, and a migration from the oldest schema revision."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from ppsguard.errors import RuntimeFailure
from ppsguard.store import HostIdentity, record_run
from ppsguard.store.engine import make_engine, open_store, upgrade
from ppsguard.store.fleet import fleet
from ppsguard.store.read import history, last_audit_keys, prune, run_document, stats
from ppsguard.store.schema import HEAD, doors, findings, hosts, runs

HOST = HostIdentity("m" * 32, "web1")
T0 = dt.datetime(2026, 11, 30, 10, 0, 0)


def at(minutes: int) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat() + "+00:00"


def counts(url: str) -> dict[str, int]:
    with open_store(url).connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (hosts, runs, findings, doors)
        }


def test_record_keeps_document_rows_and_identity(store_url: str, make_audit: Any) -> None:
    doc = make_audit(at(0), [("f1", "high", 1337), ("f2", "low", 23)], [1337, 23, 22])
    done = record_run(store_url, "audit", doc, identity=HOST, registry=None)
    assert done.new
    assert counts(store_url) == {"hosts": 1, "runs": 1, "findings": 2, "doors": 3}
    kind, stored, label = run_document(store_url, done.run_id)
    assert (kind, stored, label) == ("audit", doc, "web1")
    again = record_run(store_url, "audit", doc, identity=HOST)
    assert (again.run_id, again.new) == (done.run_id, False)
    other = record_run(store_url, "audit", doc, identity=HostIdentity("m" * 32, "web1", "lab-a"))
    assert other.new and other.run_id != done.run_id
    assert counts(store_url)["hosts"] == 2
    assert last_audit_keys(store_url, HOST) == {"f1", "f2"}
    assert last_audit_keys(store_url, HostIdentity("x", "never")) is None


def test_registry_hash_and_version_recorded(
    store_url: str, make_audit: Any, tmp_path: Path
) -> None:
    registry = tmp_path / "registry.yaml"
    registry.write_text("version: 1\n")
    record_run(store_url, "audit", make_audit(at(0)), identity=HOST, registry=registry)
    with open_store(store_url).connect() as conn:
        row = conn.execute(select(runs.c.registry_hash, runs.c.version, runs.c.registry)).one()
    import hashlib

    from ppsguard import __version__

    assert row.registry_hash == hashlib.sha256(b"version: 1\n").hexdigest()
    assert (row.version, row.registry) == (__version__, str(registry))


def test_history_opened_closed_and_durations(store_url: str, make_audit: Any) -> None:
    record_run(
        store_url, "audit", make_audit(at(0), [("f1", "high", 1337)], [22, 1337]), identity=HOST
    )
    record_run(
        store_url,
        "audit",
        make_audit(at(10), [("f1", "high", 1337)], [22, 1337, 80]),
        identity=HOST,
    )
    record_run(store_url, "audit", make_audit(at(25), [], [22, 80]), identity=HOST)
    record_run(store_url, "audit", make_audit(at(40), [("f1", "high", 1337)], [22]), identity=HOST)
    (item,) = history(store_url, "web1", None, T0 + dt.timedelta(minutes=50))
    assert item["audits"] == 4
    (f1,) = item["findings"]
    spans = [(i["opened"], i["closed"], i["open_seconds"]) for i in f1["intervals"]]
    assert spans == [
        (T0, T0 + dt.timedelta(minutes=25), 1500),
        (T0 + dt.timedelta(minutes=40), None, 600),
    ]
    assert f1["intervals"][0]["opened_before_first_run"] and f1["open"]
    by_port = {d["port"]: d for d in item["doors"]}
    assert [(i["opened"], i["closed"]) for i in by_port[80]["intervals"]] == [
        (T0 + dt.timedelta(minutes=10), T0 + dt.timedelta(minutes=40))
    ]
    assert by_port[22]["open"] and len(by_port[22]["intervals"]) == 1
    events = [(e["time"], e["event"], e["what"], e.get("port")) for e in item["events"]]
    assert (T0 + dt.timedelta(minutes=25), "closed", "finding", 1337) in events
    assert (T0 + dt.timedelta(minutes=40), "opened", "finding", 1337) in events
    assert (T0 + dt.timedelta(minutes=10), "opened", "door", 80) in events
    since = history(store_url, "web1", T0 + dt.timedelta(minutes=20), T0)[0]
    assert since["audits"] == 2


def test_fleet_drift_and_stale_hosts(store_url: str, make_audit: Any) -> None:
    quiet = HostIdentity("m" * 32, "db1")
    record_run(store_url, "audit", make_audit(at(0), [("a", "high", 1)], [22]), identity=HOST)
    record_run(
        store_url,
        "audit",
        make_audit(at(60), [("b", "critical", 2), ("c", "low", 3)], [22, 443]),
        identity=HOST,
    )
    record_run(store_url, "audit", make_audit(at(0), [], [5432]), identity=quiet)
    record_run(store_url, "sockets", [], identity=HostIdentity("m" * 32, "bare"))
    doc = fleet(store_url, T0 + dt.timedelta(minutes=70), dt.timedelta(minutes=30))
    by_host = {h["host"]: h for h in doc["hosts"]}
    assert set(by_host) == {"web1", "db1", "bare"}
    web = by_host["web1"]
    assert web["runs"] == 2 and web["open_doors"] == 2 and web["findings"] == 2
    assert web["by_severity"]["critical"] == 1 and web["by_severity"]["high"] == 0
    assert web["drift"] == {
        "since": T0,
        "findings_new": 2,
        "findings_fixed": 1,
        "doors_opened": ["443/tcp"],
        "doors_closed": [],
    }
    assert not web["stale"] and by_host["db1"]["stale"] and by_host["db1"]["drift"] is None
    assert by_host["bare"]["last_kind"] == "sockets"
    assert doc["summary"] == {"hosts": 3, "stale": 1, "with_drift": 1}  # bare: recorded now


def test_prune_and_stats(store_url: str, make_audit: Any) -> None:
    old = HostIdentity("m" * 32, "gone")
    record_run(store_url, "audit", make_audit(at(0), [("a", "high", 1)], [22]), identity=old)
    record_run(store_url, "audit", make_audit(at(0), [("a", "high", 1)], [22]), identity=HOST)
    record_run(store_url, "audit", make_audit(at(600), [("a", "high", 1)], [22]), identity=HOST)
    before = stats(store_url)
    assert before["rows"] == {"hosts": 2, "runs": 3, "findings": 3, "doors": 3}
    assert before["runs_by_kind"] == {"audit": 3} and before["revision"] == HEAD
    assert before["size_bytes"] > 0 and before["document_bytes"] > 0
    gone = prune(store_url, T0 + dt.timedelta(minutes=300))
    assert gone == {"runs": 2, "findings": 2, "doors": 2, "hosts": 1}
    assert counts(store_url) == {"hosts": 1, "runs": 1, "findings": 1, "doors": 1}


def test_cli_import_twice_is_one_run_and_diff_of_runs(
    store_url: str, make_audit: Any, run_pps: Any, tmp_path: Path
) -> None:
    first = tmp_path / "a.json"
    first.write_text(json.dumps(make_audit(at(0), [("a", "high", 1)], [22])))
    second = tmp_path / "b.json"
    second.write_text(json.dumps(make_audit(at(5), [("b", "medium", 2)], [22, 80])))
    one = run_pps("store", "import", str(first), "--store", store_url)
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("imported audit run 1 ")
    again = run_pps("store", "import", str(first), "--store", store_url)
    assert again.returncode == 0 and "already recorded" in again.stdout
    run_pps("store", "import", str(second), f"--store={store_url}", "--netns", "lab-x")
    assert counts(store_url)["runs"] == 2
    diff = run_pps("diff", "1", str(second), "--json", "--store", store_url)
    assert diff.returncode == 1, diff.stderr
    body = json.loads(diff.stdout)
    assert [(p["port"], p["change"]) for p in body["ports"]] == [(80, "opened")]
    assert [f["key"] for f in body["findings_new"]] == ["b"]
    assert [f["key"] for f in body["findings_fixed"]] == ["a"]
    same = run_pps("diff", str(first), "1", "--store", store_url)
    assert same.returncode == 0 and "no differences" in same.stdout
    missing = run_pps("diff", "99", "1", "--store", store_url)
    assert missing.returncode == 2 and "no such run" in missing.stderr
    stats_out = run_pps("store", "stats", "--json", "--store", store_url)
    assert json.loads(stats_out.stdout)["rows"]["runs"] == 2
    elsewhere = run_pps(
        "store", "import", str(first), "--hostname", "db7", "--machine-id", "7" * 32,
        "--store", store_url,
    )  # fmt: skip
    assert elsewhere.returncode == 0 and elsewhere.stdout.startswith("imported audit run ")
    # (PostgreSQL ids are not dense: the duplicate import above used up a sequence value)
    assert run_document(store_url, int(elsewhere.stdout.split()[3]))[2] == "db7"
    fleet_out = run_pps("fleet", "--json", "--store", store_url)
    assert {h["host"] for h in json.loads(fleet_out.stdout)["hosts"]} == {
        HostIdentity("", os.uname().nodename).label,
        HostIdentity("", os.uname().nodename, "lab-x").label,
        "db7",
    }


def test_store_down_keeps_output_one_line_exit_3(store_url: str, run_pps: Any) -> None:
    if store_url.startswith("sqlite"):
        down = "sqlite:////proc/ppsguard-no-such-dir/ppsguard.db"
    else:
        down = "postgresql://ppsguard@127.0.0.1:1/nothing"  # nothing listens on port 1
    done = run_pps("sockets", "--json", "--store", down)
    assert done.returncode == 3
    assert isinstance(json.loads(done.stdout), list)  # the result is out, whole
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("pps: error: store ")
    assert "Traceback" not in done.stderr


def test_concurrent_writers_nothing_lost_no_duplicate(store_url: str, make_audit: Any) -> None:
    open_store(store_url)  # schema first, as the first of many hosts would
    script = textwrap.dedent(
        """
        import json, sys
        from ppsguard.store import HostIdentity, record_run
        url, name, doc = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        for _ in range(2):  # the second is the same document: no duplicate
            record_run(url, "audit", doc, identity=HostIdentity("m" * 32, "fleet", name))
        """
    )
    doc = json.dumps(make_audit(at(0), [("a", "high", 1), ("b", "low", 2)], [22, 80]))
    procs = [
        subprocess.Popen([sys.executable, "-c", script, store_url, f"ns{i}", doc]) for i in range(8)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    assert counts(store_url) == {"hosts": 8, "runs": 8, "findings": 16, "doors": 16}


def test_writer_killed_mid_transaction_leaves_store_consistent(
    store_url: str, make_audit: Any, tmp_path: Path
) -> None:
    record_run(store_url, "audit", make_audit(at(0), [("a", "high", 1)], [22]), identity=HOST)
    before = counts(store_url)
    script = textwrap.dedent(
        """
        import json, sys, time
        from ppsguard.store import HostIdentity
        from ppsguard.store.engine import open_store
        from ppsguard.store.write import write_run
        url, doc = sys.argv[1], json.loads(open(sys.argv[2]).read())
        with open_store(url).begin() as conn:
            write_run(conn, "audit", doc, HostIdentity("m" * 32, "victim"))
            print("WRITTEN", flush=True)  # rows inserted, transaction still open
            time.sleep(120)
        """
    )
    big = tmp_path / "big.json"
    big.write_text(
        json.dumps(
            make_audit(at(5), [(f"k{i}", "low", i) for i in range(500)], list(range(1, 2000)))
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, store_url, str(big)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "WRITTEN"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert counts(store_url) == before
    after = record_run(store_url, "audit", make_audit(at(9), [], [22]), identity=HOST)
    assert after.new and counts(store_url)["runs"] == before["runs"] + 1


def test_migration_from_first_revision_keeps_every_row(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO hosts (machine_id, hostname, netns, first_seen, last_seen) "
                "VALUES ('m', 'old', '', :t, :t)"
            ),
            {"t": T0},
        )
        host_id = conn.execute(text("SELECT id FROM hosts")).scalar_one()
        for n, document in enumerate(['{"same":1}', '{"same":1}', '{"other":2}']):
            conn.execute(
                text(
                    "INSERT INTO runs (host_id, kind, observed_at, recorded_at, version, "
                    "findings, open_doors, by_severity, document) VALUES "
                    "(:h, 'audit', :t, :t, '0.0.1', 1, 1, '{}', :d)"
                ),
                {"h": host_id, "t": T0 + dt.timedelta(minutes=n * 0), "d": document},
            )
        run_ids = list(conn.execute(text("SELECT id FROM runs ORDER BY id")).scalars())
        for run_id in run_ids:
            conn.execute(
                text(
                    "INSERT INTO findings (run_id, key, type, severity, title) "
                    "VALUES (:r, 'k', 't', 'high', 'x')"
                ),
                {"r": run_id},
            )
            conn.execute(
                text(
                    "INSERT INTO doors (run_id, address, protocol, port, state) "
                    "VALUES (:r, '*', 'tcp', 22, 'open')"
                ),
                {"r": run_id},
            )
    engine.dispose()
    assert counts(store_url) == {"hosts": 1, "runs": 3, "findings": 3, "doors": 3}
    assert stats(store_url)["revision"] == HEAD
    with open_store(store_url).connect() as conn:
        digests = list(conn.execute(select(runs.c.digest)).scalars())
    assert len(set(digests)) == 3 and all(d and len(d) == 64 for d in digests)


def test_newer_schema_than_known_is_one_clear_error(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(RuntimeFailure, match="newer than this ppsguard knows"):
        open_store(store_url)


def test_reading_a_store_that_does_not_exist_is_one_error(run_pps: Any, tmp_path: Path) -> None:
    missing = tmp_path / "never.db"
    for args, code in (
        (["fleet"], 3),
        (["history"], 3),
        (["store", "stats"], 3),
        (["diff", "1", "2"], 2),
    ):
        done = run_pps(*args, "--store", str(missing))
        assert done.returncode == code
        assert (
            done.stderr.strip()
            == f"pps: error: no store at {missing}: record runs with --store first"
        )
    assert not missing.exists()  # reading never creates an empty store
