"""UDP probe payloads: a request each service answers, so that "no answer" means something.

Only `INTRUSIVE` payloads (SNMP community "public") try a credential; they are sent only when
the caller passes `intrusive=True` (`pps scan --intrusive`). Ports without a payload get an
empty datagram (a closed port still answers with ICMP
port-unreachable). Pure data; written by us from the protocol specifications (RFC 1035, RFC 5905,
RFC 3416, RFC 1002, UPnP 1.1, RFC 6762, RFC 2408, memcached protocol.txt).
"""

from __future__ import annotations

import struct

from ppsguard.model.net import Protocol


def _dns_query(
    name: str, qtype: int, *, txid: int = 0x5053, flags: int = 0x0100, qclass: int = 1
) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.split(".") if p) + b"\0"
    return (
        struct.pack("!HHHHHH", txid, flags, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, qclass)
    )


def _ber(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    return bytes([tag, 0x81, len(body)]) + body


def _snmp_get(community: bytes = b"public") -> bytes:
    oid = bytes([0x2B, 6, 1, 2, 1, 1, 1, 0])  # 1.3.6.1.2.1.1.1.0 sysDescr
    varbind = _ber(0x30, _ber(0x06, oid) + b"\x05\x00")
    pdu = _ber(
        0xA0, _ber(0x02, b"\x50\x53") + _ber(0x02, b"\0") + _ber(0x02, b"\0") + _ber(0x30, varbind)
    )
    return _ber(0x30, _ber(0x02, b"\x01") + _ber(0x04, community) + pdu)


def snmpv3_discovery() -> bytes:
    """An SNMPv3 engine-ID discovery request (RFC 3414 section 4): no community, no user, so no
    credential is tried; agents answer with a Report carrying their engine ID. Not intrusive."""
    # msgGlobalData: msgID, msgMaxSize 65507, msgFlags "reportable" only, security model USM
    global_data = _ber(
        0x30,
        _ber(0x02, b"\x50\x53") + _ber(0x02, b"\x00\xff\xe3")
        + _ber(0x04, b"\x04") + _ber(0x02, b"\x03"),
    )  # fmt: skip
    usm = _ber(
        0x30,
        _ber(0x04, b"") + _ber(0x02, b"\x00") + _ber(0x02, b"\x00")
        + _ber(0x04, b"") + _ber(0x04, b"") + _ber(0x04, b""),
    )  # fmt: skip
    pdu = _ber(
        0xA0, _ber(0x02, b"\x50\x54") + _ber(0x02, b"\0") + _ber(0x02, b"\0") + _ber(0x30, b"")
    )
    scoped = _ber(0x30, _ber(0x04, b"") + _ber(0x04, b"") + pdu)
    return _ber(0x30, _ber(0x02, b"\x03") + global_data + _ber(0x04, usm) + scoped)


def _netbios_nbstat() -> bytes:
    name = b"CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"  # "*" padded, first-level encoded
    return (
        struct.pack("!HHHHHH", 0x5053, 0, 1, 0, 0, 0)
        + bytes([32])
        + name
        + b"\0"
        + struct.pack("!HH", 0x21, 1)
    )


def ike_main_mode() -> bytes:
    transform = (
        struct.pack("!BBHBBH", 0, 0, 36, 1, 1, 0)
        + struct.pack(
            "!HHHHHHHHHHHHHH",
            0x8001,
            5,
            0x8002,
            2,
            0x8003,
            1,
            0x8004,
            2,
            0x800B,
            1,
            0x000C,
            4,
            0,
            0x7080,
        )[:28]
    )
    proposal = struct.pack("!BBHBBBB", 0, 0, 8 + len(transform), 1, 1, 0, 1) + transform
    sa = struct.pack("!BBHII", 0, 0, 12 + len(proposal), 1, 1) + proposal
    header = b"PPSGUARD" + b"\0" * 8 + struct.pack("!BBBBII", 1, 0x10, 2, 0, 0, 28 + len(sa))
    return header + sa


PAYLOADS: dict[int, bytes] = {
    53: _dns_query(".", 2),
    123: b"\x1b" + b"\0" * 47,
    161: snmpv3_discovery(),
    137: _netbios_nbstat(),
    1900: (
        b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\n'
        b"MX: 1\r\nST: ssdp:all\r\n\r\n"
    ),
    5353: _dns_query("_services._dns-sd._udp.local", 12, txid=0, flags=0, qclass=0x8001),
    500: ike_main_mode(),
    11211: b"\x00\x01\x00\x00\x00\x01\x00\x00stats\r\n",
}
NAMES: dict[int, str] = {
    53: "dns",
    123: "ntp",
    161: "snmp",
    137: "netbios-ns",
    1900: "ssdp",
    5353: "mdns",
    500: "ike",
    11211: "memcached",
}


# payloads that try a credential or may change state: sent only when the user allows it
INTRUSIVE: dict[int, bytes] = {161: _snmp_get()}


def payload_for(port: int, protocol: Protocol = Protocol.UDP, *, intrusive: bool = False) -> bytes:
    """The probe datagram for `port` (empty when we have none for it). SNMP on 161 is asked
    with an SNMPv3 discovery (no credential) unless `intrusive` allows community "public"."""
    if protocol is not Protocol.UDP:
        return b""
    if intrusive and port in INTRUSIVE:
        return INTRUSIVE[port]
    return PAYLOADS.get(port, b"")
