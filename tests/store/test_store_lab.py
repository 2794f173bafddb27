"""The store with real lab hosts: twenty hosts auditing into one PostgreSQL at once, history of a
port opened and closed (and `--new-only` in between), and `pps diff` against nmap's `ndiff` on
two `pps scan -oX` files of a host whose ports changed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ppsguard.store.engine import open_store
from ppsguard.store.read import run_document
from ppsguard.store.schema import hosts, runs
from ppsguard.testing.postgres import PostgresCluster

pytestmark = pytest.mark.lab
PPS = (sys.executable, "-m", "ppsguard")


def test_twenty_hosts_audit_concurrently_into_one_postgresql(
    lab_factory: Any, pg_cluster: PostgresCluster, run_pps: Any
) -> None:
    lab = lab_factory([f"h{i}" for i in range(20)])
    url = pg_cluster.create_database()
    plain_url = url.replace("postgresql+psycopg://", "postgresql://")
    for i, host in enumerate(lab.hosts.values()):
        host.listen(7000 + i)
    procs = {
        host.netns: subprocess.Popen(
            [*PPS, "audit", "--netns", host.netns, "--no-scan", "--json", "--store", plain_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host in lab.hosts.values()
    }
    printed = {}
    for netns, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode in (0, 1), err
        assert re.search(r"recorded audit run \d+ in ", err), err
        printed[netns] = json.loads(out)
    with open_store(url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(hosts)).scalar_one() == 20
        stored = dict(
            conn.execute(
                select(hosts.c.netns, runs.c.id).join(runs, runs.c.host_id == hosts.c.id)
            ).all()
        )
        assert conn.execute(select(func.count()).select_from(runs)).scalar_one() == 20
    assert set(stored) == set(printed)
    for netns, run_id in stored.items():
        assert run_document(url, run_id)[1] == printed[netns]  # nothing lost, nothing mixed
    fleet = run_pps("fleet", "--json", "--store", plain_url)
    assert fleet.returncode == 0, fleet.stderr
    listed = json.loads(fleet.stdout)
    assert listed["summary"]["hosts"] == 20
    assert {h["identity"]["netns"] for h in listed["hosts"]} == set(printed)
    table = run_pps("fleet", "--store", plain_url)
    assert table.stdout.strip().splitlines()[-1].startswith("20 hosts, 0 stale")


def test_history_of_a_port_opened_then_closed_and_new_only(
    lab_factory: Any, store_url: str, run_pps: Any
) -> None:
    (host,) = lab_factory(["t"]).hosts.values()
    host.listen(8080)

    def audit(*extra: str) -> dict[str, Any]:
        done = run_pps(
            "audit", "--netns", host.netns, "--no-scan", "--json", "--store", store_url, *extra
        )
        assert done.returncode in (0, 1), done.stderr
        return json.loads(done.stdout)

    first = audit()
    assert {f["port"] for f in first["findings"]} >= {8080}
    extra = host.listen(9090)
    second = audit("--new-only")
    assert second["findings"] and {f["port"] for f in second["findings"]} == {9090}
    extra.stop()
    third = audit("--new-only")
    assert third["findings"] == []  # nothing new: 9090 went away, 8080 was there before
    shown = run_pps("history", "--host", host.netns, "--json", "--store", store_url)
    assert shown.returncode == 0, shown.stderr
    (item,) = json.loads(shown.stdout)
    assert item["audits"] == 3
    doors = {(d["protocol"], d["port"]): d for d in item["doors"]}
    (span,) = doors[("tcp", 9090)]["intervals"]
    assert span["opened"] == second["observed_at"]
    assert span["closed"] == third["observed_at"]
    assert doors[("tcp", 8080)]["open"]
    events = [(e["event"], e["what"], e.get("port")) for e in item["events"]]
    assert ("opened", "door", 9090) in events and ("closed", "door", 9090) in events
    assert ("closed", "finding", 9090) in events
    table = run_pps("history", "--host", host.netns, "--store", store_url)
    assert "door 9090/tcp" in table.stdout and "closed" in table.stdout


def _ndiff_ports(text: str) -> set[tuple[int, str]]:
    """Ports ndiff marks changed: its `-PORT/proto` and `+PORT/proto` lines."""
    return {
        (int(m.group(1)), m.group(2))
        for m in re.finditer(r"^[-+](\d+)/(tcp|udp)\s", text, flags=re.MULTILINE)
    }


def test_diff_of_two_scans_agrees_with_ndiff(
    lab_factory: Any, tmp_path: Path, run_pps: Any
) -> None:
    lab = lab_factory(["scanner", "target"])
    scanner, target = lab["scanner"], lab["target"]
    keep, goes = target.listen(80), target.listen(8080)
    target.listen(22)

    def scan(name: str) -> Path:
        out = tmp_path / name
        done = scanner.run(
            [
                *PPS,
                "scan",
                str(target.ipv4),
                "-p",
                "1-100,8000-8100",
                "-sT",
                "-Pn",
                "-oX",
                str(out),
            ],
            check=False,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        return out

    a = scan("a.xml")
    goes.stop()
    target.listen(8081)
    b = scan("b.xml")
    assert keep.pid  # still running
    ndiff = subprocess.run(["ndiff", str(a), str(b)], capture_output=True, text=True, check=False)
    assert ndiff.returncode == 1, ndiff.stderr
    ours = run_pps("diff", str(a), str(b), "--json")
    assert ours.returncode == 1, ours.stderr
    changed = {(p["port"], p["protocol"]) for p in json.loads(ours.stdout)["ports"]}
    assert changed == _ndiff_ports(ndiff.stdout) == {(8080, "tcp"), (8081, "tcp")}
    same_ndiff = subprocess.run(["ndiff", str(a), str(a)], capture_output=True, check=False)
    same_ours = run_pps("diff", str(a), str(a))
    assert same_ndiff.returncode == same_ours.returncode == 0
