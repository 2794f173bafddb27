"""A small stdlib reader of NFLOG records (nftables `log group N`) over netlink.

nftables' `log group N prefix "pps:<entry id> "` hands each logged packet to user space over
NETLINK_NETFILTER (subsystem ULOG). `NflogReader(group)` binds that group in the CURRENT network
namespace of the calling thread (enter a lab host first) and yields `NflogRecord`s: the prefix,
the entry id parsed from it, and the packet's addresses and ports. `parse_messages` is the pure
part (bytes in, records out) and is tested on its own.

Wire format (include/uapi/linux/netfilter/nfnetlink_log.h): nlmsghdr (16 bytes, host order),
nfgenmsg (family u8, version u8, res_id u16 big-endian = group), then nlattrs (u16 len, u16 type,
4-byte aligned); NFULA_PREFIX (10) is a NUL-terminated string, NFULA_PAYLOAD (9) the IP packet.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ppsguard.errors import KernelFeatureMissing, PermissionDenied
from ppsguard.firewall.render.base import entry_from_prefix
from ppsguard.model.net import IPAddress

NETLINK_NETFILTER = 12
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


def _config_message(group: int, attribute_type: int, value: bytes, sequence: int) -> bytes:
    attribute = struct.pack("=HH", 4 + len(value), attribute_type) + value
    attribute += b"\x00" * (((len(attribute) + 3) & ~3) - len(attribute))
    body = _NFGEN.pack(socket.AF_UNSPEC, 0, socket.htons(group)) + attribute
    header = _HEADER.pack(
        _HEADER.size + len(body),
        (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG,
        NLM_F_REQUEST | NLM_F_ACK,
        sequence,
        0,
    )
    return header + body


class NflogReader:
    """Bind NFLOG group `group` in the calling thread's network namespace and read records."""

    def __init__(self, group: int, copy_bytes: int = 128) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except PermissionError as exc:
            raise PermissionDenied("reading NFLOG needs CAP_NET_ADMIN") from exc
        except OSError as exc:
            raise KernelFeatureMissing(f"no NETLINK_NETFILTER socket: {exc}") from exc
        self.sock.bind((0, 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._request(_config_message(group, NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND]), 1))
        mode = struct.pack("!IBB", copy_bytes, NFULNL_COPY_PACKET, 0)
        self._request(_config_message(group, NFULA_CFG_MODE, mode, 2))
        # deliver each record at once, not after the kernel's default 1 s batching timeout
        self._request(_config_message(group, NFULA_CFG_QTHRESH, struct.pack("!I", 1), 3))
        self._request(_config_message(group, NFULA_CFG_TIMEOUT, struct.pack("!I", 1), 4))

    def _request(self, message: bytes) -> None:
        self.sock.send(message)
        reply = self.sock.recv(65536)
        if len(reply) >= _HEADER.size + 4:
            _length, kind, *_ = _HEADER.unpack_from(reply, 0)
            (error,) = struct.unpack_from("=i", reply, _HEADER.size)
            if kind == NLMSG_ERROR and error != 0:
                if -error == 1:
                    raise PermissionDenied("binding an NFLOG group needs CAP_NET_ADMIN")
                raise KernelFeatureMissing(f"NFLOG bind failed: errno {-error}")

    def read(self, timeout: float) -> Iterator[NflogRecord]:
        """Yield records for at most `timeout` seconds in total."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                return
            yield from parse_messages(self.sock.recv(65536))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> NflogReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
