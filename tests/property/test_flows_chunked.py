"""The chunked, vectorised capture path gives exactly the flows of the per-packet reference path.

Hypothesis writes captures with our own packet builder — a few hosts and ports, TCP with every
flag mix, sequence jumps and retransmissions, UDP, ICMP, IPv6 with and without extension
headers, fragments, VLAN, tunnels, SLL and raw links, pcap and pcapng, pauses past the
inactivity timeouts, times that go backwards — and both paths must produce the same rows in
the same order (every field, uids and Community IDs included). Small chunk sizes make flows
cross chunk borders.
"""

from __future__ import annotations

import base64
import hashlib
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsguard.flows import chunks
from ppsguard.flows.inputs import read_flows
from ppsguard.flows.records import flow_record
from ppsguard.flows.table import make_uid
from ppsguard.testing.packets import (
    ethernet,
    gre,
    icmp,
    ipv4,
    ipv6,
    sll,
    tcp,
    udp,
    vxlan,
    write_pcap,
    write_pcapng,
)

V4 = ("198.18.0.1", "198.18.0.2", "198.19.7.9")
V6 = ("2001:db8::1", "2001:db8::2")
PORTS = (80, 443, 40000, 40001)


@st.composite
def packet(draw: st.DrawFn) -> tuple[float, bytes]:
    """(time step, frame) of one generated packet."""
    kind = draw(st.sampled_from(["tcp"] * 6 + ["udp", "icmp", "v6", "frag", "vlan", "tunnel"]))
    a, b = draw(st.sampled_from(V4)), draw(st.sampled_from(V4))
    sport, dport = draw(st.sampled_from(PORTS)), draw(st.sampled_from(PORTS))
    data = b"x" * draw(st.sampled_from([0, 0, 1, 10, 100]))
    flags = draw(st.sampled_from([0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x00, 0x03]))
    seq = draw(st.sampled_from([1, 2, 12, 112, 1000, 2**31 + 5, 2**32 - 3]))
    segment = tcp(sport, dport, flags, seq=seq, data=data)
    if kind == "udp":
        frame = ethernet(ipv4(udp(sport, dport, data), a, b))
    elif kind == "icmp":
        frame = ethernet(ipv4(icmp(draw(st.sampled_from([0, 8, 3])), 0, data), a, b))
    elif kind == "v6":
        x, y = draw(st.sampled_from(V6)), draw(st.sampled_from(V6))
        extensions = draw(st.sampled_from([(), (), (0,), (44,)]))
        frame = ethernet(ipv6(segment, x, y, extensions=extensions))
    elif kind == "frag":
        frame = ethernet(ipv4(segment, a, b, fragment=draw(st.sampled_from([0x2000, 0x0010]))))
    elif kind == "vlan":
        frame = ethernet(ipv4(segment, a, b), vlans=draw(st.sampled_from([(7,), (7, 8)])))
    elif kind == "tunnel":
        inner = ipv4(segment, a, b)
        outer = draw(st.sampled_from(["gre", "vxlan"]))
        carried = gre(inner) if outer == "gre" else vxlan(ethernet(inner))
        frame = ethernet(ipv4(carried, "198.18.9.1", "198.18.9.2"))
    else:
        frame = ethernet(ipv4(segment, a, b))
    step = draw(st.sampled_from([0.0, 0.001, 0.5, 3.0, 5.0, 6.0, 11.0, 61.0, 301.0]))
    return step, frame


@st.composite
def conversation(draw: st.DrawFn) -> list[tuple[float, bytes]]:
    """A TCP conversation with sequence numbers that mostly add up: a handshake (or not), data
    both ways with the odd gap, retransmission or overlap, and a close or a reset (or not),
    perhaps followed by late packets (within or after the 5 s a closed flow is kept)."""
    client, server = draw(st.sampled_from(V4[:2])), V4[2]
    cport = draw(st.sampled_from((40000, 40001, 40002)))
    out: list[tuple[float, bytes]] = []
    seq = {True: draw(st.sampled_from([100, 2**32 - 50])), False: 7000}

    def send(from_client: bool, flags: int, size: int = 0, shift: int = 0) -> None:
        ends = (client, server) if from_client else (server, client)
        ports = (cport, 80) if from_client else (80, cport)
        step = draw(st.sampled_from([0.0, 0.001, 0.001, 2.0, 5.0, 6.0, 400.0]))
        seg = tcp(*ports, flags, seq=(seq[from_client] + shift) % 2**32, data=b"d" * size)
        out.append((step, ethernet(ipv4(seg, *ends))))
        seq[from_client] = (seq[from_client] + shift + size + (1 if flags & 0x03 else 0)) % 2**32

    if draw(st.booleans()):
        send(True, 0x02)
        send(False, 0x12)
        send(True, 0x10)
    for _ in range(draw(st.integers(0, 12))):
        size = draw(st.sampled_from([0, 1, 50, 1400]))
        shift = draw(st.sampled_from([0, 0, 0, 0, 10, -50, 2**30]))
        send(draw(st.booleans()), 0x18 if size else 0x10, size, shift)
    close = draw(st.sampled_from([None, 0x11, 0x04, 0x14]))
    if close is not None:
        send(draw(st.booleans()), close)
        send(draw(st.booleans()), 0x11 if close == 0x11 else 0x10)
        for _ in range(draw(st.integers(0, 2))):  # late packets: within or after the close delay
            size = draw(st.sampled_from([0, 10]))
            send(draw(st.booleans()), 0x18 if size else 0x10, size)
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    talks=st.lists(conversation(), min_size=1, max_size=6),
    chunk=st.sampled_from([2, 5, 1 << 20]),
    shuffle=st.randoms(use_true_random=False),
)
def test_conversations_chunked_equals_per_packet(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    talks: list[list[tuple[float, bytes]]],
    chunk: int,
    shuffle: random.Random,
) -> None:
    monkeypatch.setattr(chunks, "CHUNK_RECORDS", chunk)
    steps: list[tuple[float, bytes]] = []
    pending = [list(talk) for talk in talks if talk]
    while pending:  # interleave the conversations, each in its own order
        talk = shuffle.choice(pending)
        steps.append(talk.pop(0))
        pending = [t for t in pending if t]
    frames, now = [], 1000.0
    for step, frame in steps:
        now += step
        frames.append((now, frame))
    path = tmp_path_factory.mktemp("talks") / "talks.pcap"
    write_pcap(path, frames)
    assert run(path, chunked=True) == run(path, chunked=False)


def run(path: Path, chunked: bool) -> list[dict[str, Any]]:
    stats: dict[str, int] = {}
    flows = [flow_record(f) for f in read_flows(path, chunked=chunked, stats=stats)]
    return [*flows, {"stats": stats}]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    packets=st.lists(packet(), min_size=1, max_size=60),
    backwards=st.booleans(),
    pcapng=st.booleans(),
    chunk=st.sampled_from([1, 3, 7, 1 << 20]),
)
def test_chunked_equals_per_packet(
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    packets: list[tuple[float, bytes]],
    backwards: bool,
    pcapng: bool,
    chunk: int,
) -> None:
    monkeypatch.setattr(chunks, "CHUNK_RECORDS", chunk)
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 256)
    frames: list[tuple[float, bytes]] = []
    now = 1000.0
    for index, (step, frame) in enumerate(packets):
        now += step
        stamp = now - 5.0 if backwards and index % 5 == 4 else now
        frames.append((stamp, frame))
    path = tmp_path_factory.mktemp("chunked") / "generated.pcap"
    (write_pcapng if pcapng else write_pcap)(path, frames)
    assert run(path, chunked=True) == run(path, chunked=False)


@pytest.mark.parametrize("linktype", [113, 101])
def test_other_links_and_a_cut_end(tmp_path: Path, linktype: int) -> None:
    frames = []
    for index in range(40):
        segment = tcp(40000 + index % 3, 80, (0x02, 0x12, 0x10, 0x18, 0x11)[index % 5], seq=index)
        packet_bytes = ipv4(segment, V4[index % 2], V4[2])
        frames.append((1000.0 + index, sll(packet_bytes) if linktype == 113 else packet_bytes))
    path = tmp_path / "links.pcap"
    write_pcap(path, frames, linktype=linktype)
    with path.open("ab") as out:
        out.write(struct.pack("<IIII", 2000, 0, 60, 60) + b"\x45" * 10)  # a record cut short
    chunked, reference = run(path, chunked=True), run(path, chunked=False)
    assert chunked == reference
    assert chunked[-1] == {"stats": {"frames": 40, "truncated": 1, "undecoded": 0}}


@given(cid=st.text(max_size=40), start=st.floats(0, 2**33, allow_nan=False))
def test_uid_is_base32_of_the_digest(cid: str, start: float) -> None:
    digest = hashlib.sha1(f"{cid}|{start:.6f}".encode(), usedforsecurity=False).digest()
    assert make_uid(cid, start) == "C" + base64.b32encode(digest).decode().lower()[:17]
