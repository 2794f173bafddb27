"""What `pps flows audit` reads: PATHs as files, folders (Hive-partitioned Parquet included) and
globs, expanded and checked once, the same way for every engine. I/O edge.

    sources = expand(["flows/", "2026-12-*.parquet", "conn.log"])
    sources.kind            # "table" (Parquet/CSV of flows), "evidence" (anything else), "mixed"

A folder contributes its files, recursively, except hidden ones and Spark's `_SUCCESS`-style
markers; a glob its matches (`**` recurses). A Parquet file is checked here (its schema against
`flows.audit_columns`), so a missing column, a column of the wrong type or an unreadable file is the
same one-line error whatever the engine. URLs (s3a://, hdfs://, abfss://...) are passed to
Spark as they are.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ppsguard.errors import InputError
from ppsguard.flows.audit_columns import COLUMNS, check_schema, kind_of
from ppsguard.flows.columnar import SCHEMA
from ppsguard.infile import open_regular

_GLOB = set("*?[")


@dataclass(frozen=True, slots=True)
class Source:
    path: str
    kind: str  # "parquet" (flows with Zeek's names), "csv", "url", "evidence" (any reader's)
    columns: tuple[str, ...] = ()  # the audit's columns the file has
    hive: bool = False  # under a folder named as a PATH: partition columns may follow


@dataclass(frozen=True, slots=True)
class Sources:
    items: tuple[Source, ...] = field(default_factory=tuple)

    @property
    def paths(self) -> list[str]:
        return [s.path for s in self.items]

    @property
    def tables(self) -> bool:
        """Whether every source is a table of flows (Parquet or CSV): DuckDB's and Spark's."""
        return bool(self.items) and all(s.kind in ("parquet", "csv", "url") for s in self.items)

    @property
    def columns(self) -> tuple[str, ...]:
        present = {c for s in self.items for c in s.columns}
        return tuple(c for c in COLUMNS if c in present)


def _files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )


def _source(path: Path, hive: bool) -> Source:
    name = str(path)
    fd = open_regular(path, "evidence file")  # a FIFO or device is refused, never read
    try:
        head = os.read(fd, 4)
    finally:
        os.close(fd)
    if head == b"PAR1":
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"not a readable Parquet file: {exc}", file=name) from exc
        if "id.orig_h" not in schema.names and "srcaddr" in schema.names:
            return Source(name, "evidence")  # VPC flow logs as Parquet: the local reader stitches
        check_schema(schema, name)
        return Source(name, "parquet", tuple(c for c in COLUMNS if c in schema.names), hive)
    if path.suffix == ".csv" or path.name.endswith(".csv.gz"):
        return _csv(path, hive)
    return Source(name, "evidence")


def csv_options(columns: tuple[str, ...] | None) -> pacsv.ConvertOptions:
    """Zeek's column types for a CSV of flows (`-` and empty cells are null)."""
    types = {f.name: f.type for f in SCHEMA if f.name in COLUMNS}
    return pacsv.ConvertOptions(
        column_types=types,
        null_values=["", "-"],
        strings_can_be_null=True,
        include_columns=list(columns) if columns is not None else None,
    )


def _csv(path: Path, hive: bool) -> Source:
    name = str(path)
    try:
        reader = pacsv.open_csv(path, convert_options=csv_options(None))
        schema = reader.schema
        reader.close()
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"not a readable CSV file of flows: {exc}", file=name) from exc
    check_schema(schema, name)
    kinds = {f.name: kind_of(f.type) for f in schema}
    return Source(name, "csv", tuple(c for c in COLUMNS if c in kinds), hive)


def expand(paths: list[str]) -> Sources:
    """Every PATH as sources, in the order given (a folder's and a glob's files sorted)."""
    out: list[Source] = []
    for text in paths:
        if "://" in text:
            out.append(Source(text, "url"))
            continue
        if text == "-":
            out.append(Source(text, "evidence"))
            continue
        if _GLOB & set(text):
            found = glob.glob(text, recursive=True)  # noqa: PTH207 -- any pattern, absolute too
            matches = sorted(Path(m) for m in found)
            files = [m for m in matches if m.is_file()]
            if not files:
                raise InputError("no file matches", file=text)
            out += [_source(m, False) for m in files]
            continue
        path = Path(text)
        if path.is_dir():
            files = _files(path)
            if not files:
                raise InputError("an empty folder: no files to audit", file=text)
            out += [_source(f, True) for f in files]
        elif path.exists():
            out.append(_source(path, False))
        else:
            raise InputError("no such file or folder", file=text)
    return Sources(tuple(out))
