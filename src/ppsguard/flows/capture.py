"""Read pcap and pcapng captures: frames with their time, link type and bytes.

    for frame in read_capture(stream, name="trace.pcap"): ...

`read_capture` takes a binary stream (the edge opens the file) and yields `Frame(time, linktype,
data, offset)`; it never holds the whole capture. Both formats in both byte orders, microsecond
and nanosecond pcap, pcapng's section header, interface description (with `if_tsresol`),
enhanced and simple packet blocks; other pcapng blocks are skipped.

Hostile captures: a wrong magic, a truncated header or record, a record claiming more than
`MAX_RECORD` bytes (or more than the snap length allows) and a pcapng block whose length is too
small or not a multiple of 4 raise `CaptureError` naming the file and byte offset. A frame cut
short at the very end of a file is counted in `Capture.truncated` and reading stops there.
Pure: the stream is passed in.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ppsguard.errors import InputError

MAX_RECORD = 262_144  # the largest snap length in use (tcpdump's default)
MAX_BLOCK = 16 << 20
PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"


class CaptureError(InputError):
    """A capture that cannot be read: names the file and the byte offset."""


@dataclass(frozen=True, slots=True)
class Frame:
    time: float
    linktype: int
    data: bytes
    offset: int  # where the record starts in the file
    length: int  # the frame's length on the wire (may exceed len(data) when snapped)


@dataclass(slots=True)
class Capture:
    """Counters of one read, filled while frames are yielded."""

    name: str
    frames: int = 0
    truncated: int = 0
    skipped_blocks: int = 0


def _fail(name: str, offset: int, message: str) -> CaptureError:
    return CaptureError(f"{message} at byte offset {offset}", file=name)


def read_capture(stream: BinaryIO, name: str, stats: Capture | None = None) -> Iterator[Frame]:
    """Frames of a pcap or pcapng stream (see the module docstring)."""
    stats = stats or Capture(name)
    magic = stream.read(4)
    if magic in PCAP_MAGIC:
        yield from _pcap(stream, name, magic, stats)
    elif magic == PCAPNG_SHB:
        yield from _pcapng(stream, name, stats)
    else:
        shown = magic.hex() or "empty file"
        raise _fail(name, 0, f"not a pcap or pcapng capture (magic {shown})")


def _pcap(stream: BinaryIO, name: str, magic: bytes, stats: Capture) -> Iterator[Frame]:
    order, unit = PCAP_MAGIC[magic]
    header = stream.read(20)
    if len(header) < 20:
        raise _fail(name, 4, "truncated pcap file header")
    _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", header)
    linktype = network & 0x0FFFFFFF
    limit = min(max(snaplen, 1), MAX_RECORD) if snaplen else MAX_RECORD
    record = struct.Struct(order + "IIII")
    offset = 24
    while True:
        head = stream.read(16)
        if not head:
            return
        if len(head) < 16:
            stats.truncated += 1
            return
        seconds, fraction, captured, original = record.unpack(head)
        if captured > max(limit, MAX_RECORD) or captured > MAX_RECORD:
            raise _fail(name, offset, f"record claims {captured} bytes (snap length {snaplen})")
        data = stream.read(captured)
        if len(data) < captured:
            stats.truncated += 1
            return
        stats.frames += 1
        yield Frame(seconds + fraction * unit, linktype, data, offset, max(original, captured))
        offset += 16 + captured


def _pcapng(stream: BinaryIO, name: str, stats: Capture) -> Iterator[Frame]:
    offset = 0
    order = "<"
    interfaces: list[tuple[int, float]] = []
    first = True
    while True:
        head = PCAPNG_SHB if first else stream.read(4)
        if not head:
            return
        length_raw = stream.read(4)
        if len(head) < 4 or len(length_raw) < 4:
            stats.truncated += 1
            return
        if first:
            magic = stream.read(4)
            if magic == b"\x1a\x2b\x3c\x4d":
                order = ">"
            elif magic != b"\x4d\x3c\x2b\x1a":
                raise _fail(name, 8, "pcapng section header with an unknown byte-order magic")
        (block_type,) = struct.unpack(order + "I", head)
        (total,) = struct.unpack(order + "I", length_raw)
        if total < 12 or total % 4 or total > MAX_BLOCK:
            raise _fail(name, offset, f"pcapng block of impossible length {total}")
        body_size = total - 12 - (4 if first else 0)
        body = stream.read(body_size)
        trailer = stream.read(4)
        if len(body) < body_size or len(trailer) < 4:
            stats.truncated += 1
            return
        if block_type == 0x0A0D0D0A:
            if not first:
                interfaces = []  # a new section starts its own interface list
                order = ">" if body[:4] == b"\x1a\x2b\x3c\x4d" else "<"
        elif block_type == 1:
            interfaces.append(_interface(body, order))
        elif block_type == 6:
            frame = _enhanced(body, order, interfaces, name, offset)
            if frame is not None:
                stats.frames += 1
                yield frame
        elif block_type == 3 and interfaces:
            (original,) = struct.unpack_from(order + "I", body, 0)
            data = body[4 : 4 + min(original, len(body) - 4)]
            stats.frames += 1
            yield Frame(0.0, interfaces[0][0], data, offset, original)
        else:
            stats.skipped_blocks += 1
        offset += total
        first = False


def _interface(body: bytes, order: str) -> tuple[int, float]:
    linktype = struct.unpack_from(order + "H", body, 0)[0] if len(body) >= 2 else 1
    resolution = 1e-6
    position = 8
    while position + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, position)
        if code == 0:
            break
        if code == 9 and size >= 1:  # if_tsresol
            value = body[position + 4]
            resolution = 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0**-value
        position += 4 + size + (-size % 4)
    return linktype, resolution


def _enhanced(
    body: bytes, order: str, interfaces: list[tuple[int, float]], name: str, offset: int
) -> Frame | None:
    if len(body) < 20:
        raise _fail(name, offset, "pcapng enhanced packet block shorter than its header")
    interface, high, low, captured, original = struct.unpack_from(order + "IIIII", body, 0)
    if interface >= len(interfaces):
        raise _fail(name, offset, f"packet on undeclared interface {interface}")
    if captured > len(body) - 20 or captured > MAX_RECORD:
        raise _fail(name, offset, f"packet claims {captured} bytes in a block of {len(body)}")
    linktype, resolution = interfaces[interface]
    stamp = ((high << 32) | low) * resolution
    return Frame(stamp, linktype, body[20 : 20 + captured], offset, max(original, captured))
