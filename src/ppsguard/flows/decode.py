"""Decode a captured frame down to the transport header: who talked to whom, how, how much.

    packet = decode(frame.data, frame.linktype, frame.time)   # or None: not IP, or too short

Link layers: Ethernet (1), raw IP (101, 228, 229, 12, 14), Linux cooked SLL (113) and SLL2 (276),
BSD loopback (0, 108). Inside Ethernet: 802.1Q/802.1ad VLAN tags (QinQ too), MPLS label stacks,
PPPoE sessions. IPv4 (non-first fragments carry no ports) and IPv6 with its extension headers
(hop-by-hop, routing, fragment, destination options, AH). Tunnels are followed to the inner
packet, which keeps a reference to its outer flow in `tunnel`: GRE (IPv4, IPv6, transparent
Ethernet), VXLAN (UDP 4789), Geneve (UDP 6081), IP-in-IP (4) and IPv6-in-IP (41); at most
`MAX_DEPTH` levels. Addresses stay packed bytes here (flows make address objects once per flow,
not per packet). Pure; never raises on short or garbled input (it returns None).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

MAX_DEPTH = 4
TCP, UDP, ICMP, ICMP6, GRE, IPIP, IPV6IN4 = 6, 17, 1, 58, 47, 4, 41
_IPV6_EXTENSIONS = {0, 43, 44, 60, 51}
_VLAN = {0x8100, 0x88A8, 0x9100}
_U16 = struct.Struct("!H")
_PORTS = struct.Struct("!HH")
_TCP = struct.Struct("!HHIIBB")

TunnelKey = tuple[int, bytes, int, bytes, int]  # outer (proto, src, sport, dst, dport)


class Packet(NamedTuple):  # a named tuple: made once per frame, ~10x cheaper than a dataclass
    time: float
    protocol: int
    source: bytes
    destination: bytes
    source_port: int  # ICMP: type
    destination_port: int  # ICMP: code
    flags: int  # TCP flags (FIN 1, SYN 2, RST 4, PSH 8, ACK 16), else 0
    sequence: int
    ip_length: int  # the IP packet's length (header included), as on the wire
    payload: int  # transport payload bytes
    tunnel: TunnelKey | None = None


def decode(data: bytes, linktype: int, time: float) -> Packet | None:
    """The innermost transport packet of a frame (see the module docstring)."""
    ethertype, offset = _link(data, linktype)
    return _network(data, offset, ethertype, time, None, 0)


def _link(data: bytes, linktype: int) -> tuple[int, int]:
    """(ethertype, offset of the network header); ethertype 0 for unknown."""
    if linktype == 1:
        return _ethernet(data, 0)
    if linktype in (101, 12, 14):
        return _raw_version(data, 0), 0
    if linktype == 228:
        return 0x0800, 0
    if linktype == 229:
        return 0x86DD, 0
    if linktype == 113 and len(data) >= 16:
        return _U16.unpack_from(data, 14)[0], 16
    if linktype == 276 and len(data) >= 20:
        return _U16.unpack_from(data, 0)[0], 20
    if linktype in (0, 108) and len(data) >= 4:
        family = int.from_bytes(data[:4], "little" if linktype == 0 else "big")
        if family == 2:
            return 0x0800, 4
        if family in (10, 24, 28, 30):
            return 0x86DD, 4
        return _raw_version(data, 4), 4
    return 0, 0


def _raw_version(data: bytes, offset: int) -> int:
    if len(data) <= offset:
        return 0
    version = data[offset] >> 4
    return 0x0800 if version == 4 else 0x86DD if version == 6 else 0


def _ethernet(data: bytes, offset: int) -> tuple[int, int]:
    if len(data) < offset + 14:
        return 0, 0
    ethertype = _U16.unpack_from(data, offset + 12)[0]
    offset += 14
    while ethertype in _VLAN and len(data) >= offset + 4:
        ethertype = _U16.unpack_from(data, offset + 2)[0]
        offset += 4
    if ethertype in (0x8847, 0x8848):  # MPLS: labels until bottom of stack
        while len(data) >= offset + 4:
            bottom = data[offset + 2] & 1
            offset += 4
            if bottom:
                return _raw_version(data, offset), offset
        return 0, 0
    if ethertype == 0x8864 and len(data) >= offset + 8:  # PPPoE session + PPP protocol
        ppp = _U16.unpack_from(data, offset + 6)[0]
        offset += 8
        return {0x0021: 0x0800, 0x0057: 0x86DD}.get(ppp, 0), offset
    return ethertype, offset


def _network(  # noqa: PLR0917 -- private, called positionally on the hot path
    data: bytes, offset: int, ethertype: int, time: float, tunnel: TunnelKey | None, depth: int
) -> Packet | None:
    if ethertype == 0x0800:
        return _ipv4(data, offset, time, tunnel, depth)
    if ethertype == 0x86DD:
        return _ipv6(data, offset, time, tunnel, depth)
    return None


def _ipv4(
    data: bytes, offset: int, time: float, tunnel: TunnelKey | None, depth: int
) -> Packet | None:
    if len(data) < offset + 20 or data[offset] >> 4 != 4:
        return None
    header = (data[offset] & 0x0F) * 4
    total = _U16.unpack_from(data, offset + 2)[0]
    fragment = _U16.unpack_from(data, offset + 6)[0] & 0x1FFF
    protocol = data[offset + 9]
    source = data[offset + 12 : offset + 16]
    destination = data[offset + 16 : offset + 20]
    if header < 20 or total < header:
        return None
    end = min(len(data), offset + total)
    return _transport(
        data,
        offset + header,
        end,
        protocol,
        source,
        destination,
        total,
        time,
        tunnel,
        depth,
        fragment != 0,
    )


def _ipv6(
    data: bytes, offset: int, time: float, tunnel: TunnelKey | None, depth: int
) -> Packet | None:
    if len(data) < offset + 40 or data[offset] >> 4 != 6:
        return None
    payload = _U16.unpack_from(data, offset + 4)[0]
    protocol = data[offset + 6]
    source = data[offset + 8 : offset + 24]
    destination = data[offset + 24 : offset + 40]
    end = min(len(data), offset + 40 + payload)
    position = offset + 40
    later_fragment = False
    for _ in range(8):  # a bounded walk of the extension header chain
        if protocol not in _IPV6_EXTENSIONS or position + 8 > end:
            break
        next_header = data[position]
        if protocol == 44:
            later_fragment = (_U16.unpack_from(data, position + 2)[0] >> 3) != 0
            size = 8
        elif protocol == 51:
            size = (data[position + 1] + 2) * 4
        else:
            size = (data[position + 1] + 1) * 8
        protocol = next_header
        position += size
    return _transport(
        data,
        position,
        end,
        protocol,
        source,
        destination,
        40 + payload,
        time,
        tunnel,
        depth,
        later_fragment,
    )


def _transport(  # noqa: PLR0917 -- one IP header's fields, in order
    data: bytes,
    offset: int,
    end: int,
    protocol: int,
    source: bytes,
    destination: bytes,
    ip_length: int,
    time: float,
    tunnel: TunnelKey | None,
    depth: int,
    fragment: bool,
) -> Packet | None:
    sport = dport = flags = sequence = 0
    payload = max(end - offset, 0)
    if fragment:
        return Packet(time, protocol, source, destination, 0, 0, 0, 0, ip_length, payload, tunnel)
    if protocol == TCP and end >= offset + 14:
        sport, dport, sequence, _ack, data_offset, flags = _TCP.unpack_from(data, offset)
        payload = max(end - offset - (data_offset >> 4) * 4, 0)
    elif protocol == UDP and end >= offset + 8:
        sport, dport = _PORTS.unpack_from(data, offset)
        payload = max(end - offset - 8, 0)
        if depth < MAX_DEPTH and dport in (4789, 6081):
            inner = _udp_tunnel(data, offset + 8, end, dport, time, depth)
            if inner is not None:
                outer = (protocol, source, sport, destination, dport)
                return _with_tunnel(inner, outer)
    elif protocol in (ICMP, ICMP6) and end >= offset + 2:
        sport, dport = data[offset], data[offset + 1]
        payload = max(end - offset - 8, 0)
    elif protocol in (IPIP, IPV6IN4) and depth < MAX_DEPTH:
        inner_type = 0x0800 if protocol == IPIP else 0x86DD
        outer = (protocol, source, 0, destination, 0)
        return _network(data[:end], offset, inner_type, time, outer, depth + 1) or Packet(
            time, protocol, source, destination, 0, 0, 0, 0, ip_length, payload, tunnel
        )
    elif protocol == GRE and depth < MAX_DEPTH and end >= offset + 4:
        inner = _gre(data, offset, end, time, depth)
        if inner is not None:
            return _with_tunnel(inner, (protocol, source, 0, destination, 0))
    return Packet(
        time,
        protocol,
        source,
        destination,
        sport,
        dport,
        flags,
        sequence,
        ip_length,
        payload,
        tunnel,
    )


def _with_tunnel(inner: Packet, outer: TunnelKey) -> Packet:
    if inner.tunnel is not None:
        return inner  # the innermost tunnel is the one its flow belongs to
    return Packet(
        inner.time,
        inner.protocol,
        inner.source,
        inner.destination,
        inner.source_port,
        inner.destination_port,
        inner.flags,
        inner.sequence,
        inner.ip_length,
        inner.payload,
        outer,
    )


def _gre(data: bytes, offset: int, end: int, time: float, depth: int) -> Packet | None:
    flags = data[offset]
    protocol = _U16.unpack_from(data, offset + 2)[0]
    position = offset + 4 + 4 * (bool(flags & 0x80) + bool(flags & 0x20) + bool(flags & 0x10))
    if position > end:
        return None
    if protocol == 0x6558:
        ethertype, inner = _ethernet(data[:end], position)
        return _network(data[:end], inner, ethertype, time, None, depth + 1)
    return _network(data[:end], position, protocol, time, None, depth + 1)


def _udp_tunnel(  # noqa: PLR0917 -- private, called positionally
    data: bytes, offset: int, end: int, port: int, time: float, depth: int
) -> Packet | None:
    if port == 4789 and end >= offset + 8 and data[offset] & 0x08:  # VXLAN, I flag set
        ethertype, inner = _ethernet(data[:end], offset + 8)
        return _network(data[:end], inner, ethertype, time, None, depth + 1)
    if port == 6081 and end >= offset + 8 and data[offset] >> 6 == 0:  # Geneve version 0
        options = (data[offset] & 0x3F) * 4
        protocol = _U16.unpack_from(data, offset + 2)[0]
        position = offset + 8 + options
        if protocol == 0x6558:
            ethertype, inner = _ethernet(data[:end], position)
            return _network(data[:end], inner, ethertype, time, None, depth + 1)
        return _network(data[:end], position, protocol, time, None, depth + 1)
    return None
