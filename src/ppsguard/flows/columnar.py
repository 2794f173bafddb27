"""Flows as Arrow record batches and Parquet files, and VPC flow logs kept as Parquet.

    write_parquet(flows, Path("flows.parquet"))        # streamed, 65,536 flows per batch
    for batch in flow_batches(flows): ...              # pyarrow.RecordBatch, Zeek's column names
    read_vpc_parquet(Path("vpc.parquet"), name)        # one-way records, stitched into biflows

Columns are Zeek's conn.log names (`id.orig_h` ... `community_id`) plus `source`, `action` and
`entry`, with Arrow types (timestamps as float64 seconds like Zeek's `ts`, counts as int64,
addresses as strings). The writer holds one batch at a time and writes through
`ppsguard.files.atomic_file` (a temporary file beside the target, never through a symlink,
synced, renamed into place only when complete): a failed write leaves no half file and the
previous one intact. VPC Parquet uses the same column names as the text format (`srcaddr`,
`dstport`, ..., with `-` or null for missing values).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ppsguard.digits import finite, ranged
from ppsguard.errors import InputError
from ppsguard.flows.records import FIELDS, flow_values
from ppsguard.flows.stitch import OneWay, Stitcher
from ppsguard.model.flows import Flow
from ppsguard.model.net import IPAddress

BATCH = 65_536
_STRING, _INT, _FLOAT = pa.string(), pa.int64(), pa.float64()
SCHEMA = pa.schema(
    [
        ("ts", _FLOAT), ("uid", _STRING), ("id.orig_h", _STRING), ("id.orig_p", _INT),
        ("id.resp_h", _STRING), ("id.resp_p", _INT), ("proto", _STRING), ("service", _STRING),
        ("duration", _FLOAT), ("orig_bytes", _INT), ("resp_bytes", _INT),
        ("conn_state", _STRING), ("missed_bytes", _INT), ("history", _STRING),
        ("orig_pkts", _INT), ("orig_ip_bytes", _INT), ("resp_pkts", _INT),
        ("resp_ip_bytes", _INT), ("tunnel_parents", pa.list_(_STRING)),
        ("community_id", _STRING), ("source", _STRING), ("action", _STRING), ("entry", _STRING),
    ]
)  # fmt: skip
assert tuple(SCHEMA.names[: len(FIELDS)]) == FIELDS


def flow_batches(flows: Iterable[Flow], size: int = BATCH) -> Iterator[pa.RecordBatch]:
    iterator = iter(flows)
    while chunk := list(islice(iterator, size)):
        columns: list[list[object]] = [[] for _ in SCHEMA.names]
        for flow in chunk:
            values = (*flow_values(flow), flow.source, flow.action, flow.entry)
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(column, type=field.type)
                for column, field in zip(columns, SCHEMA, strict=True)
            ],
            schema=SCHEMA,
        )


def write_parquet(flows: Iterable[Flow], path: Path) -> int:
    """Write flows to `path` (streamed, through the one atomic writer); returns how many."""
    from ppsguard.files import atomic_file

    written = 0
    with (
        atomic_file(path) as handle,
        pq.ParquetWriter(handle, SCHEMA, compression="zstd") as writer,
    ):
        for batch in flow_batches(flows):
            writer.write_batch(batch)
            written += batch.num_rows
    return written


def readable(batches: Iterable[pa.RecordBatch], name: str, what: str) -> Iterator[pa.RecordBatch]:
    """A reader's batches; a page or block it cannot read (corrupt, cut short, bad compression:
    Arrow raises OSError or ArrowException mid-file) is one InputError naming the file."""
    try:
        yield from batches
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"not a readable {what}: {exc}", file=name) from exc


def read_vpc_parquet(path: Path, name: str) -> Iterator[Flow]:
    """VPC flow logs stored as Parquet (the columns of the text format)."""
    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", file=name) from exc
    missing = {"srcaddr", "dstaddr", "srcport", "dstport", "protocol"} - set(parquet.schema.names)
    if missing:
        raise InputError(f"VPC Parquet without column(s) {', '.join(sorted(missing))}", file=name)
    stitcher = Stitcher(f"vpc:{name}")
    row_number = 0
    for batch in readable(parquet.iter_batches(batch_size=BATCH), name, "Parquet file"):
        for row in batch.to_pylist():
            row_number += 1
            if row.get("log-status") in ("NODATA", "SKIPDATA") or row.get("srcaddr") in (None, "-"):
                continue
            try:
                record = OneWay(
                    src=ipaddress.ip_address(str(row["srcaddr"])),
                    dst=ipaddress.ip_address(str(row["dstaddr"])),
                    sport=_integer(row.get("srcport")),
                    dport=_integer(row.get("dstport")),
                    protocol=_integer(row.get("protocol")),
                    packets=_integer(row.get("packets")),
                    size=_integer(row.get("bytes")),
                    start=finite(row.get("start") or 0, "start"),
                    end=finite(row.get("end") or 0, "end"),
                    action=None if row.get("action") in (None, "-") else str(row["action"]),
                )
            except (ValueError, TypeError) as exc:
                raise InputError(f"row {row_number}: {exc}", file=name) from exc
            yield from stitcher.add(record)
    yield from stitcher.flush()


def read_flow_parquet(path: Path, name: str) -> Iterator[Flow]:
    """Flows written by `pps flows read --parquet` (Zeek's column names)."""
    parquet = pq.ParquetFile(path)
    row_number = 0
    for batch in readable(parquet.iter_batches(batch_size=BATCH), name, "Parquet file"):
        for row in batch.to_pylist():
            row_number += 1
            try:
                yield _flow_row(row, name)
            except (ValueError, TypeError) as exc:
                raise InputError(f"row {row_number}: {exc}", file=name) from exc


def _needed(row: dict[str, Any], column: str) -> Any:
    value = row.get(column)
    if value is None:
        raise ValueError(f"{column}: no value")
    return value


def _address(row: dict[str, Any], column: str) -> IPAddress:
    text = str(_needed(row, column))
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{column}: not an IP address: {text!r}") from None


def _flow_row(row: dict[str, Any], name: str) -> Flow:
    """One row of a table of flows; a bad value is a ValueError naming its column."""
    duration = row.get("duration")
    return Flow(
        ts=finite(_needed(row, "ts"), "ts"),
        uid=str(_needed(row, "uid")),
        orig_h=_address(row, "id.orig_h"),
        orig_p=ranged(int(_needed(row, "id.orig_p")), 0xFFFF, "id.orig_p"),
        resp_h=_address(row, "id.resp_h"),
        resp_p=ranged(int(_needed(row, "id.resp_p")), 0xFFFF, "id.resp_p"),
        proto=str(_needed(row, "proto")),
        service=row.get("service"),
        duration=None if duration is None else finite(duration, "duration"),
        orig_bytes=row.get("orig_bytes"),
        resp_bytes=row.get("resp_bytes"),
        conn_state=row.get("conn_state"),
        missed_bytes=row.get("missed_bytes"),
        history=row.get("history"),
        orig_pkts=row.get("orig_pkts"),
        orig_ip_bytes=row.get("orig_ip_bytes"),
        resp_pkts=row.get("resp_pkts"),
        resp_ip_bytes=row.get("resp_ip_bytes"),
        tunnel_parents=tuple(row.get("tunnel_parents") or ()),
        community_id=row.get("community_id"),
        source=row.get("source") or f"parquet:{name}",
        action=row.get("action"),
        entry=row.get("entry"),
    )


def read_parquet(path: Path, name: str) -> Iterator[Flow]:
    """A Parquet file of flows (ours) or of VPC flow logs, by its columns."""
    try:
        columns = set(pq.ParquetFile(path).schema.names)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", file=name) from exc
    if "id.orig_h" in columns:
        return read_flow_parquet(path, name)
    return read_vpc_parquet(path, name)


def _integer(value: object) -> int:
    if value in (None, "-"):
        return 0
    return int(str(value))
