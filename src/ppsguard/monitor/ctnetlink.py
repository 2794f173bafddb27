"""Conntrack netlink messages (ctnetlink) as values: the pure parser and request builders.

A conntrack event is a netlink message of subsystem CTNETLINK (1) on NETLINK_NETFILTER:
nlmsghdr (16 bytes, host order), nfgenmsg (family u8, version u8, res_id u16), then attributes
(u16 length, u16 type, 4-byte aligned; nested ones carry NLA_F_NESTED). Message type
IPCTNL_MSG_CT_NEW (0) with NLM_F_CREATE is a new connection, without it an update;
IPCTNL_MSG_CT_DELETE (2) is its end. The attributes used here
(include/uapi/linux/netfilter/nfnetlink_conntrack.h):

    CTA_TUPLE_ORIG 1 / CTA_TUPLE_REPLY 2   nested: CTA_TUPLE_IP 1 (V4_SRC 1, V4_DST 2, V6_SRC 3,
                                           V6_DST 4), CTA_TUPLE_PROTO 2 (NUM 1 u8, SRC_PORT 2
                                           and DST_PORT 3 u16 BE, ICMP id/type/code 4/5/6,
                                           ICMPv6 7/8/9)
    CTA_STATUS 3      u32 BE: SEEN_REPLY 2, ASSURED 4, CONFIRMED 8
    CTA_PROTOINFO 4   nested: CTA_PROTOINFO_TCP 1, nested: state 1 (u8)
    CTA_COUNTERS_ORIG 9 / CTA_COUNTERS_REPLY 10   nested: PACKETS 1, BYTES 2 (u64 BE)

Written on `struct` rather than pyroute2's message classes: pyroute2 0.9 spends 56-124 us of CPU
per event on the project's 2-core machine (measured 2026-12), which cannot keep up with a
short-connection flood; this parser takes a few microseconds per message (benchmarks/watch.py
prints the figure). Pure.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from ppsguard.model.net import IPAddress

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_DUMP = 0x300
NLM_F_CREATE = 0x400
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLA_TYPE_MASK = 0x3FFF
# Multicast groups (bit = 1 << (group - 1)).
GROUP_NEW = 1
GROUP_UPDATE = 2
GROUP_DESTROY = 3

CTA_TUPLE_ORIG = 1
CTA_TUPLE_REPLY = 2
CTA_STATUS = 3
CTA_PROTOINFO = 4
CTA_COUNTERS_ORIG = 9
CTA_COUNTERS_REPLY = 10
CTA_ID = 12

IPS_SEEN_REPLY = 2
IPS_ASSURED = 4

_HEADER = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")
_ATTR = struct.Struct("=HH")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


class TcpState(IntEnum):
    NONE = 0
    SYN_SENT = 1
    SYN_RECV = 2
    ESTABLISHED = 3
    FIN_WAIT = 4
    CLOSE_WAIT = 5
    LAST_ACK = 6
    TIME_WAIT = 7
    CLOSE = 8
    SYN_SENT2 = 9


class CtEvent(IntEnum):
    NEW = 1
    UPDATE = 2
    DESTROY = 3
    DUMP = 4  # an entry from a table dump, not an event


@dataclass(frozen=True, slots=True)
class CtTuple:
    protocol: int
    source: IPAddress | None
    destination: IPAddress | None
    source_port: int | None
    destination_port: int | None


@dataclass(frozen=True, slots=True)
class CtMessage:
    """One conntrack event or dump entry."""

    event: CtEvent
    orig: CtTuple
    reply: CtTuple | None
    status: int
    tcp_state: TcpState | None
    orig_packets: int | None
    orig_bytes: int | None
    reply_packets: int | None
    reply_bytes: int | None
    conntrack_id: int | None

    @property
    def seen_reply(self) -> bool:
        return bool(self.status & IPS_SEEN_REPLY)


def attributes(data: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Top-level attributes of `data[start:end]` by type (nested flag masked off)."""
    out: dict[int, bytes] = {}
    end = len(data) if end is None else end
    offset = start
    while offset + 4 <= end:
        length, kind = _ATTR.unpack_from(data, offset)
        if length < 4 or offset + length > end:
            break
        out[kind & NLA_TYPE_MASK] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return out


@functools.lru_cache(maxsize=1 << 16)
def _address(raw: bytes | None) -> IPAddress | None:
    """An address object per distinct address (cached: the same peers recur)."""
    if raw is None:
        return None
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw)
    if len(raw) == 16:
        return ipaddress.IPv6Address(raw)
    return None


def _tuple(raw: bytes) -> CtTuple:
    parts = attributes(raw)
    ip = attributes(parts.get(1, b""))
    proto = attributes(parts.get(2, b""))
    number = proto.get(1, b"\xff")[0] if proto.get(1) else 255
    source = _address(ip.get(1) or ip.get(3))
    destination = _address(ip.get(2) or ip.get(4))
    sport = dport = None
    if 2 in proto and 3 in proto:
        sport, dport = _U16.unpack(proto[2][:2])[0], _U16.unpack(proto[3][:2])[0]
    elif 5 in proto or 8 in proto:  # ICMP / ICMPv6 type and code stand for the ports
        sport = (proto.get(5) or proto.get(8) or b"\0")[0]
        dport = (proto.get(6) or proto.get(9) or b"\0")[0]
    return CtTuple(number, source, destination, sport, dport)


def _counters(raw: bytes | None) -> tuple[int | None, int | None]:
    if raw is None:
        return None, None
    parts = attributes(raw)
    packets = _U64.unpack(parts[1][:8])[0] if len(parts.get(1, b"")) >= 8 else None
    size = _U64.unpack(parts[2][:8])[0] if len(parts.get(2, b"")) >= 8 else None
    return packets, size


def _tcp_state(raw: bytes | None) -> TcpState | None:
    if raw is None:
        return None
    tcp = attributes(raw).get(1)
    if tcp is None:
        return None
    state = attributes(tcp).get(1)
    if not state:
        return None
    try:
        return TcpState(state[0])
    except ValueError:
        return None


Skip = Callable[[CtEvent, int | None, int, TcpState | None], bool]


def parse_messages(
    data: bytes, *, dump: bool = False, skip: Skip | None = None, replies: bool = False
) -> tuple[list[CtMessage], bool, int]:
    """Parse one datagram: (messages, done, error). `done` is set by NLMSG_DONE (end of a
    dump); `error` is the negated errno of an NLMSG_ERROR message (0 for none or an ACK).

    `skip(event, conntrack id, status, TCP state)` is asked before the tuples are decoded: a
    reader that already knows all it needs about a connection drops its later updates for the
    price of one attribute walk. Reply tuples are decoded only with `replies` (nobody needs
    them per event).
    """
    out: list[CtMessage] = []
    done = False
    error = 0
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, flags, _seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            break
        if kind == NLMSG_DONE:
            done = True
        elif kind == NLMSG_ERROR and length >= _HEADER.size + 4:
            error = -struct.unpack_from("=i", data, offset + _HEADER.size)[0]
        elif kind >> 8 == NFNL_SUBSYS_CTNETLINK:
            message = kind & 0xFF
            body = offset + _HEADER.size + _NFGEN.size
            parsed = _message(data, body, offset + length, message, flags, dump, skip, replies)
            if parsed is not None:
                out.append(parsed)
        offset += (length + 3) & ~3
    return out, done, error


def _message(  # noqa: PLR0917 -- the header fields of one message, in wire order
    data: bytes,
    start: int,
    end: int,
    message: int,
    flags: int,
    dump: bool,
    skip: Skip | None = None,
    replies: bool = False,
) -> CtMessage | None:
    if message == IPCTNL_MSG_CT_DELETE:
        event = CtEvent.DESTROY
    elif message == IPCTNL_MSG_CT_NEW:
        created = CtEvent.NEW if flags & NLM_F_CREATE else CtEvent.UPDATE
        event = CtEvent.DUMP if dump else created
    else:
        return None
    parts = attributes(data, start, end)
    if CTA_TUPLE_ORIG not in parts:
        return None
    status = _U32.unpack(parts[CTA_STATUS][:4])[0] if len(parts.get(CTA_STATUS, b"")) >= 4 else 0
    ct_id = _U32.unpack(parts[CTA_ID][:4])[0] if len(parts.get(CTA_ID, b"")) >= 4 else None
    tcp_state = _tcp_state(parts.get(CTA_PROTOINFO))
    if skip is not None and skip(event, ct_id, status, tcp_state):
        return None
    orig_packets, orig_bytes = _counters(parts.get(CTA_COUNTERS_ORIG))
    reply_packets, reply_bytes = _counters(parts.get(CTA_COUNTERS_REPLY))
    return CtMessage(
        event=event,
        orig=_tuple(parts[CTA_TUPLE_ORIG]),
        reply=_tuple(parts[CTA_TUPLE_REPLY]) if replies and CTA_TUPLE_REPLY in parts else None,
        status=status,
        tcp_state=tcp_state,
        orig_packets=orig_packets,
        orig_bytes=orig_bytes,
        reply_packets=reply_packets,
        reply_bytes=reply_bytes,
        conntrack_id=ct_id,
    )


def dump_request(family: int, sequence: int) -> bytes:
    """An IPCTNL_MSG_CT_GET dump request for one address family (AF_INET or AF_INET6)."""
    body = _NFGEN.pack(family, 0, 0)
    kind = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
    return _HEADER.pack(_HEADER.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, sequence, 0) + (
        body
    )
