"""The NFLOG parser on hand-built netlink datagrams (the lab tests read real ones)."""

from __future__ import annotations

import ipaddress
import struct

from hypothesis import given
from hypothesis import strategies as st

from ppsguard.monitor.nflog_wire import NFULA_PAYLOAD, NFULA_PREFIX, parse_messages


def _attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\x00" * (((len(raw) + 3) & ~3) - len(raw))


def _message(prefix: bytes, payload: bytes) -> bytes:
    body = (
        struct.pack("=BBH", 2, 0, 0)
        + _attr(NFULA_PREFIX, prefix + b"\x00")
        + _attr(NFULA_PAYLOAD, payload)
    )
    return struct.pack("=IHHII", 16 + len(body), (4 << 8) | 0, 0, 0, 0) + body


def _ipv4_tcp(src: str, dst: str, sport: int, dport: int) -> bytes:
    header = bytes([0x45, 0]) + struct.pack("!HHHBBH", 40, 0, 0, 64, 6, 0)
    header += ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    return header + struct.pack("!HH", sport, dport) + b"\x00" * 16


def _ipv6_udp(src: str, dst: str, sport: int, dport: int) -> bytes:
    header = bytes([0x60, 0, 0, 0]) + struct.pack("!HBB", 8, 17, 64)
    header += ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
    return header + struct.pack("!HHHH", sport, dport, 8, 0)


def test_two_records_in_one_datagram() -> None:
    data = _message(b"pps:pop3 ", _ipv4_tcp("198.18.0.11", "198.18.0.1", 40000, 110))
    data += _message(b"pps:mysql ", _ipv6_udp("2001:db8::2", "2001:db8::1", 5000, 3306))
    first, second = parse_messages(data)
    assert (first.entry_id, str(first.source), first.destination_port, first.protocol) == (
        "pop3",
        "198.18.0.11",
        110,
        6,
    )
    assert (second.entry_id, str(second.source), second.destination_port, second.protocol) == (
        "mysql",
        "2001:db8::2",
        3306,
        17,
    )


def test_foreign_prefix_and_no_payload() -> None:
    body = struct.pack("=BBH", 2, 0, 0) + _attr(NFULA_PREFIX, b"IN=eth0\x00")
    data = struct.pack("=IHHII", 16 + len(body), 4 << 8, 0, 0, 0) + body
    (record,) = parse_messages(data)
    assert record.entry_id is None and record.source is None


@given(st.binary(max_size=300))
def test_garbage_never_crashes(data: bytes) -> None:
    parse_messages(data)


@given(st.binary(max_size=200))
def test_garbage_payload_never_crashes(payload: bytes) -> None:
    parse_messages(_message(b"pps:x ", payload))


def test_config_request_binds_the_group_in_network_order() -> None:
    from ppsguard.monitor.nflog_wire import NFULA_CFG_CMD, NFULNL_CFG_CMD_BIND, config_message

    message = config_message(513, NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND]), 7)
    length, kind, flags, sequence, _pid = struct.unpack_from("=IHHII", message)
    assert (length, kind, flags, sequence) == (len(message), (4 << 8) | 1, 1 | 4, 7)
    assert len(message) % 4 == 0
    assert message[16:20] == bytes([0, 0]) + (513).to_bytes(2, "big")
    assert message[20:25] == struct.pack("=HH", 5, NFULA_CFG_CMD) + bytes([NFULNL_CFG_CMD_BIND])


def test_ack_error_reads_the_errno_of_a_netlink_error() -> None:
    from ppsguard.monitor.nflog_wire import ack_error

    def reply(kind: int, error: int) -> bytes:
        return struct.pack("=IHHII", 36, kind, 0, 1, 0) + struct.pack("=i", error) + bytes(16)

    assert ack_error(reply(2, -1)) == 1  # EPERM
    assert ack_error(reply(2, 0)) == 0  # an ack
    assert ack_error(reply(3, -1)) == 0  # not an error message
    assert ack_error(b"short") == 0
