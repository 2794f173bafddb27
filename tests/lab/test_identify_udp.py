"""`pps scan -sU -sV` against real UDP daemons on unusual ports: silent to discovery's empty
datagram (open|filtered), named by identification's protocol payloads, then reported open."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from identify_daemons import package_version, require_daemons, start


@pytest.mark.lab
def test_dns_and_snmp_on_unusual_udp_ports_are_named_without_intrusive(
    lab_factory: object, tmp_path: Path
) -> None:
    require_daemons()
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


@pytest.mark.lab
def test_the_udp_scans_own_answers_are_reused_by_identification(
    lab_factory: object, tmp_path: Path
) -> None:
    require_daemons()
    lab = lab_factory(["srv", "scanner"])  # type: ignore[operator]
    srv, scanner = lab["srv"], lab["scanner"]
    start(srv, "dnsmasq", 53, tmp_path)
    start(srv, "snmpd", 161, tmp_path)
    args = [str(srv.ipv4), "-sU", "-p", "53,161", "-sV", "--json"]
    done = scanner.run([sys.executable, "-m", "ppsguard", "scan", *args], check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    ports = {p["port"]: p for h in json.loads(done.stdout)["hosts"] for p in h["ports"]}
    snmp, dns = ports[161]["service"], ports[53]["service"]
    # the scan's SNMPv3 discovery answer already names the agent: identification reuses it
    assert (snmp["name"], snmp["product"]) == ("snmp", "Net-SNMP")
    assert snmp["evidence"]["probe"].startswith("udp-scan/snmpv3-discovery"), snmp["evidence"]
    # the scan's DNS answer names DNS but not the server: version.bind is asked next
    assert (dns["name"], dns["product"]) == ("dns", "dnsmasq")
    assert dns["version"] == package_version("dnsmasq-base")
    assert dns["evidence"]["probe"].startswith("dns-version-udp"), dns["evidence"]


def _send(address: str, port: int, payload: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(payload, (address, port))


_RECORDER = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((sys.argv[1], int(sys.argv[2])))
print("READY", flush=True)
with open(sys.argv[3], "a") as log:
    while True:
        log.write(sock.recv(65535).hex() + "\\n")
        log.flush()
"""


@pytest.mark.lab
def test_the_intrusive_gate_holds_in_the_udp_scan_and_in_identification(
    lab_factory: object, tmp_path: Path
) -> None:
    """A silent recorder on 161/udp logs every datagram: community "public" reaches it only
    with --intrusive, whether from the port scan or from -sV."""
    lab = lab_factory(["srv", "scanner"])  # type: ignore[operator]
    srv, scanner = lab["srv"], lab["scanner"]
    log = tmp_path / "datagrams.log"
    recorder = srv.popen(
        [sys.executable, "-c", _RECORDER, str(srv.ipv4), "161", str(log)],
        stdout=subprocess.PIPE,
    )
    assert recorder.stdout is not None and recorder.stdout.readline().startswith("READY")

    def lines() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    def scan(*extra: str) -> list[bytes]:
        before = lines()
        argv = [sys.executable, "-m", "ppsguard", "scan", str(srv.ipv4), "-sU", "-p", "161"]
        done = scanner.run([*argv, *extra, "--json"], check=False, timeout=120)
        assert done.returncode == 0, done.stderr
        # The recorder logs datagrams in the order they reached it, at its own pace: a marker
        # sent after the scan is logged after every datagram of the scan.
        marker = f"end of scan {len(before)}".encode().hex()
        scanner.call(_send, str(srv.ipv4), 161, bytes.fromhex(marker))
        deadline = time.monotonic() + 20
        while marker not in lines() and time.monotonic() < deadline:
            time.sleep(0.1)
        after = lines()
        assert marker in after, "the recorder did not log the marker"
        return [bytes.fromhex(line) for line in after[len(before) : after.index(marker)]]

    community = b"\x04\x06public"
    for extra in ((), ("-sV",)):
        heard = scan(*extra)
        assert heard, extra  # the scan did reach the port
        assert not any(community in datagram for datagram in heard), (extra, heard)
    assert any(community in datagram for datagram in scan("--intrusive"))
