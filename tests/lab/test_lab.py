"""The lab itself: two hosts talk TCP and UDP over IPv4 and IPv6, and nothing is left behind."""

from __future__ import annotations

import socket
import subprocess

import pytest

from ppsguard.lab.hosts import HostSpec, Lab
from ppsguard.lab.namespaces import clean_leftovers, list_lab_namespaces

pytestmark = pytest.mark.lab


def _exchange(kind: int, family: int, address: str, port: int) -> bytes:
    with socket.socket(family, kind) as sock:
        sock.settimeout(5)
        sock.connect((address, port))
        sock.sendall(b"hello lab")
        return sock.recv(100)


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_two_hosts_exchange_data(lab_factory, protocol, family):
    lab = lab_factory(["client", "server"])
    server = lab["server"]
    server.listen(7000, protocol=protocol)
    address = str(server.ipv4 if family == "ipv4" else server.ipv6)
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    af = socket.AF_INET if family == "ipv4" else socket.AF_INET6
    assert lab["client"].call(_exchange, kind, af, address, 7000) == b"hello lab"


def test_hosts_are_isolated_from_the_root_namespace(lab_factory):
    lab = lab_factory(["a"])
    routes = lab["a"].run(["ip", "-4", "route"]).stdout
    assert "default" not in routes
    assert "198.18.0.0/24" in routes


def test_explicit_addresses(lab_factory):
    lab = lab_factory([HostSpec("fw", ipv4="198.18.0.1"), HostSpec("c1", ipv4="198.18.0.11")])
    assert str(lab["c1"].ipv4) == "198.18.0.11"
    lab["fw"].listen(8000)
    assert lab["c1"].call(_exchange, socket.SOCK_STREAM, socket.AF_INET, "198.18.0.1", 8000)


def test_nftables_ruleset_loads_into_one_host_only(lab_factory):
    lab = lab_factory(["a", "b"])
    lab["a"].nft("table inet labtest {\n chain input { type filter hook input priority 0; }\n}\n")
    assert "labtest" in lab["a"].state()["nftables"]
    assert "labtest" not in lab["b"].state()["nftables"]


def test_nothing_left_behind_when_the_body_raises():
    lab = Lab(["a", "b"])
    names: list[str] = []
    pids: list[int] = []
    with pytest.raises(RuntimeError, match="boom"), lab:
        names = lab.namespaces
        pids = [lab["a"].listen(9000).pid, lab["b"].popen(["sleep", "300"]).pid]
        raise RuntimeError("boom")
    assert names
    assert not set(names) & set(list_lab_namespaces())
    for pid in pids:
        state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True)
        assert state.returncode != 0, f"process {pid} survived the lab"
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "p0@" not in links and "br0" not in links


def test_leftovers_of_a_dead_owner_are_cleaned():
    dead_owner = 999_999_9  # no such pid
    lab = Lab(["a"], owner=dead_owner)
    lab.start()
    try:
        assert any(n.startswith(f"ppsl-{dead_owner}-") for n in list_lab_namespaces())
        removed = clean_leftovers()
        assert set(lab.namespaces) <= set(removed)
        assert not any(n.startswith(f"ppsl-{dead_owner}-") for n in list_lab_namespaces())
    finally:
        lab.stop()
