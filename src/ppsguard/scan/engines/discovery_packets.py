"""Pure packet layouts for host discovery: ARP (IPv4 on a link), IPv6 neighbour solicitation and
advertisement, ICMP echo and timestamp. Each header is a table of (field, struct code); building
and parsing take and give bytes, never sockets.

    ARP over Ethernet (RFC 826), 28 bytes:
    | htype 1 | ptype 0x0800 | hlen 6 | plen 4 | oper 1=request 2=reply |
    | sha (6) | spa (4) | tha (6) | tpa (4) |   sender/target hardware and protocol addresses
    Neighbour solicitation / advertisement (RFC 4861), 24 bytes + options:
    | type 135/136 | code | checksum | flags+reserved | target address (16) |
    | option 1 (source) / 2 (target): type | length=1 | link-layer address (6) |

The kernel fills the Ethernet header (AF_PACKET SOCK_DGRAM) and the ICMPv6 checksum (raw ICMPv6
sockets always checksum); the IPv4 ICMP checksum is ours.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from ppsguard.scan.engines.packets import checksum_fold, words


class Layout:
    """A fixed header as a table of (field, struct code), network byte order unless `order`
    says otherwise ("=": the host's, as netlink uses)."""

    def __init__(self, *fields: tuple[str, str], order: str = "!") -> None:
        self.names = tuple(name for name, _code in fields)
        self.struct = struct.Struct(order + "".join(code for _name, code in fields))
        self.size = self.struct.size

    def pack(self, values: Mapping[str, int | bytes]) -> bytes:
        return self.struct.pack(*(values[name] for name in self.names))

    def unpack(self, data: bytes) -> dict[str, int | bytes] | None:
        if len(data) < self.size:
            return None
        return dict(zip(self.names, self.struct.unpack_from(data), strict=True))


ARP = Layout(
    ("htype", "H"),  # 1 = Ethernet
    ("ptype", "H"),  # 0x0800 = IPv4
    ("hlen", "B"),
    ("plen", "B"),
    ("oper", "H"),  # 1 request, 2 reply
    ("sha", "6s"),  # sender hardware address
    ("spa", "4s"),  # sender protocol address
    ("tha", "6s"),  # target hardware address (zero in a request)
    ("tpa", "4s"),  # target protocol address
)
ND = Layout(
    ("type", "B"),  # 135 neighbour solicitation, 136 advertisement
    ("code", "B"),
    ("checksum", "H"),  # filled in by the kernel
    ("flags", "I"),  # NA: router 0x80000000, solicited 0x40000000, override 0x20000000
    ("target", "16s"),
)
LINK_OPTION = Layout(("type", "B"), ("length", "B"), ("address", "6s"))  # 1 source, 2 target
ICMP_ECHO = Layout(("type", "B"), ("code", "B"), ("checksum", "H"), ("ident", "H"), ("seq", "H"))
ICMP_TIMESTAMP = Layout(
    ("type", "B"),  # 13 request, 14 reply
    ("code", "B"),
    ("checksum", "H"),
    ("ident", "H"),
    ("seq", "H"),
    ("originate", "I"),
    ("receive", "I"),
    ("transmit", "I"),
)

ETH_P_ARP = 0x0806
BROADCAST_MAC = b"\xff" * 6
ARP_REQUEST, ARP_REPLY = 1, 2
NS_TYPE, NA_TYPE = 135, 136
ECHO4, ECHO_REPLY4, TIMESTAMP4, TIMESTAMP_REPLY4 = 8, 0, 13, 14
ECHO6, ECHO_REPLY6 = 128, 129


def arp_request(mac: bytes, source: ipaddress.IPv4Address, target: ipaddress.IPv4Address) -> bytes:
    """Who has `target`? Tell `source` (at `mac`)."""
    return ARP.pack(
        {"htype": 1, "ptype": 0x0800, "hlen": 6, "plen": 4, "oper": ARP_REQUEST,
         "sha": mac, "spa": source.packed, "tha": b"\0" * 6, "tpa": target.packed}
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NeighbourAnswer:
    """A neighbour that said it has `address`, at `mac`."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    mac: bytes


def parse_arp_reply(data: bytes) -> NeighbourAnswer | None:
    """An ARP reply (or any ARP packet whose sender says it has an address) over Ethernet/IPv4."""
    fields = ARP.unpack(data)
    if fields is None or fields["htype"] != 1 or fields["ptype"] != 0x0800:
        return None
    if fields["oper"] != ARP_REPLY:
        return None
    spa, sha = fields["spa"], fields["sha"]
    assert isinstance(spa, bytes) and isinstance(sha, bytes)
    return NeighbourAnswer(ipaddress.IPv4Address(spa), sha)


def solicited_node(target: ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    """The solicited-node multicast group of `target`: ff02::1:ffXX:XXXX (RFC 4291 2.7.1)."""
    return ipaddress.IPv6Address(b"\xff\x02" + b"\0" * 9 + b"\x01\xff" + target.packed[13:])


def neighbour_solicitation(target: ipaddress.IPv6Address, mac: bytes) -> bytes:
    """An NS for `target` carrying our link-layer address (checksum left to the kernel)."""
    body = ND.pack({"type": NS_TYPE, "code": 0, "checksum": 0, "flags": 0, "target": target.packed})
    return body + LINK_OPTION.pack({"type": 1, "length": 1, "address": mac})


def parse_neighbour_advertisement(message: bytes) -> NeighbourAnswer | None:
    """An ICMPv6 NA (no IPv6 header): its target address and target link-layer option."""
    fields = ND.unpack(message)
    if fields is None or fields["type"] != NA_TYPE or fields["code"] != 0:
        return None
    target = fields["target"]
    assert isinstance(target, bytes)
    mac = b""
    options = message[ND.size :]
    while len(options) >= 8 and options[1]:
        end = options[1] * 8
        if options[0] == 2 and len(options) >= 8:
            mac = bytes(options[2:8])
        options = options[end:]
    return NeighbourAnswer(ipaddress.IPv6Address(target), mac)


def icmp4(kind: int, ident: int, seq: int) -> bytes:
    """An ICMPv4 echo (8) or timestamp (13) request with its checksum."""
    layout = ICMP_TIMESTAMP if kind == TIMESTAMP4 else ICMP_ECHO
    values: dict[str, int | bytes] = {
        "type": kind, "code": 0, "checksum": 0, "ident": ident, "seq": seq,
        "originate": 0, "receive": 0, "transmit": 0,
    }  # fmt: skip
    payload = b"ppsguard" if kind == ECHO4 else b""
    raw = layout.pack(values) + payload
    values["checksum"] = checksum_fold(words(raw))
    return layout.pack(values) + payload


def icmp6_echo(ident: int, seq: int) -> bytes:
    """An ICMPv6 echo request (the kernel checksums it on raw and datagram sockets)."""
    values: dict[str, int | bytes] = {"type": ECHO6, "code": 0, "checksum": 0, "ident": ident,
                                      "seq": seq}  # fmt: skip
    return ICMP_ECHO.pack(values) + b"ppsguard"


def parse_icmp_reply(message: bytes, version: int) -> str | None:
    """The discovery reason an ICMP message (no IP header) gives: echo-reply, timestamp-reply."""
    if len(message) < ICMP_ECHO.size or message[1] != 0:
        return None
    if version == 4:
        return {ECHO_REPLY4: "echo-reply", TIMESTAMP_REPLY4: "timestamp-reply"}.get(message[0])
    return "echo-reply" if message[0] == ECHO_REPLY6 else None


TCP = Layout(
    ("sport", "H"),
    ("dport", "H"),
    ("seq", "I"),
    ("ack", "I"),
    ("offset", "B"),  # data offset << 4
    ("flags", "B"),  # ACK 0x10, RST 0x04, SYN 0x02
    ("window", "H"),
    ("checksum", "H"),
    ("urgent", "H"),
)
TCP_ACK, TCP_RST = 0x10, 0x04


def tcp_ack(  # noqa: PLR0917
    src: ipaddress.IPv4Address | ipaddress.IPv6Address,
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
) -> bytes:
    """A bare TCP ACK (nmap's -PA probe): a live host answers RST with sequence number `ack`."""
    values: dict[str, int | bytes] = {
        "sport": sport, "dport": dport, "seq": seq, "ack": ack, "offset": 5 << 4,
        "flags": TCP_ACK, "window": 1024, "checksum": 0, "urgent": 0,
    }  # fmt: skip
    if dst.version == 4:
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 6, TCP.size)
    else:
        pseudo = src.packed + dst.packed + struct.pack("!IxxxB", TCP.size, 6)
    values["checksum"] = checksum_fold(words(pseudo + TCP.pack(values)))
    return TCP.pack(values)


def parse_rst(segment: bytes) -> tuple[int, int, int] | None:
    """(source port, destination port, sequence number) of a TCP RST, else None."""
    fields = TCP.unpack(segment)
    if fields is None or not int(fields["flags"]) & TCP_RST:
        return None
    return int(fields["sport"]), int(fields["dport"]), int(fields["seq"])


# rtnetlink neighbour dump (RTM_GETNEIGH): what the kernel's neighbour table says about addresses
NLMSG = Layout(
    ("length", "I"), ("type", "H"), ("flags", "H"), ("seq", "I"), ("pid", "I"), order="="
)
NDMSG = Layout(("family", "B"), ("pad1", "B"), ("pad2", "H"), ("ifindex", "i"),
               ("state", "H"), ("flags", "B"), ("type", "B"), order="=")  # fmt: skip
RTATTR = Layout(("length", "H"), ("type", "H"), order="=")
RTM_NEWNEIGH, RTM_GETNEIGH, NLMSG_DONE, NLMSG_ERROR = 28, 30, 3, 2
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NDA_DST = 1
NUD_INCOMPLETE, NUD_FAILED = 0x01, 0x20
NUD_ANSWERED = 0x02 | 0x04 | 0x08 | 0x10 | 0x80  # reachable, stale, delay, probe, permanent


def neighbour_dump_request(family: int, seq: int) -> bytes:
    """An RTM_GETNEIGH dump request for one address family (AF_INET 2, AF_INET6 10)."""
    body = NDMSG.pack({"family": family, "pad1": 0, "pad2": 0, "ifindex": 0, "state": 0,
                       "flags": 0, "type": 0})  # fmt: skip
    head = NLMSG.pack({"length": NLMSG.size + len(body), "type": RTM_GETNEIGH,
                       "flags": NLM_F_REQUEST | NLM_F_DUMP, "seq": seq, "pid": 0})  # fmt: skip
    return head + body


def parse_neighbours(data: bytes) -> tuple[dict[bytes, int], bool]:
    """(packed address -> NUD state, whether the dump is done) from netlink bytes."""
    states: dict[bytes, int] = {}
    done = False
    offset = 0
    while offset + NLMSG.size <= len(data):
        head = NLMSG.unpack(data[offset:])
        assert head is not None
        length, kind = int(head["length"]), int(head["type"])
        if length < NLMSG.size:
            break
        if kind in (NLMSG_DONE, NLMSG_ERROR):
            done = True
        elif kind == RTM_NEWNEIGH:
            body = data[offset + NLMSG.size : offset + length]
            nd = NDMSG.unpack(body)
            at = NDMSG.size
            while nd is not None and at + RTATTR.size <= len(body):
                attr = RTATTR.unpack(body[at:])
                assert attr is not None
                size = int(attr["length"])
                if size < RTATTR.size:
                    break
                if attr["type"] == NDA_DST:
                    states[bytes(body[at + RTATTR.size : at + size])] = int(nd["state"])
                at += (size + 3) & ~3
        offset += (length + 3) & ~3
    return states, done
