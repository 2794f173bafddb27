"""Decode a chunk of frames at once: NumPy columns of what `decode.decode` gives per frame.

    packets = decode_chunk(chunk)   # Columns: time, protocol, addresses, ports, flags, ...

The common frames are decoded with fancy indexing over the chunk's buffer, all at once:
Ethernet (at most one VLAN tag), Linux SLL and SLL2, raw IP; IPv4 (not a later fragment) and
IPv6 without extension headers; TCP, UDP (not VXLAN or Geneve) and ICMP, with the whole
transport header captured. Every other frame — tunnels, MPLS, PPPoE, QinQ, IPv6 extension
headers, fragments, other protocols, loopback links, short or odd headers — goes through the
per-frame decoder (`decode.decode`), so each frame gets exactly the values the per-frame path
would give; frames it cannot decode are left out (counted as undecoded). Addresses are 128-bit
numbers in two uint64 columns (`high` is 0 for IPv4) with `family` 4 or 6. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ppsguard.flows.chunks import Chunk
from ppsguard.flows.decode import ICMP, ICMP6, TCP, UDP, Packet, TunnelKey, decode

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
_VLAN = (0x8100, 0x88A8, 0x9100)
_EXTENSIONS = (0, 43, 44, 60, 51)
HEADER = 96  # bytes of each frame the vectorised path looks at: link + IP options + TCP


@dataclass(slots=True)
class Columns:
    time: npt.NDArray[np.float64]
    protocol: I64
    family: I64  # 4 or 6
    source_high: U64
    source_low: U64
    destination_high: U64
    destination_low: U64
    source_port: I64
    destination_port: I64
    flags: I64
    sequence: I64
    ip_length: I64
    payload: I64
    tunnels: dict[int, TunnelKey]  # row -> the tunnel of a packet that came in one

    def __len__(self) -> int:
        return len(self.time)


def _take(data: npt.NDArray[np.uint8], at: I64, width: int) -> npt.NDArray[np.uint64]:
    """Big-endian unsigned numbers of `width` (2, 4 or 8) bytes at each offset (in range):
    one gather from a view that has a number starting at every byte (stride 1, unaligned)."""
    count = len(data) - width + 1
    if count <= 0:
        return np.zeros(len(at), dtype=np.uint64)
    every = np.ndarray((count,), dtype=f">u{width}", buffer=data, strides=(1,))
    return every[at].astype(np.uint64)


def _any_of(values: I64, choices: tuple[int, ...]) -> npt.NDArray[np.bool_]:
    out: npt.NDArray[np.bool_] = values == choices[0]
    for choice in choices[1:]:
        out |= values == choice
    return out


def _network_start(chunk: Chunk) -> tuple[I64, I64]:
    """(ethertype, offset of the network header) per frame; ethertype -1 sends the frame to
    the per-frame decoder."""
    data, start, length, link = chunk.data, chunk.start, chunk.length, chunk.linktype
    ethertype = np.full(len(start), -1, dtype=np.int64)
    offset = start.copy()
    last = max(len(data) - 1, 0)

    def u16(at: I64) -> I64:
        return _take(data, np.minimum(at, max(last - 1, 0)), 2).astype(np.int64)

    ether = (link == 1) & (length >= 18)
    kind = u16(start + 12)
    tagged = ether & _any_of(kind, _VLAN)
    inner = u16(start + 16)
    ok = ether & ~tagged
    ethertype[ok], offset[ok] = kind[ok], start[ok] + 14
    single = tagged & ~_any_of(inner, _VLAN) & (length >= 22)
    ethertype[single], offset[single] = inner[single], start[single] + 18
    sll = (link == 113) & (length >= 16)
    ethertype[sll], offset[sll] = u16(start + 14)[sll], start[sll] + 16
    sll2 = (link == 276) & (length >= 20)
    ethertype[sll2], offset[sll2] = u16(start)[sll2], start[sll2] + 20
    version = data[np.minimum(start, last)] >> 4
    raw = _any_of(link, (101, 12, 14)) & (length >= 1)
    ethertype[raw & (version == 4)] = 0x0800
    ethertype[raw & (version == 6)] = 0x86DD
    ethertype[link == 228] = 0x0800
    ethertype[link == 229] = 0x86DD
    return ethertype, offset


def _headers(chunk: Chunk) -> tuple[Chunk, npt.NDArray[np.bool_]]:
    """The first `HEADER` bytes of every frame copied into one compact matrix (one pass over
    the buffer; every later gather then hits a small, ordered array), as a chunk of its own;
    and which frames have all their `HEADER` bytes there (the last frames of a buffer may not)."""
    data, start = chunk.data, chunk.start
    windows_count = len(data) - HEADER + 1
    whole = start < windows_count
    if windows_count <= 0:  # a buffer shorter than one header (even empty: zero-length frames)
        data = np.concatenate([data, np.zeros(HEADER - len(data), dtype=np.uint8)])
        windows_count = 1
    windows = np.lib.stride_tricks.as_strided(data, (windows_count, HEADER), (1, 1))
    matrix = windows[np.minimum(start, windows_count - 1)]
    compact = Chunk(
        matrix.reshape(-1),
        np.arange(len(start), dtype=np.int64) * HEADER,
        chunk.length,
        chunk.time,
        chunk.linktype,
    )
    return compact, whole


def decode_chunk(chunk: Chunk) -> Columns:
    """The decoded packets of a chunk, in frame order (see the module docstring)."""
    original = chunk
    chunk, whole = _headers(chunk)
    data, start, length = chunk.data, chunk.start, chunk.length
    ethertype, net = _network_start(chunk)
    end_of_frame = start + length
    last = max(len(data) - 1, 0)
    # IPv4
    v4 = (ethertype == 0x0800) & (end_of_frame >= net + 20)
    v6 = (ethertype == 0x86DD) & (end_of_frame >= net + 40)
    safe_net = np.where(v4 | v6, net, 0)
    first = data[safe_net].astype(np.int64)
    v4 &= first >> 4 == 4
    v6 &= first >> 4 == 6
    header = (first & 0x0F) * 4
    word = _take(data, np.minimum(safe_net, max(last - 3, 0)), 4).astype(np.int64)
    total = np.where(v4, word & 0xFFFF, 0)
    v4 &= (header >= 20) & (total >= header)
    fragment_word = _take(data, np.minimum(safe_net + 6, max(last - 1, 0)), 2).astype(np.int64)
    v4 &= (fragment_word & 0x1FFF) == 0
    protocol = np.where(v4, data[np.minimum(safe_net + 9, last)], 0).astype(np.int64)
    # IPv6 (no extension headers)
    length_word = _take(data, np.minimum(safe_net + 4, max(last - 1, 0)), 2).astype(np.int64)
    payload_length = np.where(v6, length_word, 0)
    next_header = data[np.minimum(safe_net + 6, last)].astype(np.int64)
    v6 &= ~_any_of(next_header, _EXTENSIONS)
    protocol = np.where(v6, next_header, protocol)
    transport = np.where(v4, net + header, net + 40)
    ip_length = np.where(v4, total, 40 + payload_length)
    end = np.minimum(end_of_frame, np.where(v4, net + total, net + 40 + payload_length))
    ip = v4 | v6
    tcp = ip & (protocol == TCP) & (end >= transport + 14)
    udp = ip & (protocol == UDP) & (end >= transport + 8)
    icmp = ip & _any_of(protocol, (ICMP, ICMP6)) & (end >= transport + 2)
    safe_t = np.where(tcp | udp | icmp, transport, 0)
    ports = _take(data, np.minimum(safe_t, max(last - 3, 0)), 4).astype(np.int64)
    source_port = ports >> 16
    destination_port = ports & 0xFFFF
    udp &= ~_any_of(destination_port, (4789, 6081))
    fast = (tcp | udp | icmp) & whole & (transport + 14 <= start + HEADER)
    rows = np.flatnonzero(fast)
    t = transport[rows]
    proto = protocol[rows]
    is_tcp, is_udp = proto == TCP, proto == UDP
    is_icmp = ~(is_tcp | is_udp)
    row_end = end[rows]
    offset_byte = data[t + np.where(is_tcp, 12, 0)].astype(np.int64)
    payload = np.maximum(np.where(is_tcp, row_end - t - (offset_byte >> 4) * 4, row_end - t - 8), 0)
    flags = np.where(is_tcp, data[t + np.where(is_tcp, 13, 0)], 0).astype(np.int64)
    sequence = np.where(is_tcp, _take(data, t + np.where(is_tcp, 4, 0), 4).astype(np.int64), 0)
    first_byte = data[t].astype(np.int64)
    second_byte = data[t + 1].astype(np.int64)
    sport = np.where(is_icmp, first_byte, source_port[rows])
    dport = np.where(is_icmp, second_byte, destination_port[rows])
    row_net = net[rows]
    row_v6 = v6[rows]
    family = np.where(row_v6, 6, 4).astype(np.int64)
    zero = np.zeros(len(rows), dtype=np.uint64)
    src_high, src_low, dst_high, dst_low = zero.copy(), zero.copy(), zero.copy(), zero.copy()
    four = np.flatnonzero(~row_v6)
    src_low[four] = _take(data, row_net[four] + 12, 4)
    dst_low[four] = _take(data, row_net[four] + 16, 4)
    six = np.flatnonzero(row_v6)
    src_high[six] = _take(data, row_net[six] + 8, 8)
    src_low[six] = _take(data, row_net[six] + 16, 8)
    dst_high[six] = _take(data, row_net[six] + 24, 8)
    dst_low[six] = _take(data, row_net[six] + 32, 8)
    fast_columns = Columns(
        chunk.time[rows], proto, family, src_high, src_low, dst_high, dst_low,
        sport, dport, flags, sequence, ip_length[rows], payload, {},
    )  # fmt: skip
    slow = np.flatnonzero(~fast)
    if len(slow) == 0:
        return fast_columns
    return _merge(fast_columns, rows, _slow(original, slow))


def _slow(chunk: Chunk, rows: I64) -> tuple[I64, list[Packet]]:
    """The per-frame decoder on the frames the vectorised path leaves out."""
    raw = chunk.data.tobytes() if len(rows) > 64 else None
    found_rows: list[int] = []
    packets: list[Packet] = []
    for row in rows.tolist():
        begin = int(chunk.start[row])
        stop = begin + int(chunk.length[row])
        frame = raw[begin:stop] if raw is not None else chunk.data[begin:stop].tobytes()
        packet = decode(frame, int(chunk.linktype[row]), float(chunk.time[row]))
        if packet is not None:
            found_rows.append(row)
            packets.append(packet)
    return np.array(found_rows, dtype=np.int64), packets


def _address(raw: bytes) -> tuple[int, int, int]:
    value = int.from_bytes(raw, "big")
    return (4 if len(raw) == 4 else 6), value >> 64, value & 0xFFFFFFFFFFFFFFFF


def _merge(fast: Columns, fast_rows: I64, slow: tuple[I64, list[Packet]]) -> Columns:
    """The two sets of rows in frame order."""
    slow_rows, packets = slow
    order = np.argsort(np.concatenate([fast_rows, slow_rows]), kind="stable")
    sources = [_address(p.source) for p in packets]
    destinations = [_address(p.destination) for p in packets]
    extra: dict[str, list[float] | list[int]] = {
        "time": [p.time for p in packets],
        "protocol": [p.protocol for p in packets],
        "family": [s[0] for s in sources],
        "source_high": [s[1] for s in sources],
        "source_low": [s[2] for s in sources],
        "destination_high": [d[1] for d in destinations],
        "destination_low": [d[2] for d in destinations],
        "source_port": [p.source_port for p in packets],
        "destination_port": [p.destination_port for p in packets],
        "flags": [p.flags for p in packets],
        "sequence": [p.sequence for p in packets],
        "ip_length": [p.ip_length for p in packets],
        "payload": [p.payload for p in packets],
    }
    merged: dict[str, npt.NDArray[np.generic]] = {}
    for name, values in extra.items():
        ours = getattr(fast, name)
        theirs = np.array(values, dtype=ours.dtype)
        merged[name] = np.concatenate([ours, theirs])[order]
    columns = Columns(**merged, tunnels={})  # type: ignore[arg-type]
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    base = len(fast_rows)
    for index, packet in enumerate(packets):
        if packet.tunnel is not None:
            columns.tunnels[int(position[base + index])] = packet.tunnel
    return columns
