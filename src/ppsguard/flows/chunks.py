"""Captures read in chunks of records for the vectorised path: one NumPy buffer, record offsets.

    for chunk in read_chunks(stream, name, stats): chunk.data, chunk.start, chunk.length, ...

A classic pcap file is read `CHUNK_BYTES` at a time; a tight loop over the 16-byte record
headers finds where each frame starts (the one sequential step: a record's place depends on the
previous one's length), then times and lengths come out as arrays. pcapng goes through
`capture.read_capture` (its block walk) and its frames are packed into the same kind of chunk.
Either way a chunk holds at most `CHUNK_RECORDS` frames, so memory is bounded by the chunk, not
by the file. The checks and errors are those of `capture.py`, raised at the same record: the
frames before a bad record are yielded first, and the error is raised when the next chunk is
asked for, so the caller accounts for them as the per-frame reader does. Pure: the stream is
passed in.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import BinaryIO, cast

import numpy as np
import numpy.typing as npt

from ppsguard.flows.capture import (
    MAX_RECORD,
    PCAP_MAGIC,
    PCAPNG_SHB,
    Capture,
    CaptureError,
    read_capture,
)

CHUNK_BYTES = 8 << 20
CHUNK_RECORDS = 1 << 17
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Chunk:
    data: npt.NDArray[np.uint8]  # the bytes the frames are in
    start: IntArray  # where each frame's bytes start in `data`
    length: IntArray  # captured length of each frame
    time: npt.NDArray[np.float64]
    linktype: IntArray  # per frame (one value for a pcap file)


def read_chunks(stream: BinaryIO, name: str, stats: Capture | None = None) -> Iterator[Chunk]:
    """Chunks of a pcap or pcapng stream (see the module docstring)."""
    stats = stats or Capture(name)
    magic = stream.read(4)
    if magic in PCAP_MAGIC:
        yield from _pcap_chunks(stream, name, magic, stats)
        return
    if magic == PCAPNG_SHB:
        prefixed = cast(BinaryIO, _Prefixed(magic, stream))
        yield from _frame_chunks(read_capture(prefixed, name, stats))
        return
    shown = magic.hex() or "empty file"
    raise CaptureError(f"not a pcap or pcapng capture (magic {shown}) at byte offset 0", file=name)


class _Prefixed:
    """The stream with its first bytes (already read) put back in front."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self.head = head
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.stream.read(size)
        if size < 0:
            data, self.head = self.head + self.stream.read(), b""
            return data
        data, self.head = self.head[:size], self.head[size:]
        if len(data) < size:
            data += self.stream.read(size - len(data))
        return data


def _pcap_chunks(stream: BinaryIO, name: str, magic: bytes, stats: Capture) -> Iterator[Chunk]:
    order, unit = PCAP_MAGIC[magic]
    header = stream.read(20)
    if len(header) < 20:
        raise CaptureError("truncated pcap file header at byte offset 4", file=name)
    _major, _minor, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", header)
    linktype = network & 0x0FFFFFFF
    word = np.dtype(np.uint32).newbyteorder("<" if order == "<" else ">")
    lengths = struct.Struct(order + "I")
    file_offset = 24  # of buffer[0]
    buffer = b""
    ended = False
    while True:
        if not ended and len(buffer) < CHUNK_BYTES:
            more = stream.read(CHUNK_BYTES)
            ended = not more
            buffer += more
        starts: list[int] = []
        append = starts.append
        error: CaptureError | None = None
        position, size = 0, len(buffer)
        unpack = lengths.unpack_from
        stopped = False
        try:  # the sequential step, kept as tight as Python allows (no bounds test: the
            for _ in repeat(None, CHUNK_RECORDS):  # buffer's end raises struct.error)
                (captured,) = unpack(buffer, position + 8)
                following = position + 16 + captured
                if captured > MAX_RECORD or following > size:
                    stopped = True
                    break
                append(position)
                position = following
        except struct.error:
            pass  # a header cut short by the end of the buffer
        if stopped and position + 16 <= size:  # a whole header: is its length possible?
            (captured,) = unpack(buffer, position + 8)
            if captured > MAX_RECORD:
                error = CaptureError(
                    f"record claims {captured} bytes (snap length {snaplen}) at byte offset "
                    f"{file_offset + position}",
                    file=name,
                )
        if starts:
            stats.frames += len(starts)
            yield _pcap_chunk(buffer, starts, word, unit, linktype)
        if error is not None:
            raise error
        buffer = buffer[position:]
        file_offset += position
        if ended and not starts:
            if buffer:
                stats.truncated += 1  # a header or a frame cut short at the end
            return


def _pcap_chunk(
    buffer: bytes, starts: list[int], word: np.dtype[np.uint32], unit: float, linktype: int
) -> Chunk:
    data = np.frombuffer(buffer, dtype=np.uint8)
    at = np.array(starts, dtype=np.int64)
    fields = data[at[:, None] + np.arange(12)].copy().view(word)  # (n, 3): seconds, fraction, len
    seconds = fields[:, 0].astype(np.float64)
    fraction = fields[:, 1].astype(np.float64)
    length = fields[:, 2].astype(np.int64)
    time = seconds + fraction * unit  # the same IEEE operations as capture.py's
    kinds = np.full(len(at), linktype, dtype=np.int64)
    return Chunk(data, at + 16, length, time, kinds)


def _frame_chunks(frames: Iterator[object]) -> Iterator[Chunk]:
    """Frames of the per-frame reader (pcapng) packed into chunks; its error ends the last."""
    parts: list[bytes] = []
    times: list[float] = []
    kinds: list[int] = []
    try:
        for frame in frames:
            parts.append(frame.data)  # type: ignore[attr-defined]
            times.append(frame.time)  # type: ignore[attr-defined]
            kinds.append(frame.linktype)  # type: ignore[attr-defined]
            if len(parts) >= CHUNK_RECORDS:
                yield _packed(parts, times, kinds)
                parts, times, kinds = [], [], []
    except CaptureError:
        if parts:
            yield _packed(parts, times, kinds)
        raise
    if parts:
        yield _packed(parts, times, kinds)


def _packed(parts: list[bytes], times: list[float], kinds: list[int]) -> Chunk:
    length = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    start = np.zeros(len(parts), dtype=np.int64)
    np.cumsum(length[:-1], out=start[1:])
    data = np.frombuffer(b"".join(parts), dtype=np.uint8)
    return Chunk(data, start, length, np.array(times), np.array(kinds, dtype=np.int64))
