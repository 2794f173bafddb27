"""Tables of flows as DuckDB reads them: one SELECT over every source, and the queries the
engines build on it. I/O edge.

    sql = relation_sql(sources)                        # Parquet and CSV, folders, globs, Hive
    attempts = suspect_attempts(sources, auditor, scans.suspects(failing))  # the local engine's
    addresses_sql(sources), coded_sql(sources), second_read_sql(sources)  # the DuckDB engine's

Both engines' scan passes read the suspects' rows twice: their contacts, grouped in DuckDB,
decide which suspects could be scanners (`possible_suspects`); only those sources' attempts are
fetched (`attempts_of`; the DuckDB engine's `second_read_sql`, with its other rows). DuckDB
pushes the `IN (suspects)` filter into its scan and decodes the other columns only for the rows
that pass (on 20M flows with 812 suspects, 0.55 s where Arrow's Parquet reader, filtering batch
by batch, took 2.0 s; 2026-12). At 100M flows every client had failed often enough to be a
suspect: fetching their 90M attempts and sorting them per source had been most of the audit.
The DuckDB engine's other queries are described in `engines.duck`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ppsguard.errors import InputError
from ppsguard.flows.audit_batch import ATTEMPT_INPUTS, ATTEMPT_SCHEMA, BatchAuditor
from ppsguard.flows.audit_columns import (
    ESTABLISHED,
    PROTOCOL_NAMES,
    AddressCache,
    parse_addresses,
)
from ppsguard.flows.coded import ANSWERED, INITIATED, OK
from ppsguard.flows.engines.sources import Sources
from ppsguard.flows.scans import ANSWER_TIMEOUT, possible_scanners


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(paths: list[str]) -> str:
    return "[" + ", ".join(_quote(p) for p in paths) + "]"


def relation_sql(sources: Sources) -> str:
    """One SELECT of the audit's columns over every source (missing columns are NULL)."""
    columns = ", ".join(f'"{c}"' for c in sources.columns)
    parts = []
    parquet = [s for s in sources.items if s.kind == "parquet"]
    csv = [s for s in sources.items if s.kind == "csv"]
    other = [s for s in sources.items if s.kind not in ("parquet", "csv")]
    if other:
        raise InputError(
            "DuckDB reads Parquet and CSV tables of flows; use --engine local for this file",
            file=other[0].path,
        )
    if parquet:
        hive = "true" if any(s.hive for s in parquet) else "false"
        parts.append(
            f"SELECT {columns} FROM read_parquet("  # noqa: S608 -- names ours, paths quoted
            f"{_list([s.path for s in parquet])}, "
            f"union_by_name = true, hive_partitioning = {hive})"
        )
    if csv:
        from ppsguard.flows.columnar import SCHEMA

        types = {"int64": "BIGINT", "double": "DOUBLE", "string": "VARCHAR"}
        wanted = ", ".join(
            f"{_quote(f.name)}: {_quote(types[str(f.type)])}"
            for f in SCHEMA
            if f.name in sources.columns
        )
        parts.append(
            f"SELECT {columns} FROM read_csv("  # noqa: S608 -- names ours, paths quoted
            f"{_list([s.path for s in csv])}, header = true, "
            f"union_by_name = true, nullstr = ['', '-'], types = {{{wanted}}})"
        )
    return " UNION ALL BY NAME ".join(parts)


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between DuckDB's SQL and Spark's in the expressions both engines run
    (`flags_sql`): how a column is named, the text type, the prefix test."""

    name: Callable[[str], str]
    text: str
    starts_with: str


DUCKDB = Dialect(lambda name: f'"{name}"', "VARCHAR", "starts_with")


def _cast(present: set[str], name: str, sql_type: str, dialect: Dialect = DUCKDB) -> str:
    """A column of the relation as `sql_type`, NULL when no source has it."""
    if name not in present:
        return f"CAST(NULL AS {sql_type})"
    return f"CAST({dialect.name(name)} AS {sql_type})"


def _initiated(present: set[str], dialect: Dialect = DUCKDB) -> str:
    """A real opening, not backscatter picked up mid-stream: `FlowColumns.initiated`."""
    history = _cast(present, "history", dialect.text, dialect)
    return f"NOT {dialect.starts_with}(coalesce({history}, ''), '^')"


def addresses_sql(sources: Sources) -> str:
    """The distinct texts of both address columns in one scan: `g` is 0 for id.orig_h's."""
    return (
        'SELECT CAST("id.orig_h" AS VARCHAR) AS o, CAST("id.resp_h" AS VARCHAR) AS r, '  # noqa: S608 -- names ours, paths quoted
        f'GROUPING("id.orig_h") AS g FROM ({relation_sql(sources)}) '
        'GROUP BY GROUPING SETS (("id.orig_h"), ("id.resp_h"))'
    )


def _answered_ok(present: set[str], dialect: Dialect = DUCKDB) -> tuple[str, str]:
    """`FlowColumns.answered` and `.ok` (answered, not aborted by the originator) in SQL."""
    state = _cast(present, "conn_state", dialect.text, dialect)
    both = (
        f"(coalesce({_cast(present, 'orig_pkts', 'BIGINT', dialect)}, 0) <> 0 "
        f"AND coalesce({_cast(present, 'resp_pkts', 'BIGINT', dialect)}, 0) <> 0)"
    )
    established = ", ".join(_quote(s) for s in ESTABLISHED)
    answered = f"(CASE WHEN {state} IS NULL THEN {both} ELSE {state} IN ({established}) END)"
    return answered, f"({answered} AND NOT coalesce({state} = 'RSTO', false))"


def flags_sql(present: set[str], dialect: Dialect = DUCKDB) -> str:
    """conn_state, history and the packet counts as the flag bits of `flows.coded` (0-7): the
    rules of `FlowColumns.of`, written in SQL, for the columns in `present`."""
    answered, ok = _answered_ok(present, dialect)
    initiated = _initiated(present, dialect)
    return " + ".join(
        f"(CASE WHEN {test} THEN {bit} ELSE 0 END)"
        for test, bit in ((answered, ANSWERED), (ok, OK), (initiated, INITIATED))
    )


def coded_sql(sources: Sources) -> str:
    """Every flow coded (`flows.coded`): address texts as their numbers in the tables
    pps_orig and pps_resp (h, i), the protocol as its code, conn_state, history and packets as
    flag bits (`flags_sql`)."""
    present = set(sources.columns)
    flags = flags_sql(present)
    codes = " ".join(f"WHEN {_quote(name)} THEN {i}" for i, name in enumerate(PROTOCOL_NAMES))
    return (
        "SELECT o.i AS src, r.i AS dst, "  # noqa: S608 -- names ours, paths quoted
        f"coalesce({_cast(present, 'ts', 'DOUBLE')}, 0) AS ts, "
        f"coalesce({_cast(present, 'duration', 'DOUBLE')}, 0) AS duration, "
        f"coalesce({_cast(present, 'id.resp_p', 'BIGINT')}, 0) AS port, "
        f"CAST(CASE {_cast(present, 'proto', 'VARCHAR')} {codes} ELSE -1 END AS TINYINT) "
        f"AS protocol, CAST({flags} AS UTINYINT) AS flags "
        f"FROM ({relation_sql(sources)}) AS f "
        'JOIN pps_orig AS o ON f."id.orig_h" = o.h JOIN pps_resp AS r ON f."id.resp_h" = r.h'
    )


def second_read_sql(sources: Sources) -> str:
    """The flows, whole, whose time is in the table pps_times (t) or whose source text is in
    pps_suspects (h): each finding's first flows and the possible scanners' attempts."""
    ts = _cast(set(sources.columns), "ts", "DOUBLE")
    return (
        f"SELECT * FROM ({relation_sql(sources)}) "  # noqa: S608 -- names ours, paths quoted
        f"WHERE coalesce({ts}, 0) IN (SELECT t FROM pps_times) "
        'OR "id.orig_h" IN (SELECT h FROM pps_suspects)'
    )


def contacts_sql(sources: Sources) -> str:
    """Per (source, target, port) of the sources in the table pps_suspects (h: a text as
    written, k: its address's number), over their initiated flows: the earliest time (t), the
    earliest time of a success (t_ok: answered, not aborted, within the answer timeout, as the
    scan pass decides) and of a failure (t_fail). Targets are texts as written (the scan pass
    parses them); ports and times as `FlowColumns.of` reads them (null: 0)."""
    present = set(sources.columns)
    _, ok = _answered_ok(present)
    ts = f"coalesce({_cast(present, 'ts', 'DOUBLE')}, 0)"
    duration = f"coalesce({_cast(present, 'duration', 'DOUBLE')}, 0)"
    success = f"(ok AND (t + u) - t < {ANSWER_TIMEOUT!r})"
    return (
        f"SELECT k, d, p, min(t) AS t, min(t) FILTER (WHERE {success}) AS t_ok, "  # noqa: S608 -- names ours, paths quoted
        f"min(t) FILTER (WHERE NOT {success}) AS t_fail FROM ("
        f"SELECT s.k AS k, {_cast(present, 'id.resp_h', 'VARCHAR')} AS d, "
        f"coalesce({_cast(present, 'id.resp_p', 'BIGINT')}, 0) AS p, {ts} AS t, "
        f"{duration} AS u, {ok} AS ok FROM ({relation_sql(sources)}) AS f "
        'JOIN pps_suspects AS s ON f."id.orig_h" = s.h '
        f'WHERE f."id.orig_h" IN (SELECT h FROM pps_suspects) AND {_initiated(present)}'
        ") GROUP BY k, d, p"
    )


def attempts_of_sql(sources: Sources) -> str:
    """The flows of the sources in the table pps_suspects (h), in the columns attempts need."""
    wanted = ", ".join(f'"{c}"' for c in sources.columns if c in ATTEMPT_INPUTS)
    return (
        f"SELECT {wanted} FROM ({relation_sql(sources)}) "  # noqa: S608 -- names ours, paths quoted
        'WHERE "id.orig_h" IN (SELECT h FROM pps_suspects)'
    )


def batches(con: object, sql: str, size: int, sources: Sources) -> Iterator[pa.RecordBatch]:
    """The rows of `sql` as Arrow batches of `size` rows; DuckDB's error as one InputError
    that names the file (DuckDB's message does not always: a corrupt page gives "Variable-length
    int over 10 bytes.")."""
    import duckdb

    try:
        reader = con.sql(sql).to_arrow_reader(size)  # type: ignore[attr-defined]
        yield from reader
    except duckdb.Error as exc:
        message = str(exc).splitlines()[0]
        paths = [s.path for s in sources.items]
        named = any(p in message for p in paths)
        where = paths[0] if len(paths) == 1 else f"one of {len(paths)} files from {paths[0]}"
        raise InputError(
            f"DuckDB could not read the flows: {message}", file=None if named else where
        ) from exc


def possible_suspects(
    con: object, sources: Sources, auditor: BatchAuditor, suspects: pa.Table
) -> pa.Table:
    """Those of `suspects` (`scans.suspects`: h, k) that could be scanners, decided from their
    contacts (`contacts_sql`, `scans.possible_scanners`), through the connection `con`."""
    if not suspects.num_rows:
        return suspects
    con.register("pps_suspects", suspects)  # type: ignore[attr-defined]
    found = list(batches(con, contacts_sql(sources), 1 << 20, sources))
    keep = possible_scanners(_contacts(pa.Table.from_batches(found), auditor)) if found else []
    return suspects.filter(pc.is_in(suspects.column("k"), value_set=pa.array(keep, pa.int64())))


def attempts_of(
    con: object, sources: Sources, auditor: BatchAuditor, suspects: pa.Table
) -> pa.Table:
    """The attempts of `suspects` (h), in no order (the scan pass makes its own)."""
    if not suspects.num_rows:
        return pa.Table.from_batches([], schema=ATTEMPT_SCHEMA)
    con.register("pps_suspects", suspects)  # type: ignore[attr-defined]
    rows = batches(con, attempts_of_sql(sources), 1 << 16, sources)
    return pa.Table.from_batches([auditor.attempts(b) for b in rows], schema=ATTEMPT_SCHEMA)


def _contacts(found: pa.Table, auditor: BatchAuditor) -> pa.Table:
    """`contacts_sql`'s rows with their targets parsed, the host's only (the attempts)."""
    parsed = parse_addresses(found.column("d").combine_chunks(), "id.resp_h", AddressCache())
    table = pa.table(
        {
            "k": found.column("k"), "dst_family": parsed[0], "dst_high": parsed[1],
            "dst_low": parsed[2], "port": found.column("p"), "t": found.column("t"),
            "t_ok": found.column("t_ok"), "t_fail": found.column("t_fail"),
        }
    )  # fmt: skip
    return table.filter(pa.array(auditor.inbound(parsed)))


def suspect_attempts(sources: Sources, auditor: BatchAuditor, suspects: pa.Table) -> pa.Table:
    """The attempts of those `suspects` that could be scanners, on a connection of its own
    (the local engine's second read)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = false")
        possible = possible_suspects(con, sources, auditor, suspects)
        return attempts_of(con, sources, auditor, possible)
    finally:
        con.close()
