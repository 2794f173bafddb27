"""Open evidence files and turn them into flows, whatever their format. I/O edge.

    for flow in read_flows(Path("trace.pcap")): ...
    read_flows(path, fmt="auto" | "pcap" | "zeek" | "vpc" | "netlog" | "netflow")

Only regular files (or `-`, standard input) are read, streamed, never whole; gzip is
decompressed on the fly. `netflow` reads a capture of NetFlow/IPFIX export datagrams. `auto`
looks at the first bytes: a pcap/pcapng magic is a capture, a `#separator` line or a JSON
object with `id.orig_h` a Zeek conn.log, a `version account-id` header or a 14-field line
starting with `2 ` a VPC flow log, a line with `SRC=` and `DST=` a firewall log, `PAR1` a
Parquet file of flows or of VPC flow logs. Anything else is one clear error naming the file.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ppsguard.errors import InputError, PpsError
from ppsguard.flows.capture import PCAP_MAGIC, PCAPNG_SHB, Capture, read_capture
from ppsguard.flows.decode import decode
from ppsguard.flows.logs import LogStats, read_eve, read_vpc, read_zeek
from ppsguard.flows.netlog import read_netlog
from ppsguard.flows.table import FlowTable
from ppsguard.infile import open_regular
from ppsguard.model.flows import Flow

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

FORMATS = ("auto", "pcap", "zeek", "eve", "vpc", "netlog", "netflow", "parquet")
MAX_LINE = 1 << 20


Reader = io.BufferedReader  # a buffered binary stream we can peek into


def open_binary(path: Path) -> Reader:
    """A stream of a regular file (or stdin for `-`), gzip decompressed when it is gzip."""
    if str(path) == "-":
        raw = cast(io.RawIOBase, getattr(sys.stdin.buffer, "raw", sys.stdin.buffer))
        buffered: Reader = cast(Reader, io.BufferedReader(raw, buffer_size=1 << 20))
    else:
        fd = open_regular(path, "evidence file")  # the project's one opener of outside files
        buffered = cast(Reader, os.fdopen(fd, "rb", buffering=1 << 20))
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        unpacked = _Gunzip(gzip.GzipFile(fileobj=buffered), str(path))
        return _Unpacked(unpacked, buffered)
    return buffered


class _Gunzip(io.RawIOBase):
    """The decompressed bytes; a cut or corrupt gzip stream is one InputError naming the file
    (GzipFile raises EOFError, BadGzipFile or zlib.error, mid-read)."""

    def __init__(self, unpacked: gzip.GzipFile, name: str) -> None:
        super().__init__()
        self.unpacked, self.name = unpacked, name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        try:
            return self.unpacked.readinto(buffer)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(f"not a whole gzip stream ({exc})", file=self.name) from exc

    def close(self) -> None:
        try:
            self.unpacked.close()
        finally:
            super().close()


class _Unpacked(io.BufferedReader):
    """A decompressed stream that also closes the file under it (GzipFile does not)."""

    def __init__(self, raw: io.RawIOBase, underlying: Reader) -> None:
        super().__init__(raw, buffer_size=1 << 20)
        self.underlying = underlying

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.underlying.close()


def detect(head: bytes) -> str:
    if head[:4] in PCAP_MAGIC or head[:4] == PCAPNG_SHB:
        return "pcap"
    if head[:4] == b"PAR1":
        return "parquet"
    text = head.decode("utf-8", "replace")
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    if first.startswith("#separator") or (first.startswith("{") and '"id.orig_h"' in first):
        return "zeek"
    if first.startswith("{") and '"event_type"' in first:
        return "eve"
    if (
        first.startswith("version ")
        or "srcaddr" in first
        or (first.startswith("2 ") and len(first.split()) == 14)
    ):
        return "vpc"
    if "SRC=" in text and "DST=" in text:
        return "netlog"
    return "unknown"


def _lines(stream: Reader, name: str) -> Iterator[str]:
    for number, raw in enumerate(stream, start=1):
        if len(raw) > MAX_LINE:
            raise InputError(f"line longer than {MAX_LINE} bytes", file=name, line=number)
        yield raw.decode("utf-8", "replace")


def read_flows(
    path: Path,
    fmt: str = "auto",
    *,
    skip_bad: bool = False,
    stats: dict[str, int] | None = None,
    chunked: bool = True,
) -> Iterator[Flow]:
    """The flows of one evidence file (see the module docstring)."""
    name = str(path)
    if fmt == "parquet" or (fmt == "auto" and _is_parquet(path)):
        from ppsguard.flows.columnar import read_parquet

        open_binary(path).close()  # the same checks: a regular file we may read
        yield from read_parquet(path, name)
        return
    with open_binary(path) as peeker:
        kind = detect(peeker.peek(4096)[:4096]) if fmt == "auto" else fmt
        if kind == "netflow":
            yield from _netflow_capture(peeker, name, stats)
            return
        if kind == "pcap":
            yield from capture_flows(peeker, name, stats, chunked=chunked)
            return
        log = LogStats(name)
        if kind == "zeek":
            yield from read_zeek(_lines(peeker, name), name, skip_bad=skip_bad, stats=log)
        elif kind == "eve":
            yield from read_eve(_lines(peeker, name), name, skip_bad=skip_bad, stats=log)
        elif kind == "vpc":
            yield from read_vpc(_lines(peeker, name), name, skip_bad=skip_bad, stats=log)
        elif kind == "netlog":
            yield from read_netlog(_lines(peeker, name), name, stats=log)
        else:
            raise InputError(
                "not a capture, Zeek conn.log, Suricata EVE, VPC flow log or firewall log "
                "(use --format)",
                file=name,
            )
        if stats is not None:
            stats.update(lines=log.lines, skipped=log.skipped)


def capture_flows(
    stream: Reader, name: str, stats: dict[str, int] | None = None, *, chunked: bool = True
) -> Iterator[Flow]:
    """The flows of a pcap or pcapng stream: by chunks of frames (`chunks`, `columns`,
    `chunktable`: vectorised), or with `chunked=False` frame by frame (`capture`, `decode`,
    `table`: the reference the chunked path is tested against). Same flows, same order."""
    capture = Capture(name)
    table = FlowTable(source=f"pcap:{name}")
    decoded = 0
    if chunked:
        from ppsguard.flows.chunks import read_chunks
        from ppsguard.flows.chunktable import ChunkTable
        from ppsguard.flows.columns import decode_chunk

        chunk_table = ChunkTable(table)
        for chunk in read_chunks(stream, name, capture):
            columns = decode_chunk(chunk)
            decoded += len(columns)
            yield from chunk_table.add(columns)
        yield from chunk_table.flush()
    else:
        for frame in read_capture(stream, name, capture):
            packet = decode(frame.data, frame.linktype, frame.time)
            if packet is None:
                continue
            decoded += 1
            yield from table.add(packet)
        yield from table.flush()
    if stats is not None:
        stats.update(
            frames=capture.frames, truncated=capture.truncated, undecoded=capture.frames - decoded
        )


def _netflow_capture(stream: Reader, name: str, stats: dict[str, int] | None) -> Iterator[Flow]:
    """A capture of NetFlow/IPFIX export datagrams (UDP) replayed into the collector's decoder."""
    from ppsguard.flows.decode import UDP
    from ppsguard.flows.netflow import NetflowDecoder
    from ppsguard.flows.stitch import Stitcher

    decoder = NetflowDecoder()
    stitcher = Stitcher(f"netflow:{name}")
    for frame in read_capture(stream, name):
        packet = decode(frame.data, frame.linktype, frame.time)
        if packet is None or packet.protocol != UDP or not packet.payload:
            continue
        payload = frame.data[len(frame.data) - packet.payload :]
        exporter = ".".join(str(b) for b in packet.source) if len(packet.source) == 4 else ""
        for record in decoder.decode(payload, exporter or packet.source.hex(), frame.time):
            yield from stitcher.add(record)
    yield from stitcher.flush()
    if stats is not None:
        counters = decoder.stats
        stats.update(records=counters.records, gaps=counters.gaps, missing=counters.missing)


def _is_parquet(path: Path) -> bool:
    """Whether a regular file starts with Parquet's magic (a FIFO or device is never opened
    for reading here: `open_binary` refuses it with one clear line)."""
    if str(path) == "-":
        return False
    try:  # through the one opener: a plain open() of a FIFO would block here forever
        fd = open_regular(path, "evidence file")
    except PpsError:
        return False  # open_binary, next, reports what is wrong with it
    with os.fdopen(fd, "rb") as head:
        return head.read(4) == b"PAR1"
