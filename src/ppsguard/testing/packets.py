"""Build packets and captures for tests and benchmarks: our own writer, no captured data.

    frames = [ethernet(ipv4(tcp(40000, 80, SYN, seq=1), "198.18.0.1", "198.18.0.2"))]
    write_pcap(path, [(0.0, frame) for frame in frames])
    write_pcapng(path, ...)

Layers are functions that wrap a payload: `tcp`/`udp`/`icmp` build transport headers (checksums
left zero: readers of flows do not check them), `ipv4`/`ipv6` add a network header (with optional
IPv6 extension headers), `ethernet` (with VLAN tags), `mpls`, `pppoe`, `sll`, `sll2`,
`loopback`, and the tunnels `gre`, `vxlan`, `geneve`. Addresses must come from the lab ranges.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from pathlib import Path

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def tcp(
    sport: int, dport: int, flags: int, *, seq: int = 0, ack: int = 0, data: bytes = b""
) -> tuple[int, bytes]:
    header = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    return 6, header + data


def udp(sport: int, dport: int, data: bytes = b"") -> tuple[int, bytes]:
    return 17, struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def icmp(kind: int, code: int, data: bytes = b"", *, v6: bool = False) -> tuple[int, bytes]:
    return (58 if v6 else 1), struct.pack("!BBHI", kind, code, 0, 0) + data


def ipv4(transport: tuple[int, bytes], src: str, dst: str, *, fragment: int = 0) -> bytes:
    protocol, payload = transport
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(payload),
        1,
        fragment,
        64,
        protocol,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header + payload


def ipv6(
    transport: tuple[int, bytes], src: str, dst: str, *, extensions: Iterable[int] = ()
) -> bytes:
    protocol, payload = transport
    chain = list(extensions)
    body = payload
    next_header = protocol
    for extension in reversed(chain):
        if extension == 44:  # fragment header, first fragment
            body = struct.pack("!BBHI", next_header, 0, 0, 7) + body
        else:
            body = struct.pack("!BB6x", next_header, 0) + body
        next_header = extension
    header = struct.pack(
        "!IHBB16s16s",
        6 << 28,
        len(body),
        next_header,
        64,
        ipaddress.IPv6Address(src).packed,
        ipaddress.IPv6Address(dst).packed,
    )
    return header + body


def _ethertype(packet: bytes) -> int:
    return 0x86DD if packet[0] >> 4 == 6 else 0x0800


def ethernet(packet: bytes, *, vlans: Iterable[int] = (), ethertype: int | None = None) -> bytes:
    """An Ethernet frame; `vlans` outermost first (two tags: 802.1ad outer, 802.1Q inner)."""
    kind = ethertype if ethertype is not None else _ethertype(packet)
    tags = list(vlans)
    header = MAC_B + MAC_A
    for index, vlan in enumerate(tags):
        tpid = 0x88A8 if index == 0 and len(tags) > 1 else 0x8100
        header += struct.pack("!HH", tpid, vlan)
    return header + struct.pack("!H", kind) + packet


def mpls(packet: bytes, labels: Iterable[int] = (16, 17)) -> bytes:
    stack = list(labels)
    out = b""
    for index, label in enumerate(stack):
        bottom = 1 if index == len(stack) - 1 else 0
        out += struct.pack("!I", (label << 12) | (bottom << 8) | 64)
    return MAC_B + MAC_A + struct.pack("!H", 0x8847) + out + packet


def pppoe(packet: bytes) -> bytes:
    ppp = 0x0057 if packet[0] >> 4 == 6 else 0x0021
    header = struct.pack("!BBHHH", 0x11, 0, 1, len(packet) + 2, ppp)
    return MAC_B + MAC_A + struct.pack("!H", 0x8864) + header + packet


def sll(packet: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_A + b"\0\0", _ethertype(packet)) + packet


def sll2(packet: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", _ethertype(packet), 0, 2, 1, 0, 6, MAC_A + b"\0\0") + packet


def loopback(packet: bytes) -> bytes:
    family = 30 if packet[0] >> 4 == 6 else 2
    return struct.pack("<I", family) + packet


def gre(inner: bytes, *, ethernet_inner: bool = False) -> tuple[int, bytes]:
    protocol = 0x6558 if ethernet_inner else _ethertype(inner)
    return 47, struct.pack("!HH", 0, protocol) + inner


def vxlan(inner_frame: bytes, *, sport: int = 50000) -> tuple[int, bytes]:
    return udp(sport, 4789, struct.pack("!BxxxI", 0x08, 42 << 8) + inner_frame)


def geneve(inner_frame: bytes, *, sport: int = 50001) -> tuple[int, bytes]:
    return udp(sport, 6081, struct.pack("!BBHI", 0, 0, 0x6558, 7 << 8) + inner_frame)


def write_pcap(
    path: Path,
    frames: Iterable[tuple[float, bytes]],
    *,
    linktype: int = 1,
    nanoseconds: bool = False,
) -> None:
    magic = 0xA1B23C4D if nanoseconds else 0xA1B2C3D4
    scale = 1_000_000_000 if nanoseconds else 1_000_000
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 262144, linktype))
        for time, frame in frames:
            seconds = int(time)
            fraction = round((time - seconds) * scale)
            out.write(struct.pack("<IIII", seconds, fraction, len(frame), len(frame)) + frame)


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def write_pcapng(path: Path, frames: Iterable[tuple[float, bytes]], *, linktype: int = 1) -> None:
    with path.open("wb") as out:
        out.write(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        out.write(_block(1, struct.pack("<HHI", linktype, 0, 262144)))
        for time, frame in frames:
            stamp = round(time * 1_000_000)
            body = struct.pack("<IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF, len(frame), len(frame))
            out.write(_block(6, body + frame))
