"""Subnet sweeps on a real bridge: a dozen lab hosts over a /22 (open ports, no ports, firewalled
to drop all IP but answer ARP/ND); `pps scan` must find exactly the live hosts and their open
ports with both TCP engines and both families, agree with nmap's XML, and never crash on the
subnet's network/broadcast addresses."""

from __future__ import annotations

import ipaddress
import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest

from ppsguard.lab.hosts import Host, HostSpec, Lab
from ppsguard.testing.pytest_plugin import require_lab

pytestmark = pytest.mark.lab

NET4 = ipaddress.IPv4Network("198.18.8.0/22")
NET6 = ipaddress.IPv6Network("2001:db8:8::/64")
SWEEP6 = "2001:db8:8::/118"  # the hosts' IPv6 addresses use the same host numbers
NUMBERS = (3, 5, 77, 130, 255, 256, 300, 511, 700, 800, 1000, 1022)
PORTS = "22,80,443,8080"
DROP_ALL = """table inet wall {
 chain input {
  type filter hook input priority 0; policy drop;
  icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
 }
}
"""


def _v6(number: int) -> ipaddress.IPv6Address:
    return NET6[number]


@pytest.fixture(scope="module")
def sweep_lab() -> Iterator[tuple[Lab, dict[str, set[int]]]]:
    """scanner at .1, twelve hosts; returns the lab and the truth: address -> open ports."""
    require_lab()
    specs = [HostSpec("scanner", str(NET4[1]), str(_v6(1)))]
    specs += [HostSpec(f"h{n}", str(NET4[n]), str(_v6(n))) for n in NUMBERS]
    lab = Lab(specs, subnet4=str(NET4), subnet6=str(NET6)).start()
    truth: dict[str, set[int]] = {str(NET4[1]): set(), str(_v6(1)): set()}
    try:
        for i, number in enumerate(NUMBERS):
            host = lab[f"h{number}"]
            ports: set[int] = set()
            if i % 3 == 0:
                host.listen(22)
                host.listen(80)
                ports = {22, 80}
            elif i % 3 == 1:
                host.nft(DROP_ALL)  # up on the link, silent to every port
            if i == 2:
                host.listen(8080)
                ports = {8080}
            truth[str(NET4[number])] = ports
            truth[str(_v6(number))] = ports
        yield lab, truth
    finally:
        lab.stop()


def pps_json(host: Host, *args: str) -> dict[str, Any]:
    done = host.run(
        [sys.executable, "-m", "ppsguard", "scan", "--json", "-T4", *args], check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def pps_found(doc: dict[str, Any]) -> dict[str, set[int]]:
    return {
        h["address"]: {p["port"] for p in h["ports"] if p["state"] == "open"}
        for h in doc["hosts"]
        if h["state"] == "up"
    }


def nmap_found(host: Host, *args: str) -> dict[str, set[int]]:
    done = host.run(["nmap", "-n", "-T4", "-oX", "-", *args], timeout=300)
    found: dict[str, set[int]] = {}
    for node in ET.fromstring(done.stdout).iter("host"):
        status = node.find("status")
        if status is None or status.get("state") != "up":
            continue
        address = next(
            a.get("addr", "") for a in node.iter("address") if a.get("addrtype") != "mac"
        )
        found[str(ipaddress.ip_address(address))] = {
            int(p.get("portid", "0"))
            for p in node.iter("port")
            if (s := p.find("state")) is not None and s.get("state") == "open"
        }
    return found


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
@pytest.mark.parametrize("engine", ["--syn", "--connect"])
def test_sweep_finds_exactly_the_live_hosts_and_agrees_with_nmap(
    sweep_lab: tuple[Lab, dict[str, set[int]]], engine: str, family: str
) -> None:
    lab, truth = sweep_lab
    scanner = lab["scanner"]
    version = 4 if family == "ipv4" else 6
    want = {a: p for a, p in truth.items() if ipaddress.ip_address(a).version == version}
    net = str(NET4) if version == 4 else SWEEP6
    doc = pps_json(scanner, engine, "-p", PORTS, net)
    assert pps_found(doc) == want
    hosts = doc["hosts"]
    assert len(hosts) == 1024  # JSON keeps every address, with its state and reason
    reasons = {h["address"]: h["reason"] for h in hosts}
    neighbour = "arp-response" if version == 4 else "nd-response"
    assert {reasons[a] for a in want} == {neighbour, "localhost-response"}
    assert {h["reason"] for h in hosts if h["state"] == "down"} == {"no-response"}
    # nmap takes no IPv6 ranges: give it the live addresses plus a few dead ones
    dead6 = [str(_v6(n)) for n in (2, 4, 1023)]
    targets = [net] if version == 4 else [*want, *dead6]
    flag = "-sS" if engine == "--syn" else "-sT"
    extra = ["-6"] if version == 6 else []
    assert nmap_found(scanner, flag, *extra, "-p", PORTS, *targets) == want


def test_network_and_broadcast_addresses_are_not_scanned(
    sweep_lab: tuple[Lab, dict[str, set[int]]],
) -> None:
    lab, _truth = sweep_lab
    edges = [str(NET4.network_address), str(NET4.broadcast_address)]
    for args in (["--syn"], ["--syn", "-Pn"], ["--connect", "-Pn"]):
        doc = pps_json(lab["scanner"], *args, "-p", PORTS, *edges)
        notes = {h["address"]: (h["state"], h["error"]) for h in doc["hosts"]}
        assert notes == {
            edges[0]: ("down", "not scanned: network address"),
            edges[1]: ("down", "not scanned: broadcast address"),
        }
    table = lab["scanner"].run(
        [sys.executable, "-m", "ppsguard", "scan", "-T4", "-p", PORTS, f"{NET4.network_address}/30"]
    )
    assert "4 addresses, 2 up, 1 not scanned" in table.stdout + table.stderr
    assert str(NET4.network_address) + ":" not in table.stdout + table.stderr  # down: not listed


@pytest.mark.parametrize(
    "target", ["198.18.8.2/31", "198.18.8.4/31", "198.18.8.5/32", "198.18.8.6/32"]
)
def test_small_prefixes_behave_like_nmap(
    sweep_lab: tuple[Lab, dict[str, set[int]]], target: str
) -> None:
    lab, _truth = sweep_lab
    scanner = lab["scanner"]
    doc = pps_json(scanner, "-p", PORTS, target)
    assert len(doc["hosts"]) == ipaddress.ip_network(target).num_addresses
    assert pps_found(doc) == nmap_found(scanner, "-sS", "-p", PORTS, target)


def test_all_hosts_lists_down_hosts_and_discovery_methods_can_be_chosen(
    sweep_lab: tuple[Lab, dict[str, set[int]]],
) -> None:
    lab, truth = sweep_lab
    scanner = lab["scanner"]
    done = scanner.run(
        [sys.executable, "-m", "ppsguard", "scan", "-sn", "--all-hosts", "198.18.8.0/29"]
    )
    text = done.stdout + done.stderr
    assert "198.18.8.2: host down (no-response)" in text
    assert "198.18.8.3 (arp-response)" in text
    # ICMP/TCP probes on the link: the firewalled host (.5) cannot be seen without ARP
    doc = pps_json(scanner, "-sn", "--discovery", "icmp,tcp", "198.18.8.0/25")
    up = set(pps_found(doc))
    assert up == {str(NET4[n]) for n in (1, 3, 77)}
    assert {h["reason"] for h in doc["hosts"] if h["address"] in up} <= {
        "localhost-response",
        "echo-reply",
        "timestamp-reply",
    }
    assert truth[str(NET4[5])] == set()
    bad = scanner.run(
        [sys.executable, "-m", "ppsguard", "scan", "--discovery", "carrier-pigeon", "198.18.8.3"],
        check=False,
    )
    assert bad.returncode == 2 and "carrier-pigeon" in bad.stderr


class _Phases:
    """Records what a progress bar would show: phases, and (done, total) per phase."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, list[tuple[int, int]]]] = []

    def on_phase(self, name: str) -> None:
        self.seen.append((name, []))

    def on_start(self, total_probes: int, seed: int) -> None:
        return None

    def on_progress(self, done: int, total: int) -> None:
        self.seen[-1][1].append((done, total))

    def on_port(self, address: object, result: object) -> None:
        return None

    def on_host(self, host: object) -> None:
        return None


def test_a_slash_16_sweep_reports_phases_and_honours_its_deadline(lab_factory) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import resource

    from ppsguard.scan import ScanOptions, scan

    lab = lab_factory(
        [HostSpec("scanner", "198.19.0.1"), HostSpec("far", "198.19.200.9")],
        subnet4="198.19.0.0/16",
        subnet6="2001:db8:19::/64",
    )
    lab["far"].listen(22)
    phases = _Phases()

    def sweep() -> tuple[object, int]:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        opts = ScanOptions(timing=4)
        result = asyncio.run(scan(["198.19.0.0/16"], "22", options=opts, observer=phases))
        return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before

    result, grown_kib = lab["scanner"].call(sweep)
    assert grown_kib < 300_000  # bounded: 65,536 addresses, not per-port state for each
    up = {str(h.address): [p.port for p in h.ports] for h in result.hosts if h.state == "up"}  # type: ignore[attr-defined]
    assert up == {"198.19.0.1": [], "198.19.200.9": [22]}
    assert len(result.hosts) == 65536  # type: ignore[attr-defined]
    assert [name for name, _points in phases.seen] == ["discovery", "ports"]
    for _name, points in phases.seen:
        dones = [done for done, _total in points]
        assert dones == sorted(dones) and points[-1][0] == points[-1][1]  # monotone, ends full
    # the same sweep with a 1 s deadline stops early and says which hosts stayed undecided
    done = lab["scanner"].run(
        [
            sys.executable,
            "-m",
            "ppsguard",
            "scan",
            "-T4",
            "-p",
            "22",
            "--deadline",
            "1",
            "198.19.0.0/16",
        ],
        timeout=120,
    )
    text = done.stdout + done.stderr
    assert "65536 addresses" in text and "undecided (--deadline)" in text
    assert "Traceback" not in text


def test_unprivileged_sweep_reads_the_kernels_neighbour_table(
    sweep_lab: tuple[Lab, dict[str, set[int]]],
) -> None:
    """Without root (no raw sockets) the kernel resolves the link: firewalled hosts are found."""
    lab, truth = sweep_lab
    scanner = lab["scanner"]
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = scanner.run([*nobody, sys.executable, "-c", "import ppsguard"], check=False)
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot import ppsguard from this checkout: {probe.stderr[-200:]}")
    for net, version in ((str(NET4), 4), ("2001:db8:8::/120", 6)):
        done = scanner.run(
            [*nobody, sys.executable, "-m", "ppsguard", "scan", "--json", "-T4", "-p", PORTS, net],
            timeout=300,
        )
        doc = json.loads(done.stdout)
        assert doc["stats"]["engine"] == "connect"
        members = ipaddress.ip_network(net)
        want = {a: p for a, p in truth.items() if ipaddress.ip_address(a) in members}
        assert pps_found(doc) == want
        neighbour = "arp-response" if version == 4 else "nd-response"
        reasons = {h["reason"] for h in doc["hosts"] if h["state"] == "up"}
        assert reasons == {neighbour, "localhost-response"}


@pytest.mark.parametrize("engine", ["syn", "connect"])
def test_engines_given_a_broadcast_address_report_it_instead_of_crashing(
    sweep_lab: tuple[Lab, dict[str, set[int]]], engine: str
) -> None:
    """Below discovery: the kernel refuses sends to a broadcast address (EACCES); each probe
    gets a result and the run goes on to the next address."""
    from ppsguard.model.scan import PortState
    from ppsguard.scan.engines.base import EngineConfig, EngineStats

    lab, truth = sweep_lab
    broadcast, live = NET4.broadcast_address, NET4[NUMBERS[0]]
    seen: dict[tuple[str, int], PortState] = {}

    def run() -> None:
        from importlib import import_module

        module = import_module(f"ppsguard.scan.engines.{engine}")
        probes = [(broadcast, 22), (broadcast, 80), (live, 22)]
        config = EngineConfig(max_retries=1)
        module.run(probes, config, lambda a, p, s, r, t: seen.__setitem__((str(a), p), s),
                   EngineStats())  # fmt: skip

    lab["scanner"].call(run)
    assert seen[(str(live), 22)] is PortState.OPEN and 22 in truth[str(live)]
    assert seen[(str(broadcast), 22)] is PortState.FILTERED
    assert seen[(str(broadcast), 80)] is PortState.FILTERED
