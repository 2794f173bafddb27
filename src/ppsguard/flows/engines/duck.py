"""The DuckDB engine: DuckDB reads Parquet and CSV in place (folders, globs, Hive partitions)
and hands Arrow record batches to the audit; a second query fetches, per source and in time
order, only the attempts of sources that failed often enough to be scanners. I/O edge.

    result = audit_duckdb(registry, expand(["flows/"]), "web1")

DuckDB does the reading, decompression, projection and, for the scan pass, the semi-join and
ORDER BY (`engines.tables`); the registry is evaluated by the one NumPy evaluator
(`flows.audit_batch`) in this process, on two threads (NumPy and Arrow release the GIL), each
with its own partial, merged at the end. Parsing IPv4 text in DuckDB SQL (split_part) cost 20 s
more than Arrow's kernels on 2M rows (2026-12): addresses are parsed in this process.
"""

from __future__ import annotations

from ppsguard.flows.audit import FlowAudit, finish
from ppsguard.flows.audit_batch import BatchAuditor
from ppsguard.flows.engines.local import AUDIT_BATCH, parallel_audit
from ppsguard.flows.engines.sources import Sources
from ppsguard.flows.engines.tables import batches, relation_sql, suspect_attempts
from ppsguard.flows.scans import candidate_texts, scan_findings
from ppsguard.model.registry import Registry


def audit_duckdb(registry: Registry, sources: Sources, host: str | None = None) -> FlowAudit:
    import duckdb

    auditor = BatchAuditor(registry, host, track_failing=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")  # order is restored by (ts, uid)
    try:
        rows = batches(con, relation_sql(sources), AUDIT_BATCH, sources)
        part, _ = parallel_audit(auditor, rows)
    finally:
        con.close()
    attempts = suspect_attempts(sources, auditor, candidate_texts(part.failing_sources))
    return finish(auditor, part, scan_findings(attempts))
