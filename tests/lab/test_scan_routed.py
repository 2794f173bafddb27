"""Discovery behind a router: targets the scanner reaches through a gateway are asked with ICMP
echo/timestamp, TCP SYN and TCP ACK (as nmap does), not ARP; the verdicts agree with nmap's."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from ppsguard.lab.hosts import Host, HostSpec, Lab

pytestmark = pytest.mark.lab

FAR4 = "198.19.50.{}"
FAR6 = "2001:db8:50::{}"
# drops ping and SYNs but lets a bare ACK through (a stateless filter): only -PA sees it
NO_PING_NO_SYN = """table inet f {
 chain input {
  type filter hook input priority 0; policy accept;
  icmp type { echo-request, timestamp-request } drop
  icmpv6 type echo-request drop
  tcp flags & (syn | ack) == syn drop
 }
}
"""
DROP_ALL = """table inet wall {
 chain input {
  type filter hook input priority 0; policy drop;
  icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
 }
}
"""


def _routed_lab(lab_factory: Any) -> Lab:
    lab: Lab = lab_factory(
        [
            HostSpec("scanner", "198.18.16.1", "2001:db8:16::1"),
            HostSpec("router", "198.18.16.254", "2001:db8:16::fe"),
            HostSpec("open", "198.18.16.5", "2001:db8:16::5"),
            HostSpec("stateless", "198.18.16.6", "2001:db8:16::6"),
            HostSpec("wall", "198.18.16.7", "2001:db8:16::7"),
        ],
        subnet4="198.18.16.0/24",
        subnet6="2001:db8:16::/64",
    )
    router = lab["router"]
    router.run(
        [
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.conf.all.send_redirects=0",
            "net.ipv4.conf.eth0.send_redirects=0",
        ]
    )
    router.run(["ip", "route", "add", FAR4.format("0/24"), "dev", "eth0"])
    router.run(["ip", "-6", "route", "add", FAR6.format("/64"), "dev", "eth0"])
    scanner = lab["scanner"]
    scanner.run(["ip", "route", "add", FAR4.format("0/24"), "via", "198.18.16.254"])
    scanner.run(["ip", "-6", "route", "add", FAR6.format("/64"), "via", "2001:db8:16::fe"])
    for name, number in (("open", 5), ("stateless", 6), ("wall", 7)):
        host = lab[name]
        host.add_address(FAR4.format(f"{number}/24"))
        host.add_address(FAR6.format(f"{number}/64"))
    lab["open"].listen(22)
    lab["stateless"].nft(NO_PING_NO_SYN)
    lab["wall"].nft(DROP_ALL)
    # fresh namespaces: wait until the routed path carries traffic both ways (IPv6 link-local
    # addresses finish duplicate address detection about a second after the links come up)
    for target in (FAR4.format(5), FAR6.format(5)):
        for _ in range(20):
            probe = f"import socket; socket.create_connection(({target!r}, 22), 1).close()"
            if scanner.run([sys.executable, "-c", probe], check=False).returncode == 0:
                break
        else:
            pytest.fail(f"the routed lab never carried a connection to {target}")
    return lab


def _pps(host: Host, *args: str) -> dict[str, Any]:
    done = host.run([sys.executable, "-m", "ppsguard", "scan", "--json", "-T4", *args], timeout=300)
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _nmap_up(host: Host, *args: str) -> set[str]:
    done = host.run(["nmap", "-n", "-T4", "-oX", "-", *args], timeout=300)
    up: set[str] = set()
    for node in ET.fromstring(done.stdout).iter("host"):
        status = node.find("status")
        if status is not None and status.get("state") == "up":
            up.update(a.get("addr", "") for a in node.iter("address") if a.get("addrtype") != "mac")
    return up


def test_discovery_through_a_router_uses_icmp_syn_and_ack_like_nmap(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = _routed_lab(lab_factory)
    scanner = lab["scanner"]
    doc = _pps(scanner, "-p", "22", FAR4.format("0/29"))
    verdicts = {h["address"]: (h["state"], h["reason"]) for h in doc["hosts"]}
    assert verdicts[FAR4.format(5)] == ("up", "echo-reply")
    assert verdicts[FAR4.format(6)] == ("up", "reset")  # only the ACK probe got an answer
    assert verdicts[FAR4.format(7)] == ("down", "no-response")
    assert verdicts[FAR4.format(0)] == ("down", "no-response")  # not attached: probed, silent
    ports = {h["address"]: [p["port"] for p in h["ports"]] for h in doc["hosts"]}
    assert ports[FAR4.format(5)] == [22]
    up = {a for a, (state, _reason) in verdicts.items() if state == "up"}
    assert up == _nmap_up(scanner, "-sn", FAR4.format("0/29"))


def test_ipv6_through_a_router_and_unprivileged_style_probes(lab_factory) -> None:  # type: ignore[no-untyped-def]
    lab = _routed_lab(lab_factory)
    scanner = lab["scanner"]
    targets = [FAR6.format(n) for n in (5, 6, 7, 9)]
    doc = _pps(scanner, "-sn", *targets)
    up = {h["address"]: h["reason"] for h in doc["hosts"] if h["state"] == "up"}
    assert up == {FAR6.format(5): "echo-reply", FAR6.format(6): "reset"}
    assert set(up) == _nmap_up(scanner, "-6", "-sn", *targets)
    # TCP only: the open host answers the SYN to 443 with a reset (closed port, host up)
    doc = _pps(scanner, "-sn", "--discovery", "tcp", FAR4.format(5), FAR4.format(7))
    reasons = {h["address"]: (h["state"], h["reason"]) for h in doc["hosts"]}
    assert reasons == {FAR4.format(5): ("up", "reset"), FAR4.format(7): ("down", "no-response")}
