"""Per namespace, the inventory's (protocol, local, remote, state) set equals `ss -tuan`."""

from __future__ import annotations

import socket

import pytest

from ppsguard.inventory import collect
from ppsguard.lab.hosts import Host
from ppsguard.testing.pytest_plugin import LabFactory

pytestmark = pytest.mark.lab

SS_STATES = {
    ("tcp", "LISTEN"): "LISTEN",
    ("tcp", "ESTAB"): "ESTABLISHED",
    ("tcp", "SYN-SENT"): "SYN_SENT",
    ("tcp", "SYN-RECV"): "SYN_RECV",
    ("tcp", "FIN-WAIT-1"): "FIN_WAIT1",
    ("tcp", "FIN-WAIT-2"): "FIN_WAIT2",
    ("tcp", "TIME-WAIT"): "TIME_WAIT",
    ("tcp", "UNCONN"): "CLOSE",
    ("tcp", "CLOSE-WAIT"): "CLOSE_WAIT",
    ("tcp", "LAST-ACK"): "LAST_ACK",
    ("tcp", "CLOSING"): "CLOSING",
    ("udp", "UNCONN"): "BOUND",
    ("udp", "ESTAB"): "CONNECTED",
}

Key = tuple[str, str, int, str, int, str]


def _endpoint(text: str) -> tuple[str, int]:
    address, _, port = text.rpartition(":")
    address = address.split("%", 1)[0].strip("[]")
    if address == "*":
        address = "::"  # ss prints a dual-stack `::` as `*`
    return address, 0 if port == "*" else int(port)


def parse_ss(text: str) -> set[Key]:
    """`ss -tuanH` lines -> (protocol, local, local port, remote, remote port, state)."""
    rows: set[Key] = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        netid, state, local, peer = fields[0], fields[1], fields[4], fields[5]
        local_address, local_port = _endpoint(local)
        remote_address, remote_port = _endpoint(peer)
        rows.add(
            (netid, local_address, local_port, remote_address, remote_port, SS_STATES[netid, state])
        )
    return rows


def ours(host: Host, source: str = "netlink") -> set[Key]:
    inventory = collect(
        netns=host.netns,
        listening=True,
        active=True,
        owners=False,
        source=source,  # type: ignore[arg-type]
    )
    assert inventory.source == source
    return {r.key for r in inventory.records}


def test_parse_ss_sample() -> None:
    sample = (
        "tcp LISTEN 0 128 *:7401 *:*\n"
        "tcp TIME-WAIT 0 0 [::ffff:198.18.0.1]:7401 [::ffff:198.18.0.2]:41000\n"
        "udp UNCONN 0 0 0.0.0.0%lo:53 0.0.0.0:*\n"
    )
    assert parse_ss(sample) == {
        ("tcp", "::", 7401, "::", 0, "LISTEN"),
        ("tcp", "::ffff:198.18.0.1", 7401, "::ffff:198.18.0.2", 41000, "TIME_WAIT"),
        ("udp", "0.0.0.0", 53, "0.0.0.0", 0, "BOUND"),
    }


def test_each_namespace_matches_ss(lab_factory: LabFactory) -> None:
    lab = lab_factory(["a", "b"])
    a, b = lab["a"], lab["b"]
    a.listen(7401, "tcp", "::")
    a.listen(7402, "tcp", "0.0.0.0")
    a.listen(7403, "udp", "0.0.0.0")
    b.listen(7404, "tcp", "::1", v6only=True)

    def traffic() -> list[socket.socket]:
        kept = []
        for port in (7401, 7402):
            for _ in range(3):
                kept.append(socket.create_connection((str(a.ipv4), port), timeout=5))
            closed = socket.create_connection((str(a.ipv6), 7401), timeout=5)
            closed.close()  # leaves FIN/TIME_WAIT states behind
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.connect((str(a.ipv4), 7403))
        kept.append(udp)
        kept.append(socket.create_connection(("::1", 7404), timeout=5))
        return kept

    held = b.call(traffic)
    try:
        for host in (a, b):
            for _ in range(5):  # connection teardown may move states between the two reads
                theirs = parse_ss(host.run(["ss", "-tuanH"]).stdout)
                mine = ours(host)
                if mine == theirs:
                    break
            assert mine == theirs, (host.name, mine ^ theirs)
            assert len(mine) >= 3
            # The /proc/net fallback, read from a thread inside the namespace, agrees too.
            assert ours(host, "procfs") == mine
    finally:
        for sock in held:
            sock.close()
