"""`pps scan -sV` and `pps scan --nmap` end to end, against real Debian daemons in the lab.

The command runs as a subprocess inside the scanner host; the JSON it prints must name the
service, product and the version the installed package reports.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from identify_daemons import EXECUTABLES, start

from ppsguard.lab.hosts import Host
from ppsguard.report.scan_document import load_scan, scan_document

pytestmark = pytest.mark.lab


def _need(*daemons: str) -> None:
    missing = [d for d in daemons if shutil.which(EXECUTABLES[d]) is None]
    if missing:
        pytest.skip(f"Debian daemons not installed: {missing} (make test installs them)")


def _pps(host: Host, *args: str) -> dict[str, Any]:
    done = host.run(
        [sys.executable, "-m", "ppsguard", "scan", "--json", *args], timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc: dict[str, Any] = json.loads(done.stdout)
    assert scan_document(load_scan(doc)) == doc  # valid under its schema, and it reads back
    return doc


def test_connect_service_scan_names_product_and_version(lab_factory: Any, tmp_path: Path) -> None:
    _need("redis", "nginx")
    lab = lab_factory(["srv", "scanner"])
    srv, scanner = lab["srv"], lab["scanner"]
    [redis] = start(srv, "redis", 6380, tmp_path)  # an unusual port for redis
    [nginx] = start(srv, "nginx", 80, tmp_path)
    doc = _pps(scanner, "--connect", "-sV", "-T4", "-p", "80,6380,6390", str(srv.ipv4))
    [host] = doc["hosts"]
    assert host["address"] == str(srv.ipv4) and host["state"] == "up"
    by_port = {p["port"]: p for p in host["ports"]}
    assert sorted(by_port) == [80, 6380]  # 6390: closed, counted not listed
    assert host["summary"] == {"open": 2, "closed": 1}
    for expected in (redis, nginx):
        port = by_port[expected.port]
        assert port["state"] == "open" and port["protocol"] == "tcp"
        service = port["service"]
        assert service["name"] == expected.service
        assert service["product"] == expected.product
        assert service["version"] == expected.version
        assert service["confidence"] in ("confirmed", "matched")
        assert service["evidence"] is not None


def test_nmap_all_ports_with_service_detection(lab_factory: Any, tmp_path: Path) -> None:
    _need("redis")
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed (make test installs it)")
    lab = lab_factory(["srv", "scanner"])
    srv, scanner = lab["srv"], lab["scanner"]
    [redis] = start(srv, "redis", 6380, tmp_path)
    doc = _pps(scanner, "--nmap", "-p-", str(srv.ipv4))
    [host] = doc["hosts"]
    assert [p["port"] for p in host["ports"]] == [6380]
    assert host["summary"].get("closed") == 65534
    service = host["ports"][0]["service"]
    assert service["name"] == "redis"
    assert service["product"] == redis.product  # nmap 7.93 reports no version for redis 7
