"""Build NetFlow v5, v9 and IPFIX export datagrams byte by byte, for tests: our own writer.

    v5(sequence, [(src, dst, sport, dport, packets, octets, tcp_flags)], sampling=0)
    ipfix(sequence, domain, template_set(2, 300, FIELDS), data_set(300, data_record(...)))
    v9(sequence, template_set(0, 260, FIELDS[:8]), data_set(260, ...))

Addresses are packed bytes (4 or 16) from the lab ranges; `FIELDS` is one IPFIX template
(addresses, ports, protocol, TCP flags, packets, octets, start and end in milliseconds) and
`data_record` one record of it.
"""

from __future__ import annotations

import struct

FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (2, 4), (1, 4), (152, 8), (153, 8)]


def v5(
    sequence: int, records: list[tuple[bytes, bytes, int, int, int, int, int]], sampling: int = 0
) -> bytes:
    head = struct.pack(
        "!HHIIIIBBH", 5, len(records), 10_000, 1_800_000_000, 0, sequence, 0, 0, sampling
    )
    body = b""
    for src, dst, sport, dport, packets, octets, flags in records:
        body += struct.pack(
            "!4s4s4sHHIIIIHHBBBBHHBBH", src, dst, b"\0" * 4, 0, 0, packets, octets, 9_000, 9_500,
            sport, dport, 0, flags, 6, 0, 0, 0, 0, 0, 0,
        )  # fmt: skip
    return head + body


def template_set(set_id: int, template_id: int, fields: list[tuple[int, int]]) -> bytes:
    """A template set (set id 2 in IPFIX, 0 in v9) of one template."""
    body = struct.pack("!HH", template_id, len(fields)) + b"".join(
        struct.pack("!HH", *f) for f in fields
    )
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def data_record(  # noqa: PLR0917 -- a record's fields, in the template's order
    src: bytes, dst: bytes, sport: int, dport: int, packets: int, octets: int
) -> bytes:
    """One record of `FIELDS` (TCP, flags FIN|SYN|PSH|ACK, 1,000-1,002 s)."""
    return (
        src
        + dst
        + struct.pack("!HHBBIIQQ", sport, dport, 6, 0x1B, packets, octets, 1_000_000, 1_002_000)
    )


def data_set(template_id: int, *records: bytes) -> bytes:
    body = b"".join(records)
    return struct.pack("!HH", template_id, 4 + len(body)) + body


def ipfix(sequence: int, domain: int, *sets: bytes) -> bytes:
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), 1_800_000_000, sequence, domain) + body


def v9(sequence: int, *sets: bytes) -> bytes:
    return struct.pack("!HHIIII", 9, len(sets), 10_000, 1_800_000_000, sequence, 42) + b"".join(
        sets
    )
