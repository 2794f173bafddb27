"""Where the flows audit runs: `local` (this process), `duckdb` (reads Parquet/CSV in place),
`spark` (a cluster, `mapInArrow`). Each feeds Arrow batches to the same `flows.audit_batch` code."""

from __future__ import annotations

from ppsguard.flows.audit import FlowAudit
from ppsguard.flows.engines.sources import Sources
from ppsguard.model.registry import Registry

ENGINES = ("auto", "local", "duckdb", "spark")


def choose(engine: str, sources: Sources) -> str:
    """`auto`: DuckDB when every source is a table of flows (Parquet/CSV), else local."""
    if engine != "auto":
        return engine
    return "duckdb" if sources.tables else "local"


def run_audit(
    engine: str,
    registry: Registry,
    sources: Sources,
    host: str | None = None,
    *,
    fmt: str = "auto",
    spark_master: str | None = None,
    partitions: int | None = None,
    progress: bool = False,
) -> FlowAudit:
    engine = "local" if engine == "auto" and fmt != "auto" else choose(engine, sources)
    if engine == "local":
        from ppsguard.flows.engines.local import audit_local

        return audit_local(registry, sources, host, fmt)
    if engine == "duckdb":
        from ppsguard.flows.engines.duck import audit_duckdb

        return audit_duckdb(registry, sources, host)
    from ppsguard.flows.engines.spark import SparkEngine

    spark = SparkEngine(spark_master or "local[*]", partitions=partitions, progress=progress)
    spark.start()
    try:
        return spark.audit(registry, sources, host)
    finally:
        spark.stop()
