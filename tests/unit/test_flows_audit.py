"""`pps flows audit` on a capture of the seed building: allowed, unauthorized, undocumented,
denied and scanning traffic each land where the registry says, with a per-entry summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ppsguard.flows.audit import audit_flows, document
from ppsguard.flows.inputs import read_flows
from ppsguard.registry.load import load_registry
from ppsguard.testing.packets import ACK, RST, SYN, ethernet, ipv4, tcp, write_pcap

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
BUILDING = "198.18.0.1"


def connection(client: str, cport: int, port: int, *, answered: bool) -> list[bytes]:
    out = [ethernet(ipv4(tcp(cport, port, SYN, seq=1), client, BUILDING))]
    if answered:
        out += [
            ethernet(ipv4(tcp(port, cport, SYN | ACK, seq=9, ack=2), BUILDING, client)),
            ethernet(ipv4(tcp(cport, port, ACK, seq=2, ack=10), client, BUILDING)),
        ]
    else:
        out.append(ethernet(ipv4(tcp(port, cport, RST | ACK, seq=0, ack=2), BUILDING, client)))
    return out


def capture(tmp_path: Path) -> Path:
    frames: list[bytes] = []
    frames += connection("198.18.0.11", 40001, 110, answered=True)  # IP1 on pop3: allowed
    frames += connection("198.18.0.50", 40002, 110, answered=True)  # outsider on pop3
    frames += connection("198.18.0.12", 40003, 3306, answered=False)  # mysql: denied
    frames += connection("198.18.0.12", 40004, 1337, answered=True)  # nobody documents 1337
    frames += connection("198.18.0.99", 40005, 80, answered=True)  # http: anyone
    for port in range(1000, 1010):  # a scan
        frames += connection("198.18.0.66", 50000 + port, port, answered=False)
    path = tmp_path / "building.pcap"
    write_pcap(path, [(100.0 + i * 0.001, f) for i, f in enumerate(frames)])
    return path


def test_flows_audit_of_the_seed_building(tmp_path: Path) -> None:
    result = audit_flows(load_registry(SEED), read_flows(capture(tmp_path)), "building")
    doc = document(result)
    by_type: dict[str, list[dict[str, object]]] = {}
    for finding in doc["findings"]:  # type: ignore[attr-defined]
        by_type.setdefault(finding["type"], []).append(finding)
    unauthorized = by_type["unauthorized-peer"]
    assert [(f["entry"], f["peers"]) for f in unauthorized] == [("pop3", ["198.18.0.50"])]
    assert [f["message"] for f in by_type["undocumented-service"]] == [
        "198.18.0.1:1337/tcp answered, but no entry provides it"
    ]
    scans = by_type["scan"]
    assert [f["peers"] for f in scans] == [["198.18.0.66"]]
    denied = {f["entry"]: f["count"] for f in by_type["denied-attempts"]}
    assert denied["mysql"] == 1
    entries = {e["entry"]: e for e in doc["entries"]}  # type: ignore[attr-defined]
    assert entries["pop3"]["connections"] == 1 and entries["pop3"]["allowed"] == 1
    assert entries["http"]["allowed"] == 1
    assert doc["flows"] == 15


def test_flows_audit_command_exit_codes(tmp_path: Path) -> None:
    path = capture(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "ppsguard", "flows", "audit", str(SEED), str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["schema"] == "ppsguard.flows-audit"
    human = subprocess.run(
        [sys.executable, "-m", "ppsguard", "flows", "audit", str(SEED), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "unauthorized-peer" in human.stdout and human.stderr == ""
