"""`pps flows read` on captures of real lab traffic agrees with tshark, packet for packet.

tcpdump records a lab host's interface while clients talk to it (TCP with data both ways, UDP
exchanges) and nmap scans it; `tshark -q -z conv,tcp` and `conv,udp` count frames and bytes per
conversation, and so do our flows (frames = packets both ways; bytes = IP bytes plus the
14-byte Ethernet header of each frame).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from ppsguard.lab.hosts import HostSpec
from ppsguard.testing.waiting import wait_for

COUNT = r"\s+(\d+)\s+(\d+) bytes"
CONV = re.compile(r"^(\S+):(\d+)\s+<->\s+(\S+):(\d+)" + COUNT * 3)


def tshark(path: Path, proto: str) -> dict[frozenset[tuple[str, int]], tuple[int, int]]:
    out = subprocess.run(
        ["tshark", "-r", str(path), "-q", "-z", f"conv,{proto}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        match = CONV.match(line.strip())
        if match:
            a, ap, b, bp = match.group(1), int(match.group(2)), match.group(3), int(match.group(4))
            found[frozenset({(a, ap), (b, bp)})] = (int(match.group(9)), int(match.group(10)))
    return found


def ours(path: Path, proto: str) -> dict[frozenset[tuple[str, int]], tuple[int, int]]:
    out = subprocess.run(
        [sys.executable, "-m", "ppsguard", "flows", "read", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    totals: dict[frozenset[tuple[str, int]], list[int]] = defaultdict(lambda: [0, 0])
    for line in out.splitlines():
        flow = json.loads(line)
        if flow["proto"] != proto:
            continue
        key = frozenset(
            {(flow["id.orig_h"], flow["id.orig_p"]), (flow["id.resp_h"], flow["id.resp_p"])}
        )
        frames = flow["orig_pkts"] + flow["resp_pkts"]
        totals[key][0] += frames
        totals[key][1] += flow["orig_ip_bytes"] + flow["resp_ip_bytes"] + 14 * frames
    return {key: (value[0], value[1]) for key, value in totals.items()}


@pytest.mark.lab
def test_flows_of_real_traffic_match_tshark(lab_factory, tmp_path: Path) -> None:
    lab = lab_factory(
        [
            HostSpec("server", ipv4="198.18.0.20"),
            HostSpec("client", ipv4="198.18.0.10"),
            HostSpec("scanner", ipv4="198.18.0.66"),
        ]
    )
    server, client = lab["server"], lab["client"]
    server.listen(80)
    server.listen(5353, "udp")
    capture = tmp_path / "lab.pcap"
    dump = server.popen(
        ["tcpdump", "-i", "eth0", "-U", "-n", "-w", str(capture), "ip or ip6"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert dump.stderr is not None
    deadline = time.monotonic() + 10
    while not capture.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)

    def talk() -> None:
        for n in range(10):
            with socket.create_connection((str(server.ipv4), 80), timeout=5) as sock:
                sock.sendall(b"hello %d " % n * (n + 1))
                sock.recv(4096)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(2)
            for n in range(5):
                udp.sendto(b"query %d" % n, (str(server.ipv4), 5353))
                udp.recvfrom(4096)

    client.call(talk, timeout=60)
    lab["scanner"].run(["nmap", "-sS", "-n", "-Pn", "-T4", "-p", "1-60,80", str(server.ipv4)])
    time.sleep(0.5)
    dump.send_signal(signal.SIGINT)
    dump.wait(timeout=20)
    for proto in ("tcp", "udp"):
        expected = tshark(capture, proto)
        found = ours(capture, proto)
        assert expected, proto
        assert found == expected, (proto, set(found.items()) ^ set(expected.items()))


def _capture_for_export(path: Path) -> None:
    from ppsguard.testing.packets import (
        ACK,
        FIN,
        PSH,
        RST,
        SYN,
        ethernet,
        ipv4,
        tcp,
        udp,
        write_pcap,
    )

    frames: list[bytes] = []
    server = "198.18.0.20"
    for n in range(12):
        client, port = f"198.18.0.{30 + n}", 41000 + n

        def frame(
            src: str, dst: str, sport: int, dport: int, flags: int, data: bytes = b""
        ) -> bytes:
            return ethernet(ipv4(tcp(sport, dport, flags, seq=1, ack=1, data=data), src, dst))

        frames += [
            frame(client, server, port, 80, SYN),
            frame(server, client, 80, port, SYN | ACK),
            frame(client, server, port, 80, ACK | PSH, b"x" * (10 * n + 1)),
            frame(server, client, 80, port, ACK | PSH, b"y" * (20 * n + 1)),
            frame(client, server, port, 80, FIN | ACK),
            frame(server, client, 80, port, FIN | ACK),
        ]
        frames.append(frame(client, server, port + 100, 3306, SYN))
        frames.append(frame(server, client, 3306, port + 100, RST | ACK))
        frames.append(ethernet(ipv4(udp(port, 53, b"q" * n), client, server)))
    write_pcap(path, [(1000.0 + i * 0.001, f) for i, f in enumerate(frames)])


def _receive_queues(ports: tuple[int, ...]) -> dict[int, int]:
    """Bytes waiting to be read on each of `ports` that a UDP socket is bound to."""
    out = subprocess.run(
        ["ss", "-Hlun"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    queues = {}
    for line in out.splitlines():  # State Recv-Q Send-Q Local-Address:Port Peer-Address:Port
        fields = line.split()
        port = fields[3].rpartition(":")[2] if len(fields) > 3 else ""
        if port.isdigit() and int(port) in ports:
            queues[int(port)] = int(fields[1])
    return queues


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.lab
@pytest.mark.parametrize("version", ["9", "10"])
def test_softflowd_exports_agree_with_nfdump(tmp_path: Path, version: str) -> None:
    """softflowd exports the same capture to `pps flows collect` and to nfcapd (NetFlow v9 and
    IPFIX on loopback): the same number of one-way records, packets and bytes."""
    capture = tmp_path / "export.pcap"
    _capture_for_export(capture)
    ours_port, theirs_port = _free_udp_port(), _free_udp_port()
    store = tmp_path / "nfcapd"
    store.mkdir()
    collector = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ppsguard",
            "flows",
            "collect",
            "--listen",
            f"127.0.0.1:{ours_port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    nfcapd = subprocess.Popen(
        ["nfcapd", "-w", str(store), "-p", str(theirs_port), "-b", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ports = (ours_port, theirs_port)
    try:
        # both collectors are bound before anything is sent (an export sent earlier is lost)
        assert wait_for(lambda: set(_receive_queues(ports)) == set(ports)), _receive_queues(ports)
        for port in ports:
            subprocess.run(
                ["softflowd", "-r", str(capture), "-n", f"127.0.0.1:{port}", "-v", version, "-d"],
                capture_output=True,
                timeout=60,
                check=True,
            )
        # loopback queues each export as it is sent: both have read them all before they are
        # stopped (what is left unread then is lost)
        assert wait_for(lambda: _receive_queues(ports) == dict.fromkeys(ports, 0))
    finally:
        collector.send_signal(signal.SIGTERM)
        nfcapd.send_signal(signal.SIGTERM)
        out, err = collector.communicate(timeout=30)
        nfcapd.wait(timeout=30)
    listed = subprocess.run(
        ["nfdump", "-R", str(store), "-q", "-o", "fmt:%pkt %byt"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\n")
    rows = [line.split() for line in listed if line.strip()]
    their_packets = sum(int(r[0]) for r in rows)
    their_bytes = sum(int(r[1]) for r in rows)
    flows = [json.loads(line) for line in out.splitlines()]
    records = int(re.search(r"(\d+) records", err).group(1))  # type: ignore[union-attr]
    assert records == len(rows) == 60, (err, len(rows))
    assert "0 sequence gaps" in err
    assert sum(f["orig_pkts"] + f["resp_pkts"] for f in flows) == their_packets
    assert sum(f["orig_ip_bytes"] + f["resp_ip_bytes"] for f in flows) == their_bytes
    states = {(f["id.resp_p"], f["conn_state"]) for f in flows}
    assert (3306, "REJ") in states and (80, "SF") in states
