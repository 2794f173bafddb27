"""`pps scan -sU -sV` against real UDP daemons on unusual ports: silent to discovery's empty
datagram (open|filtered), named by identification's protocol payloads, then reported open."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from identify_daemons import missing_daemons, package_version, start


@pytest.mark.lab
def test_dns_and_snmp_on_unusual_udp_ports_are_named_without_intrusive(
    lab_factory: object, tmp_path: Path
) -> None:
    missing = missing_daemons()
    if missing:
        pytest.skip(f"daemons not installed: {missing} (make test installs them)")
    lab = lab_factory(["srv", "scanner"])  # type: ignore[operator]
    srv, scanner = lab["srv"], lab["scanner"]
    start(srv, "dnsmasq", 5533, tmp_path)
    start(srv, "snmpd", 1161, tmp_path)
    args = [str(srv.ipv4), "-sU", "-p", "5533,1161,7777", "-sV", "--json"]
    done = scanner.run([sys.executable, "-m", "ppsguard", "scan", *args], check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    ports = {p["port"]: p for h in document["hosts"] for p in h["ports"]}
    assert set(ports) == {5533, 1161}, ports  # 7777 stays silent and out of the default view
    summary = document["hosts"][0]["summary"]
    assert summary.get("open") == 2 and summary.get("open|filtered", 0) <= 1, summary
    dns, snmp = ports[5533], ports[1161]
    assert (dns["state"], dns["reason"]) == ("open", "udp-response")
    assert dns["service"]["name"] == "dns" and dns["service"]["product"] == "dnsmasq"
    assert dns["service"]["version"] == package_version("dnsmasq-base")
    assert snmp["state"] == "open" and snmp["service"]["name"] == "snmp"
    assert snmp["service"]["product"] == "Net-SNMP"
    assert "SNMPv3 engine" in snmp["service"]["extra"]  # no community was tried
    assert "public" not in json.dumps(snmp["service"]["evidence"])

    # with --intrusive the agent is asked sysDescr (community "public"), and says it once
    done = scanner.run(
        [sys.executable, "-m", "ppsguard", "scan", *args, "--intrusive"], check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    snmp = next(p for h in document["hosts"] for p in h["ports"] if p["port"] == 1161)
    extra = snmp["service"]["extra"]
    assert extra.startswith("sysDescr: Linux") and extra.count("Linux") == 1, extra
