"""Flows coded by an engine's SQL, so that no text crosses into Python per row: each address as
its number in a book of the input's distinct address texts, the protocol as its code, and what
conn_state, history and the packet counts say as flag bits. Pure.

    book = AddressBook.of(origins, responders)      # the distinct texts of each address column
    cols = coded_columns(batch, book)               # the audit's FlowColumns, uid left empty

The flag bits mean what `FlowColumns.of` computes from the texts (the SQL that sets them is
`engines.tables.coded_sql`; the engines' differential tests hold the two to one document).
Coded columns carry no uid: the policy pass that reads them keeps each finding's first flows by
time only, and the flows at those times are read again, whole, for their uids
(`engines.duck`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ppsguard.errors import InputError
from ppsguard.flows.audit_columns import AddressCache, FlowColumns, Parsed, parse_texts
from ppsguard.flows.runs import sorted_runs

ANSWERED, OK, INITIATED = 1, 2, 4
U32 = npt.NDArray[np.uint32]
B = npt.NDArray[np.bool_]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Column:
    """One address column's distinct texts, parsed; a row's code is its text's index here."""

    texts: pa.Array
    parsed: Parsed
    rank: I64  # per text: the dense number of its address (texts of one address share one)
    size: int  # how many distinct addresses
    only_v4: bool  # every address IPv4

    @classmethod
    def of(cls, texts: pa.Array, name: str, cache: dict[str, int]) -> Column:
        if texts.null_count:
            raise InputError(f"column {name}: a flow without an address")
        parsed = parse_texts(texts, name, cache)
        family, high, low = parsed
        order, change = sorted_runs([family, high, low])
        rank = np.empty(order.shape[0], dtype=np.int64)
        rank[order] = np.cumsum(change) - 1
        size = int(rank.max()) + 1 if rank.shape[0] else 0
        return cls(texts, parsed, rank, size, bool((family == 4).all()))

    def take(self, codes: U32) -> Parsed:
        family, high, low = self.parsed
        if self.only_v4:  # no gathers for the columns that say nothing (0.3 s of 20M flows)
            n = codes.shape[0]
            return np.full(n, 4, dtype=np.uint8), np.zeros(n, dtype=np.uint64), low[codes]
        return family[codes], high[codes], low[codes]


@dataclass(frozen=True, slots=True)
class AddressBook:
    origins: Column
    responders: Column

    @classmethod
    def of(cls, origins: pa.Array, responders: pa.Array) -> AddressBook:
        """The distinct texts of `id.orig_h` and `id.resp_h`; InputError for a null or a text
        that is no address, naming its column as the other engines do."""
        cache: dict[str, int] = {}
        return cls(
            Column.of(origins.cast(pa.string()), "id.orig_h", cache),
            Column.of(responders.cast(pa.string()), "id.resp_h", cache),
        )


def flag_states(flags: npt.NDArray[np.integer]) -> tuple[B, B, B]:
    """The flag bits as FlowColumns' answered, ok and initiated."""
    return (flags & ANSWERED) != 0, (flags & OK) != 0, (flags & INITIATED) != 0


def flagged_columns(batch: pa.RecordBatch, cache: AddressCache) -> FlowColumns:
    """A batch whose conn_state, history and packet counts an engine's SQL has turned into the
    flag bits of a column `flags` (`engines.tables.flags_sql`), its other columns as written:
    addresses as texts, uid kept (the Spark engine's policy pass)."""
    flags = np.asarray(batch.column("flags").to_numpy(zero_copy_only=False))
    return FlowColumns.of(batch, cache, flag_states(flags))


def coded_columns(batch: pa.RecordBatch, book: AddressBook) -> FlowColumns:
    """A coded batch (columns src, dst, ts, duration, port, protocol, flags) as FlowColumns;
    `orig_key` is the source's address number (for the dense peer sets)."""
    src = np.asarray(batch.column("src").to_numpy(zero_copy_only=False), dtype=np.intp)
    dst = np.asarray(batch.column("dst").to_numpy(zero_copy_only=False), dtype=np.intp)
    flags = np.asarray(batch.column("flags").to_numpy(zero_copy_only=False))
    n = batch.num_rows
    empty = pc.fill_null(pa.nulls(n, pa.string()), "")
    answered, ok, initiated = flag_states(flags)
    return FlowColumns(
        n=n,
        ts=np.asarray(batch.column("ts").to_numpy(zero_copy_only=False), dtype=np.float64),
        duration=np.asarray(
            batch.column("duration").to_numpy(zero_copy_only=False), dtype=np.float64
        ),
        uid=empty,
        orig=book.origins.take(src),  # type: ignore[arg-type]
        resp=book.responders.take(dst),  # type: ignore[arg-type]
        resp_port=np.asarray(batch.column("port").to_numpy(zero_copy_only=False), np.int64),
        protocol=np.asarray(batch.column("protocol").to_numpy(zero_copy_only=False), np.int64),
        protocol_text=empty,  # coded batches give no attempts (the scan pass reads them again)
        answered=answered,
        ok=ok,
        initiated=initiated,
        orig_key=book.origins.rank[src],
        orig_code=src,
    )
