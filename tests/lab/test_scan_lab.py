"""`pps scan` against real lab hosts: state truth per engine and family, guards, outputs."""

from __future__ import annotations

import asyncio
import ipaddress
import select
import subprocess
import sys
from pathlib import Path

import pytest

from ppsguard.lab.hosts import Host
from ppsguard.model.scan import HostState, PortState, ScanResult
from ppsguard.scan import ScanOptions, scan

pytestmark = pytest.mark.lab

TCP_RULES = """
table inet scantest {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport { 80, 8080 } accept
    tcp dport 1000-1010 reject with tcp reset
    tcp dport 3000-3010 reject with icmpx type admin-prohibited
    tcp dport 1-65535 drop
    udp dport 7100-7105 drop
    udp dport 7200-7205 reject with icmpx type admin-prohibited
  }
}
"""
TCP_PORTS = "22,80,1000-1010,3000-3010,5000-5050,8080"
UDP_PORTS = "53,161,7000-7005,7100-7105,7200-7205"


def tcp_truth(port: int) -> PortState:
    if port in (80, 8080):
        return PortState.OPEN
    if 1000 <= port <= 1010:
        return PortState.CLOSED
    return PortState.FILTERED


def udp_truth(port: int) -> PortState:
    if port in (53, 161):
        return PortState.OPEN
    if 7000 <= port <= 7005:
        return PortState.CLOSED
    if 7100 <= port <= 7105:
        return PortState.OPEN_FILTERED
    return PortState.FILTERED


def run_scan(host: Host, targets: list[str], ports: str, **options: object) -> ScanResult:
    opts = ScanOptions(timing=4, all_states=True, **options)  # type: ignore[arg-type]
    return host.call(lambda: asyncio.run(scan(targets, ports, options=opts)), timeout=300)


def _target(lab_factory, udp: bool = False):  # type: ignore[no-untyped-def]
    lab = lab_factory(["scanner", "target"])
    target = lab["target"]
    target.listen(80)
    target.listen(8080)
    target.nft(TCP_RULES)
    if udp:
        # the state mapping is under test, not the target's ICMP rate limiter
        target.run(["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"])
        responders = target.popen(
            [sys.executable, "-m", "ppsguard.lab.responders", "--dns", "53", "--snmp", "161"],
            stdout=subprocess.PIPE,
        )
        assert responders.stdout is not None
        ready, _, _ = select.select([responders.stdout], [], [], 20)  # READY once bound
        assert ready and responders.stdout.readline().startswith("READY")
    return lab


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("engine", ["connect", "syn"])
def test_tcp_state_truth(lab_factory, engine: str, family: str) -> None:  # type: ignore[no-untyped-def]
    lab = _target(lab_factory)
    address = getattr(lab["target"], family)
    result = run_scan(lab["scanner"], [str(address)], TCP_PORTS, engine=engine)
    (host,) = result.hosts
    assert host.state is HostState.UP
    got = {p.port: p.state for p in host.ports}
    want = {p: tcp_truth(p) for p in got}
    assert got == want
    assert len(got) == 1 + 1 + 11 + 11 + 51 + 1
    reasons = {p.port: str(p.reason) for p in host.ports}
    assert reasons[80] == "syn-ack"
    assert {reasons[p] for p in range(1000, 1011)} <= {"reset", "conn-refused"}
    assert {reasons[p] for p in range(5000, 5051)} == {"no-response"}
    # ICMP errors are rate-limited by the target: a rejected port may also end as no-response
    assert {reasons[p] for p in range(3000, 3011)} <= {
        "admin-prohibited",
        "host-unreach",
        "no-response",
    }
    assert result.stats.probes_sent >= len(got)


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_udp_state_truth(lab_factory, family: str) -> None:  # type: ignore[no-untyped-def]
    lab = _target(lab_factory, udp=True)
    address = getattr(lab["target"], family)
    result = run_scan(lab["scanner"], [str(address)], UDP_PORTS, engine="udp", max_retries=2)
    (host,) = result.hosts
    got = {p.port: p.state for p in host.ports}
    assert got == {p: udp_truth(p) for p in got}
    assert len(got) == 2 + 6 + 6 + 6


@pytest.mark.parametrize("engine", ["connect", "syn"])
def test_host_accepting_every_port_is_flagged(lab_factory, engine: str) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(["scanner", "target"])
    target = lab["target"]
    target.listen(9999)
    target.nft(
        "table inet acceptall {\n chain pre {\n"
        " type nat hook prerouting priority -100; policy accept;\n"
        " tcp dport 1-65535 redirect to :9999\n }\n}\n"
    )
    opts = ScanOptions(engine=engine, timing=4)
    result = lab["scanner"].call(
        lambda: asyncio.run(scan([str(target.ipv4)], "1-2000", options=opts))
    )
    (host,) = result.hosts
    assert "implausible-open-share" in host.flags
    assert host.summary["open"] > 1000
    assert not [p for p in host.ports if p.state is PortState.OPEN]


@pytest.mark.parametrize("engine", ["connect", "syn"])
def test_dead_host_is_down_without_scanning_every_port(lab_factory, engine: str) -> None:  # type: ignore[no-untyped-def]
    lab = lab_factory(["scanner", "target"])
    dead = lab.unused_ipv4()
    result = run_scan(
        lab["scanner"], [str(dead), str(lab["target"].ipv4)], "1-65535", engine=engine
    )
    by_addr = {h.address: h for h in result.hosts}
    assert by_addr[dead].state is HostState.DOWN
    assert by_addr[dead].summary == {}
    assert by_addr[lab["target"].ipv4].state is HostState.UP
    # discovery probes for the dead host only: the live one got 65,535 plus confirmations
    assert result.stats.probes_sent < 2 * 65535 + 100


def _cli(host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    return host.run([sys.executable, "-m", "ppsguard", "scan", *args], check=False, timeout=300)


def test_ndiff_accepts_xml_and_sees_a_change(lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab = _target(lab_factory)
    scanner, target = lab["scanner"], lab["target"]
    a, b, c = (tmp_path / n for n in ("a.xml", "b.xml", "c.xml"))
    for out in (a, b):
        done = _cli(scanner, "--connect", "-T4", "-p", TCP_PORTS, "-oX", str(out), str(target.ipv4))
        assert done.returncode == 0, done.stderr
    same = subprocess.run(["ndiff", str(a), str(b)], capture_output=True, text=True, timeout=60)
    assert same.returncode == 0, same.stdout + same.stderr
    target.listen(1005)
    target.nft(
        "delete table inet scantest\n" + TCP_RULES.replace("{ 80, 8080 }", "{ 80, 1005, 8080 }")
    )
    done = _cli(
        scanner,
        "--connect",
        "-T4",
        "-p",
        TCP_PORTS,
        "-oX",
        str(c),
        "-oG",
        str(tmp_path / "c.gnmap"),
        str(target.ipv4),
    )
    assert done.returncode == 0, done.stderr
    diff = subprocess.run(["ndiff", str(a), str(c)], capture_output=True, text=True, timeout=60)
    assert diff.returncode == 1, diff.stdout + diff.stderr
    assert "1005/tcp" in diff.stdout
    grepable = (tmp_path / "c.gnmap").read_text()
    assert f"Host: {target.ipv4} ()\tPorts: 80/open/tcp//" in grepable
    assert "1005/open/tcp//" in grepable


def test_cli_json_and_unresolvable_target(lab_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    lab = _target(lab_factory)
    done = _cli(
        lab["scanner"],
        "--connect",
        "-T4",
        "--json",
        "-oX",
        str(tmp_path / "scan.xml"),
        "-oG",
        str(tmp_path / "scan.gnmap"),
        "-p",
        "80,1000,5000",
        str(lab["target"].ipv4),
        "no-such-host.invalid",
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    hosts = {h["hostname"] or h["address"]: h for h in doc["hosts"]}
    live = hosts[str(lab["target"].ipv4)]
    assert [p["port"] for p in live["ports"]] == [80]
    assert live["summary"] == {"open": 1, "closed": 1, "filtered": 1}
    failed = hosts["no-such-host.invalid"]
    assert failed["error"] and failed["address"] is None and failed["state"] == "unknown"
    xml = (tmp_path / "scan.xml").read_text("utf-8")
    assert "0.0.0.0" not in xml and "no-such-host.invalid" in xml  # an XML comment, no <host>
    assert xml.count("<host ") == 1
    grepable = (tmp_path / "scan.gnmap").read_text("utf-8")
    assert "0.0.0.0" not in grepable and "# ppsguard: no-such-host.invalid: " in grepable
    assert set(doc["stats"]) >= {"started", "elapsed_s", "probes_sent", "retransmissions", "seed"}
    assert ipaddress.ip_address(live["address"]) == lab["target"].ipv4
