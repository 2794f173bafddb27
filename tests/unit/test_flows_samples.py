"""Annotated sample captures, written by our own packet builder: one per Zeek conn_state, per
encapsulation and per reader quirk, each with the flow Zeek's semantics expect beside it."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ppsguard.flows import chunks
from ppsguard.flows.capture import read_capture
from ppsguard.flows.chunks import read_chunks
from ppsguard.flows.chunktable import ChunkTable
from ppsguard.flows.columns import decode_chunk
from ppsguard.flows.decode import decode
from ppsguard.flows.inputs import open_binary, read_flows
from ppsguard.flows.table import FlowTable
from ppsguard.model.flows import Flow
from ppsguard.testing.packets import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    ethernet,
    geneve,
    gre,
    icmp,
    ipv4,
    ipv6,
    loopback,
    mpls,
    pppoe,
    sll,
    sll2,
    tcp,
    udp,
    vxlan,
    write_pcap,
    write_pcapng,
)

C, S = "198.18.0.10", "198.18.0.20"  # client, server
CP, SP = 40000, 80


def o(flags: int, seq: int, data: bytes = b"", ack: int = 0) -> bytes:
    return ethernet(ipv4(tcp(CP, SP, flags, seq=seq, ack=ack, data=data), C, S))


def r(flags: int, seq: int, data: bytes = b"", ack: int = 0) -> bytes:
    return ethernet(ipv4(tcp(SP, CP, flags, seq=seq, ack=ack, data=data), S, C))


HANDSHAKE = [o(SYN, 100), r(SYN | ACK, 500, ack=101), o(ACK, 101, ack=501)]

# name: (frames, expected flow fields)
CONN_STATES: dict[str, tuple[list[bytes], dict[str, Any]]] = {
    "S0": ([o(SYN, 100)], {"conn_state": "S0", "history": "S", "orig_pkts": 1, "resp_pkts": 0}),
    "REJ": ([o(SYN, 100), r(RST | ACK, 0, ack=101)], {"conn_state": "REJ", "history": "Sr"}),
    "S1": (HANDSHAKE, {"conn_state": "S1", "history": "ShA"}),
    "SF": (
        [
            *HANDSHAKE,
            o(PSH | ACK, 101, b"GET / HTTP/1.0\r\n\r\n", ack=501),
            r(PSH | ACK, 501, b"HTTP/1.0 200 OK\r\n\r\nhello", ack=119),
            o(FIN | ACK, 119, ack=525),
            r(FIN | ACK, 525, ack=120),
            o(ACK, 120, ack=526),
        ],
        {
            "conn_state": "SF",
            "history": "ShADdFf",  # the responder never sent a pure ACK
            "orig_bytes": 18,
            "resp_bytes": 24,
            "orig_pkts": 5,
            "resp_pkts": 3,
            "missed_bytes": 0,
        },
    ),
    "S2": ([*HANDSHAKE, o(FIN | ACK, 101, ack=501)], {"conn_state": "S2", "history": "ShAF"}),
    "S3": ([*HANDSHAKE, r(FIN | ACK, 501, ack=101)], {"conn_state": "S3", "history": "ShAf"}),
    "RSTO": ([*HANDSHAKE, o(RST, 101)], {"conn_state": "RSTO", "history": "ShAR"}),
    "RSTR": ([*HANDSHAKE, r(RST, 501)], {"conn_state": "RSTR", "history": "ShAr"}),
    "RSTOS0": ([o(SYN, 100), o(RST, 101)], {"conn_state": "RSTOS0", "history": "SR"}),
    "RSTRH": (
        [r(SYN | ACK, 500, ack=101), r(RST, 501)],
        {"conn_state": "RSTRH", "history": "^hr", "id.orig_h": C, "id.orig_p": CP},
    ),
    "SH": ([o(SYN, 100), o(FIN, 101)], {"conn_state": "SH", "history": "SF"}),
    "SHR": (
        [r(SYN | ACK, 500, ack=101), r(FIN | ACK, 501, ack=101)],
        {"conn_state": "SHR", "history": "^hf"},
    ),
    "OTH": (
        [o(ACK | PSH, 5000, b"midstream", ack=9000), r(ACK, 9000, ack=5009)],
        {"conn_state": "OTH", "history": "Da", "orig_bytes": 9},
    ),
    "gap": (
        [
            *HANDSHAKE,
            o(PSH | ACK, 101, b"a" * 10, ack=501),
            o(PSH | ACK, 121, b"b" * 10, ack=501),  # 10 bytes never seen
            o(PSH | ACK, 121, b"b" * 10, ack=501),  # a retransmission
        ],
        {"conn_state": "S1", "history": "ShADT", "missed_bytes": 10, "orig_bytes": 30},
    ),
}


def flows_of(tmp_path: Path, frames: list[bytes], **kwargs: Any) -> list[dict[str, Any]]:
    from ppsguard.flows.records import flow_record

    path = tmp_path / "sample.pcap"
    write_pcap(path, [(1000.0 + i * 0.01, frame) for i, frame in enumerate(frames)], **kwargs)
    return [flow_record(f) for f in read_flows(path)]


@pytest.mark.parametrize("name", list(CONN_STATES))
def test_conn_state_sample(tmp_path: Path, name: str) -> None:
    frames, expected = CONN_STATES[name]
    flows = flows_of(tmp_path, frames)
    assert len(flows) == 1, flows
    flow = flows[0]
    for key, value in expected.items():
        assert flow[key] == value, (name, key, flow)
    assert flow["community_id"].startswith("1:")
    assert flow["uid"].startswith("C") and len(flow["uid"]) == 18


def test_udp_and_icmp_pairs(tmp_path: Path) -> None:
    frames = [
        ethernet(ipv4(udp(5353, 53, b"q" * 20), C, S)),
        ethernet(ipv4(udp(53, 5353, b"a" * 40), S, C)),
        ethernet(ipv4(udp(6000, 514, b"x"), C, S)),
        ethernet(ipv4(icmp(8, 0, b"ping"), C, S)),
        ethernet(ipv4(icmp(0, 0, b"ping"), S, C)),
    ]
    flows = {(f["proto"], f["id.resp_p"]): f for f in flows_of(tmp_path, frames)}
    dns = flows[("udp", 53)]
    assert (dns["conn_state"], dns["orig_bytes"], dns["resp_bytes"]) == ("SF", 20, 40)
    assert flows[("udp", 514)]["conn_state"] == "S0"
    echo = next(f for (proto, _), f in flows.items() if proto == "icmp")
    assert echo["conn_state"] == "SF" and echo["orig_pkts"] == 1 and echo["resp_pkts"] == 1


def test_a_retried_syn_answered_by_rst_is_one_rej_row_per_try(tmp_path: Path) -> None:
    frames = []
    for _ in range(3):
        frames += [o(SYN, 100), r(RST | ACK, 0, ack=101)]
    flows = flows_of(tmp_path, frames)
    assert [f["conn_state"] for f in flows] == ["REJ", "REJ", "REJ"]


def test_inactivity_timeout_splits_a_udp_flow(tmp_path: Path) -> None:
    path = tmp_path / "idle.pcap"
    frame = ethernet(ipv4(udp(5000, 9999, b"x"), C, S))
    write_pcap(path, [(0.0, frame), (30.0, frame), (200.0, frame)])
    flows = list(read_flows(path))
    assert [f.orig_pkts for f in flows] == [2, 1]


CLOSE = [
    *HANDSHAKE,
    o(FIN | ACK, 101, ack=501),
    r(FIN | ACK, 501, ack=102),
    o(ACK, 102, ack=502),
]


@pytest.mark.parametrize("chunked", [True, False])
@pytest.mark.parametrize(("late", "rows"), [(4.0, ["SF"]), (6.0, ["SF", "OTH"])])
def test_a_closed_connection_is_kept_five_seconds(
    tmp_path: Path, chunked: bool, late: float, rows: list[str]
) -> None:
    """Zeek's tcp_close_delay: a packet on the 5-tuple of a closed connection within 5 s of its
    last packet still belongs to it; after 5 s of silence it starts a new row."""
    path = tmp_path / "late.pcap"
    times = [1000.0 + i * 0.01 for i in range(len(CLOSE))]
    late_ack = (times[-1] + late, o(ACK, 102, ack=502))
    write_pcap(path, [*zip(times, CLOSE, strict=True), late_ack])
    flows = list(read_flows(path, chunked=chunked))
    assert [f.conn_state for f in flows] == rows
    assert flows[0].orig_pkts == (5 if late < 5 else 4)


@pytest.mark.parametrize("chunked", [True, False])
def test_closed_and_reset_connections_leave_the_table_while_the_capture_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    """Memory follows the live connections: a closed (SF) and a reset (REJ) connection come out
    at the first sweep after 5 s of silence, while the capture goes on (packets read so far:
    about 20 of the capture's 48); a connection still open comes out at its end."""
    monkeypatch.setattr(chunks, "CHUNK_RECORDS", 5)
    rejected = [
        ethernet(ipv4(tcp(CP + 2, SP, SYN, seq=7), C, S)),
        ethernet(ipv4(tcp(SP, CP + 2, RST | ACK, seq=0, ack=8), S, C)),
    ]
    open_one = ethernet(ipv4(tcp(CP + 1, SP, ACK, seq=9), C, S))  # keeps packet time moving
    frames = [(1000.0 + i * 0.01, f) for i, f in enumerate([*CLOSE, *rejected])]
    frames += [(1000.1 + step, open_one) for step in range(40)]
    path = tmp_path / "sweep.pcap"
    write_pcap(path, frames)
    inner = FlowTable()
    with open_binary(path) as stream:
        table = ChunkTable(inner) if chunked else inner
        seen = [(flow.conn_state, flow.orig_p, inner.packets) for flow in _flows(stream, table)]
    assert [row[:2] for row in seen] == [("SF", CP), ("REJ", CP + 2), ("OTH", CP + 1)]
    assert seen[0][2] <= 20 and seen[1][2] <= 20 and seen[2][2] == 48


def _flows(stream: Any, table: Any) -> Iterator[Flow]:
    """Flows of a capture through `table`, per packet or per chunk."""
    if isinstance(table, FlowTable):
        for frame in read_capture(stream, "sweep.pcap"):
            packet = decode(frame.data, frame.linktype, frame.time)
            assert packet is not None
            yield from table.add(packet)
    else:
        for chunk in read_chunks(stream, "sweep.pcap"):
            yield from table.add(decode_chunk(chunk))
    yield from table.flush()


INNER = ipv4(tcp(CP, SP, SYN, seq=1), C, S)
INNER6 = ipv6(tcp(CP, SP, SYN, seq=1), "2001:db8::10", "2001:db8::20")
OUTER_A, OUTER_B = "198.18.1.1", "198.18.1.2"

ENCAPSULATIONS: dict[str, tuple[Callable[[], bytes], int, bool]] = {
    # name: (frame builder, linktype, tunnelled)
    "vlan": (lambda: ethernet(INNER, vlans=[10]), 1, False),
    "qinq": (lambda: ethernet(INNER, vlans=[100, 10]), 1, False),
    "mpls": (lambda: mpls(INNER), 1, False),
    "pppoe": (lambda: pppoe(INNER), 1, False),
    "sll": (lambda: sll(INNER), 113, False),
    "sll2": (lambda: sll2(INNER), 276, False),
    "raw": (lambda: INNER, 101, False),
    "loopback": (lambda: loopback(INNER), 0, False),
    "ipv6-extensions": (
        lambda: ethernet(
            ipv6(tcp(CP, SP, SYN, seq=1), "2001:db8::10", "2001:db8::20", extensions=[0, 60, 44])
        ),
        1,
        False,
    ),
    "gre": (lambda: ethernet(ipv4(gre(INNER), OUTER_A, OUTER_B)), 1, True),
    "gre-ethernet": (
        lambda: ethernet(ipv4(gre(ethernet(INNER), ethernet_inner=True), OUTER_A, OUTER_B)),
        1,
        True,
    ),
    "vxlan": (lambda: ethernet(ipv4(vxlan(ethernet(INNER)), OUTER_A, OUTER_B)), 1, True),
    "geneve": (lambda: ethernet(ipv4(geneve(ethernet(INNER6)), OUTER_A, OUTER_B)), 1, True),
    "ipip": (lambda: ethernet(ipv4((4, INNER), OUTER_A, OUTER_B)), 1, True),
    "6in4": (lambda: ethernet(ipv4((41, INNER6), OUTER_A, OUTER_B)), 1, True),
}


@pytest.mark.parametrize("name", list(ENCAPSULATIONS))
@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_encapsulation_sample(tmp_path: Path, name: str, container: str) -> None:
    build, linktype, tunnelled = ENCAPSULATIONS[name]
    path = tmp_path / f"{name}.{container}"
    writer = write_pcap if container == "pcap" else write_pcapng
    writer(path, [(1.5, build())], linktype=linktype)
    flows = list(read_flows(path))
    assert len(flows) == 1
    flow = flows[0]
    assert (flow.orig_p, flow.resp_p, flow.proto, flow.conn_state) == (CP, SP, "tcp", "S0")
    assert flow.orig_h in (ipaddress.ip_address(C), ipaddress.ip_address("2001:db8::10"))
    assert bool(flow.tunnel_parents) is tunnelled
    assert flow.ts == pytest.approx(1.5)


def test_nanosecond_pcap(tmp_path: Path) -> None:
    path = tmp_path / "ns.pcap"
    write_pcap(path, [(12.123456789, o(SYN, 1))], nanoseconds=True)
    assert next(iter(read_flows(path))).ts == pytest.approx(12.123456789)
