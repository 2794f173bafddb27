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
