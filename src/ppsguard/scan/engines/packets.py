"""Pure packet building and parsing for the SYN engine: TCP SYN segments with a keyed cookie in
the sequence number, checksums, and the parsing of TCP and ICMP/ICMPv6 replies."""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass

from ppsguard.model.net import IPAddress
from ppsguard.model.scan import PortState, Reason

_SYN = 0x02
_RST = 0x04
_ACK = 0x10
MSS_OPTION = struct.pack("!BBH", 2, 4, 1460)
SEGMENT = struct.Struct("!HHIIBBHHH")  # TCP header without options


def checksum_fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def words(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


class CookieJar:
    """The keyed cookie: blake2b(key, destination) XOR a per-run random 32-bit word per port.

    Cheap enough for ~100k packets/s in Python; without the key, a spoofed reply has a 2**-32
    chance per guess.
    """

    def __init__(self, key: bytes) -> None:
        self.key = key
        table = hashlib.blake2b(b"ports", key=key).digest()
        stream = bytearray()
        counter = 0
        while len(stream) < 4 * 65536:
            stream += hashlib.blake2b(
                counter.to_bytes(4, "big"), key=table, digest_size=64
            ).digest()
            counter += 1
        self.ports = struct.unpack("!65536I", bytes(stream[: 4 * 65536]))
        self._hosts: dict[bytes, int] = {}

    def host(self, packed: bytes) -> int:
        value = self._hosts.get(packed)
        if value is None:
            digest = hashlib.blake2b(packed, key=self.key, digest_size=4).digest()
            value = self._hosts[packed] = int.from_bytes(digest, "big")
        return value

    def cookie(self, packed: bytes, port: int) -> int:
        return int(self.host(packed) ^ self.ports[port])


class SynBuilder:
    """Builds SYN segments from one source address/port; `cookie()` is the keyed sequence number."""

    def __init__(self, key: bytes | CookieJar, src: IPAddress, dst_family: int, sport: int) -> None:
        self.jar = key if isinstance(key, CookieJar) else CookieJar(key)
        self.src = src
        self.sport = sport
        self.dst_family = dst_family
        self._bases: dict[bytes, int] = {}

    def cookie(self, dst: IPAddress, dport: int) -> int:
        return self.jar.cookie(dst.packed, dport)

    def _base(self, dst: IPAddress) -> int:
        base = self._bases.get(dst.packed)
        if base is None:
            length = 24
            if dst.version == 4:
                pseudo = self.src.packed + dst.packed + struct.pack("!BBH", 0, 6, length)
            else:
                pseudo = self.src.packed + dst.packed + struct.pack("!IxxxB", length, 6)
            fixed = struct.pack("!HHIIBBHHH", self.sport, 0, 0, 0, 6 << 4, _SYN, 1024, 0, 0)
            base = self._bases[dst.packed] = words(pseudo) + words(fixed + MSS_OPTION)
        return base

    def base(self, packed: bytes) -> int:
        return self._bases[packed]

    def segment(self, dst: IPAddress, dport: int) -> bytes:
        self._base(dst)
        return self.segment_packed(dst.packed, dport)

    def segment_packed(self, packed: bytes, dport: int) -> bytes:
        seq = self.jar.cookie(packed, dport)
        csum = checksum_fold(self._bases[packed] + dport + (seq >> 16) + (seq & 0xFFFF))
        return (
            struct.pack("!HHIIBBHHH", self.sport, dport, seq, 0, 6 << 4, _SYN, 1024, csum, 0)
            + MSS_OPTION
        )


@dataclass(frozen=True, slots=True)
class Reply:
    address: IPAddress  # the probed address
    port: int  # the probed port
    state: PortState
    reason: Reason
    ttl: int | None
    cookie_ok: bool


def parse_tcp(src: IPAddress, segment: bytes, builder: SynBuilder, ttl: int | None) -> Reply | None:
    """A TCP segment from `src`: SYN-ACK means open, RST closed — if its ack matches our cookie."""
    if len(segment) < 20:
        return None
    sport, dport, _seq, ack, _off, flags = struct.unpack_from("!HHIIBB", segment)
    if dport != builder.sport:
        return None
    if flags & (_SYN | _ACK) == (_SYN | _ACK):
        state, reason = PortState.OPEN, Reason.SYN_ACK
    elif flags & _RST:
        state, reason = PortState.CLOSED, Reason.RESET
    else:
        return None
    ok = ack == (builder.cookie(src, sport) + 1) & 0xFFFFFFFF
    return Reply(src, sport, state, reason, ttl, ok)


_ICMP4 = {
    0: Reason.NET_UNREACH,
    1: Reason.HOST_UNREACH,
    2: Reason.PROTO_UNREACH,
    3: Reason.PORT_UNREACH,
    9: Reason.NET_PROHIBITED,
    10: Reason.HOST_PROHIBITED,
    13: Reason.ADMIN_PROHIBITED,
}
_ICMP6 = {
    0: Reason.NET_UNREACH,
    1: Reason.ADMIN_PROHIBITED,
    3: Reason.HOST_UNREACH,
    4: Reason.PORT_UNREACH,
}


def _embedded(
    dst: IPAddress, inner_tcp: bytes, builder: SynBuilder, reason: Reason, ttl: int | None
) -> Reply | None:
    if len(inner_tcp) < 8:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", inner_tcp)
    if sport != builder.sport:
        return None
    ok = seq == builder.cookie(dst, dport)
    return Reply(dst, dport, PortState.FILTERED, reason, ttl, ok)


def parse_icmp4(packet: bytes, builder: SynBuilder) -> Reply | None:
    """An IPv4 packet carrying ICMP destination-unreachable about one of our SYNs."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    ttl = packet[8]
    icmp = packet[ihl:]
    if len(icmp) < 8 + 20 or icmp[0] != 3:
        return None
    inner = icmp[8:]
    inner_ihl = (inner[0] & 0x0F) * 4
    if inner[9] != 6 or len(inner) < inner_ihl + 8:
        return None
    dst = ipaddress.IPv4Address(inner[16:20])
    return _embedded(dst, inner[inner_ihl:], builder, _ICMP4.get(icmp[1], Reason.UNKNOWN), ttl)


def parse_icmp6(message: bytes, builder: SynBuilder) -> Reply | None:
    """An ICMPv6 message (no IPv6 header) that reports one of our SYNs undeliverable."""
    if len(message) < 8 + 40 + 8 or message[0] != 1:
        return None
    inner = message[8:]
    if inner[6] != 6:
        return None
    dst = ipaddress.IPv6Address(inner[24:40])
    return _embedded(dst, inner[40:], builder, _ICMP6.get(message[1], Reason.UNKNOWN), None)


def parse_ipv4_tcp(packet: bytes, builder: SynBuilder) -> Reply | None:
    if len(packet) < 40 or packet[9] != 6:
        return None
    ihl = (packet[0] & 0x0F) * 4
    src = ipaddress.IPv4Address(packet[12:16])
    return parse_tcp(src, packet[ihl:], builder, packet[8])
