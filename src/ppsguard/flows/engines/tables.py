"""Tables of flows as DuckDB reads them: one SELECT over every source, and the queries the
engines build on it. I/O edge.

    sql = relation_sql(sources)                        # Parquet and CSV, folders, globs, Hive
    attempts = suspect_attempts(sources, auditor, scans.suspects(failing))  # the local engine's
    addresses_sql(sources), coded_sql(sources), at_times_sql(sources)  # the DuckDB engine's

Both engines read the suspects' attempts with `first_contacts_sql`: DuckDB pushes the
`IN (suspects)` filter into its scan and decodes the other columns only for the rows that pass
(on 20M flows with 812 suspects, 0.55 s where Arrow's Parquet reader, filtering batch by batch,
took 2.0 s; 2026-12), then keeps only the rows TRW can step on. The DuckDB engine's other
queries are described in `engines.duck`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from ppsguard.errors import InputError
from ppsguard.flows.audit_batch import ATTEMPT_INPUTS, ATTEMPT_SCHEMA, BatchAuditor
from ppsguard.flows.audit_columns import ESTABLISHED, PROTOCOL_NAMES
from ppsguard.flows.coded import ANSWERED, INITIATED, OK
from ppsguard.flows.engines.sources import Sources
from ppsguard.monitor.trw import Trw


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


def _cast(present: set[str], name: str, sql_type: str) -> str:
    """A column of the relation as `sql_type`, NULL when no source has it."""
    return f'CAST("{name}" AS {sql_type})' if name in present else f"CAST(NULL AS {sql_type})"


def _initiated(present: set[str]) -> str:
    """A real opening, not backscatter picked up mid-stream: `FlowColumns.initiated`."""
    return f"NOT starts_with(coalesce({_cast(present, 'history', 'VARCHAR')}, ''), '^')"


def addresses_sql(sources: Sources) -> str:
    """The distinct texts of both address columns in one scan: `g` is 0 for id.orig_h's."""
    return (
        'SELECT CAST("id.orig_h" AS VARCHAR) AS o, CAST("id.resp_h" AS VARCHAR) AS r, '  # noqa: S608 -- names ours, paths quoted
        f'GROUPING("id.orig_h") AS g FROM ({relation_sql(sources)}) '
        'GROUP BY GROUPING SETS (("id.orig_h"), ("id.resp_h"))'
    )


def coded_sql(sources: Sources) -> str:
    """Every flow coded (`flows.coded`): address texts as their numbers in the tables
    pps_orig and pps_resp (h, i), the protocol as its code, conn_state, history and packets as
    flag bits: the rules of `FlowColumns.of`, written in SQL."""
    present = set(sources.columns)
    state = _cast(present, "conn_state", "VARCHAR")
    both = (
        f"(coalesce({_cast(present, 'orig_pkts', 'BIGINT')}, 0) <> 0 "
        f"AND coalesce({_cast(present, 'resp_pkts', 'BIGINT')}, 0) <> 0)"
    )
    established = ", ".join(_quote(s) for s in ESTABLISHED)
    answered = f"(CASE WHEN {state} IS NULL THEN {both} ELSE {state} IN ({established}) END)"
    ok = f"({answered} AND NOT coalesce({state} = 'RSTO', false))"
    initiated = _initiated(present)
    flags = " + ".join(
        f"(CASE WHEN {test} THEN {bit} ELSE 0 END)"
        for test, bit in ((answered, ANSWERED), (ok, OK), (initiated, INITIATED))
    )
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


def at_times_sql(sources: Sources) -> str:
    """The flows, whole, whose time is in the table pps_times (t): each finding's first flows."""
    ts = _cast(set(sources.columns), "ts", "DOUBLE")
    return (
        f"SELECT * FROM ({relation_sql(sources)}) "  # noqa: S608 -- names ours, paths quoted
        f"WHERE coalesce({ts}, 0) IN (SELECT t FROM pps_times)"
    )


def first_contacts_sql(sources: Sources) -> str:
    """What the scan pass needs of the sources in the table pps_suspects (h: a text as written,
    k: its address's number): TRW steps on first contacts only (`scans.first_contacts`), so
    only the initiated flows at the earliest time of each (source, target, port), and every
    initiated flow of a source with more (target, port)s than TRW remembers. Targets and ports
    are keyed as written, which can only split a pair: the scan pass then picks the exact
    first contacts among rows that include them all.

    Grouping and the join run in DuckDB: at 100M flows every client had failed often enough
    to be a suspect, and the scan pass fetched and sorted 90M attempts; the first contacts of
    20M flows' every source were 5.0M rows (2026-12)."""
    present = set(sources.columns)
    wanted = [c for c in sources.columns if c in ATTEMPT_INPUTS]
    inner = ", ".join(f'f."{c}"' for c in wanted)
    outer = ", ".join(f'a."{c}"' for c in wanted)
    ts = f"coalesce({_cast(present, 'ts', 'DOUBLE')}, 0)"
    target = _cast(present, "id.resp_h", "VARCHAR")
    port = _cast(present, "id.resp_p", "BIGINT")
    remembered = Trw().max_targets
    return (
        f"WITH a AS (SELECT {inner}, s.k AS pps_k, {ts} AS pps_t, {target} AS pps_d, "  # noqa: S608 -- names ours, paths quoted
        f"{port} AS pps_p FROM ({relation_sql(sources)}) AS f "
        'JOIN pps_suspects AS s ON f."id.orig_h" = s.h '
        f'WHERE f."id.orig_h" IN (SELECT h FROM pps_suspects) AND {_initiated(present)}), '
        "x AS (SELECT pps_k, pps_d, pps_p, min(pps_t) AS t, "
        f"count(*) OVER (PARTITION BY pps_k) > {remembered} AS many "
        "FROM a GROUP BY pps_k, pps_d, pps_p) "
        f"SELECT {outer} FROM a JOIN x ON a.pps_k = x.pps_k "
        "AND a.pps_d IS NOT DISTINCT FROM x.pps_d AND a.pps_p IS NOT DISTINCT FROM x.pps_p "
        "WHERE x.many OR a.pps_t = x.t"
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


def scan_attempts(
    con: object, sources: Sources, auditor: BatchAuditor, suspects: pa.Table
) -> pa.Table:
    """The attempts the scan pass needs of `suspects` (`scans.suspects`: h, k), in no order
    (the scan pass makes its own), through the connection `con`."""
    if not suspects.num_rows:
        return pa.Table.from_batches([], schema=ATTEMPT_SCHEMA)
    con.register("pps_suspects", suspects)  # type: ignore[attr-defined]
    rows = batches(con, first_contacts_sql(sources), 1 << 16, sources)
    found = [auditor.attempts(batch) for batch in rows]
    return pa.Table.from_batches(found, schema=ATTEMPT_SCHEMA)


def suspect_attempts(sources: Sources, auditor: BatchAuditor, suspects: pa.Table) -> pa.Table:
    """`scan_attempts` on a connection of its own (the local engine's second read)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = false")
        return scan_attempts(con, sources, auditor, suspects)
    finally:
        con.close()
