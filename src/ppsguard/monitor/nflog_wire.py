"""The NFLOG wire format: netlink datagrams in, `NflogRecord`s out; configuration requests out.

Pure (bytes in, values out); `nflog.py` owns the socket. Format
(include/uapi/linux/netfilter/nfnetlink_log.h): nlmsghdr (16 bytes, host order), nfgenmsg
(family u8, version u8, res_id u16 big-endian = group), then nlattrs (u16 len, u16 type, 4-byte
aligned); NFULA_PREFIX (10) is a NUL-terminated string, NFULA_PAYLOAD (9) the IP packet.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from ppsguard.firewall.render.base import entry_from_prefix
from ppsguard.model.net import IPAddress

NETLINK_NETFILTER = 12
AF_UNSPEC = 0
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET = 0
NFULNL_MSG_CONFIG = 1
NFULA_PAYLOAD = 9
NFULA_PREFIX = 10
NFULA_CFG_CMD = 1
NFULA_CFG_MODE = 2
NFULA_CFG_TIMEOUT = 4
NFULA_CFG_QTHRESH = 5
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
_NLA_TYPE_MASK = 0x3FFF
_HEADER = struct.Struct("=IHHII")
_NFGEN = struct.Struct("=BBH")


@dataclass(frozen=True, slots=True)
class NflogRecord:
    """One logged packet: the rule's prefix, its entry id, and the packet's 5-tuple if parsed."""

    prefix: str
    entry_id: str | None
    protocol: int | None
    source: IPAddress | None
    destination: IPAddress | None
    source_port: int | None
    destination_port: int | None


def _attributes(data: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4 or offset + length > len(data):
            break
        found.setdefault(kind & _NLA_TYPE_MASK, data[offset + 4 : offset + length])
        offset += (length + 3) & ~3
    return found


def _packet(
    payload: bytes,
) -> tuple[int | None, IPAddress | None, IPAddress | None, int | None, int | None]:
    if not payload:
        return None, None, None, None, None
    version = payload[0] >> 4
    if version == 4 and len(payload) >= 20:
        header = (payload[0] & 0x0F) * 4
        protocol = payload[9]
        source: IPAddress = ipaddress.IPv4Address(payload[12:16])
        destination: IPAddress = ipaddress.IPv4Address(payload[16:20])
    elif version == 6 and len(payload) >= 40:
        header = 40
        protocol = payload[6]
        source = ipaddress.IPv6Address(payload[8:24])
        destination = ipaddress.IPv6Address(payload[24:40])
    else:
        return None, None, None, None, None
    if protocol in (6, 17, 132) and len(payload) >= header + 4:
        sport, dport = struct.unpack_from("!HH", payload, header)
        return protocol, source, destination, sport, dport
    return protocol, source, destination, None, None


def parse_messages(data: bytes) -> list[NflogRecord]:
    """Parse one netlink datagram (possibly several messages) into NFLOG records."""
    records: list[NflogRecord] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            break
        if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            body = data[offset + _HEADER.size + _NFGEN.size : offset + length]
            attributes = _attributes(body)
            prefix = attributes.get(NFULA_PREFIX, b"").split(b"\x00", 1)[0]
            text = prefix.decode("utf-8", "replace")
            records.append(
                NflogRecord(
                    text, entry_from_prefix(text), *_packet(attributes.get(NFULA_PAYLOAD, b""))
                )
            )
        offset += (length + 3) & ~3
    return records


def config_message(group: int, attribute_type: int, value: bytes, sequence: int) -> bytes:
    """One NFULNL_MSG_CONFIG request for `group` carrying one attribute (asks for an ack)."""
    attribute = struct.pack("=HH", 4 + len(value), attribute_type) + value
    attribute += b"\x00" * (((len(attribute) + 3) & ~3) - len(attribute))
    body = struct.pack("=BB", AF_UNSPEC, 0) + struct.pack("!H", group) + attribute
    header = _HEADER.pack(
        _HEADER.size + len(body),
        (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG,
        NLM_F_REQUEST | NLM_F_ACK,
        sequence,
        0,
    )
    return header + body


def ack_error(reply: bytes) -> int:
    """The errno a netlink reply reports (0: an ack, or not an error message)."""
    if len(reply) < _HEADER.size + 4:
        return 0
    _length, kind, *_ = _HEADER.unpack_from(reply, 0)
    (error,) = struct.unpack_from("=i", reply, _HEADER.size)
    return -error if kind == NLMSG_ERROR and error != 0 else 0
