"""The commands that arrived after the store record into it the same way: `pps flows audit
--store` (both store kinds) and `pps watch --store` (a lab host, SQLite)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ppsguard.store.engine import open_store
from ppsguard.store.read import run_document
from ppsguard.store.schema import findings, runs
from ppsguard.testing.packets import ACK, RST, SYN, ethernet, ipv4, tcp, write_pcap
from ppsguard.testing.watching import watch_sources_open

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"


def _capture(tmp_path: Path) -> Path:
    frames = []
    for client, cport, port, answered in (
        ("198.18.0.11", 40001, 110, True),  # allowed
        ("198.18.0.50", 40002, 110, True),  # an outsider on pop3
        ("198.18.0.12", 40004, 1337, True),  # undocumented
    ):
        frames.append(ethernet(ipv4(tcp(cport, port, SYN, seq=1), client, "198.18.0.1")))
        flags = SYN | ACK if answered else RST | ACK
        frames.append(ethernet(ipv4(tcp(port, cport, flags, seq=9, ack=2), "198.18.0.1", client)))
        if answered:
            frames.append(
                ethernet(ipv4(tcp(cport, port, ACK, seq=2, ack=10), client, "198.18.0.1"))
            )
    path = tmp_path / "building.pcap"
    write_pcap(path, [(100.0 + i * 0.001, f) for i, f in enumerate(frames)])
    return path


def test_flows_audit_records_its_document(store_url: str, run_pps: Any, tmp_path: Path) -> None:
    capture = _capture(tmp_path)
    done = run_pps("flows", "audit", str(SEED), str(capture), "--json", "--store", store_url)
    assert done.returncode == 1, done.stderr  # findings
    printed = json.loads(done.stdout)
    assert "recorded flows-audit run 1" in done.stderr
    kind, stored, _ = run_document(store_url, 1)
    assert (kind, stored) == ("flows-audit", printed)
    with open_store(store_url).connect() as conn:
        types = set(conn.execute(select(findings.c.type)).scalars())
        registry_hash = conn.execute(select(runs.c.registry_hash)).scalar_one()
    assert types == {f["type"] for f in printed["findings"]} and types
    assert registry_hash is not None and len(registry_hash) == 64
    again = run_pps("flows", "audit", str(SEED), str(capture), "--store", store_url)
    assert again.returncode == 1 and "recorded flows-audit run 2" in again.stderr


@pytest.mark.lab
def test_watch_records_its_alerts_when_it_stops(lab_factory: Any, tmp_path: Path) -> None:
    (host,) = lab_factory(["fw"]).hosts.values()
    url = f"sqlite:///{tmp_path / 'watch.db'}"
    registry = tmp_path / "fw.yaml"
    registry.write_text(
        "version: 1\ndefault: deny\nhosts:\n  fw:\n"
        f"    addresses: [{host.ipv4}]\n"
        "    provides:\n      - {id: ssh, port: 22/tcp, from: anywhere, purpose: Admin., "
        "owner: ops}\n"
    )
    argv = ["watch", str(registry), "--host", "fw", "--netns", host.netns, "--duration", "8"]
    watch = subprocess.Popen(
        [sys.executable, "-m", "ppsguard", *argv, "--store", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 15
    while not watch_sources_open(host):
        assert time.monotonic() < deadline and watch.poll() is None
        time.sleep(0.2)
    time.sleep(1.0)  # the listeners' baseline is taken right after, with no outward sign
    host.listen(4444)  # a new listener nobody documents: an alert
    _, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    assert "recorded watch run 1" in err
    kind, document, label = run_document(url, 1)
    assert kind == "watch" and label.endswith(host.netns)
    alerts = [a for a in document["alerts"] if a["kind"] == "unregistered-listener"]
    assert [a["ports"] for a in alerts] == [[4444]]
    with open_store(url).connect() as conn:
        stored = list(conn.execute(select(findings.c.type, findings.c.port)))
    assert ("unregistered-listener", 4444) in stored
