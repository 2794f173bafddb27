"""The Spark engine: the same audit on a cluster, where the flows are. I/O edge.

    engine = SparkEngine("spark://127.0.0.1:7077", partitions=64, progress=True)
    engine.start()                     # one clear RuntimeFailure without Java or pyspark
    result = engine.audit(registry, expand(["s3a://bucket/flows/"]), "web1")
    engine.stop()

Spark reads the Parquet (or CSV) where it lies — any path or URL its Hadoop configuration can
read — and each executor runs `flows.audit_batch` on its Arrow record batches through `mapInArrow`
(no pandas), folding them into one partial per partition; the driver merges the partials.
Spark's SQL first turns conn_state, history and the packet counts into flag bits (`flagged`).
Scan detection: the sources that failed often enough (counted in the partials) have their
attempts fetched, grouped per source with `groupBy(...).applyInArrow`, ordered and fed to the
detectors of `pps watch` on the executors, which walk only the sources that could be scanners
(`scans.could_scan`). The table engines first group the suspects' contacts to fetch fewer
attempts (`tables.possible_suspects`); here that was one more job, 0.8-1.4 s of a warm 2M-flow
audit of 5-7 s with nothing to gain (all 20 suspects were scanners; 2026-12), and the
executors already share the walking. Executors import ppsguard: install the package
where they run (the same virtualenv for a local or test cluster; `--py-files` or the image on
EMR/Databricks). The Spark UI and console progress are off; progress is a Rich bar on stderr
fed by Spark's status tracker.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ppsguard.errors import InputError, RuntimeFailure
from ppsguard.flows.audit import FlowAudit, finish
from ppsguard.flows.audit_batch import ATTEMPT_SCHEMA, BatchAuditor
from ppsguard.flows.audit_columns import check_columns
from ppsguard.flows.columnar import BATCH
from ppsguard.flows.engines.sources import Sources
from ppsguard.flows.engines.tables import Dialect, flags_sql
from ppsguard.flows.scans import ScanFinding, candidate_texts, scan_source, source_groups
from ppsguard.model.registry import Registry

SIGNED = "src_family int, src_high long, src_low long, ts double, duration double, \
dst_family int, dst_high long, dst_low long, port long, protocol string, ok boolean"
FOUND = "source string, message string, count long"
LOG_CONFIG = Path(__file__).with_name("spark_log4j2.properties")  # the driver's log: quiet
_UNSIGNED = ("src_high", "src_low", "dst_high", "dst_low")
_KINDS = {"string": "text", "bigint": "integer", "int": "integer", "smallint": "integer",
          "tinyint": "integer", "double": "number", "float": "number", "void": "null"}  # fmt: skip


def _plain(name: str) -> str:
    return name.replace(".", "__")


def _dotted(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.rename_columns([n.replace("__", ".") for n in batch.schema.names])


SPARK = Dialect(lambda name: f"`{_plain(name)}`", "STRING", "startswith")
# what the policy pass reads besides the flag bits (`flagged`)
POLICY_INPUTS = ("ts", "uid", "duration", "id.orig_h", "id.resp_h", "id.resp_p", "proto")


def flagged(frame: Any) -> Any:
    """The policy pass's columns of `frame`, with conn_state, history and the packet counts as
    flag bits (`tables.flags_sql`, the SQL the DuckDB engine runs too): four columns, three of
    them texts, leave the JVM as one byte, and id.orig_p (unread) stays. Spark's Arrow export
    of the texts is most of the pass: on 2M flows (local[2], 2026-12, old and new alternating)
    the pass took 3.2-4.1 s with every column, 3.0-3.3 s so."""
    from pyspark.sql import functions as f

    present = {name.replace("__", ".") for name in frame.columns}
    flags = f.expr(f"CAST({flags_sql(present, SPARK)} AS TINYINT)").alias("flags")
    return frame.select(*[_plain(c) for c in POLICY_INPUTS if c in present], flags)


def java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def to_signed(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Attempts for Spark, which has no unsigned types (bits kept, reinterpreted)."""
    arrays = []
    for field in ATTEMPT_SCHEMA:
        column = batch.column(field.name)
        if field.name in _UNSIGNED:
            column = pa.array(np.asarray(column.to_numpy()).view(np.int64))
        elif field.type == pa.uint8():
            column = column.cast(pa.int32())
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=ATTEMPT_SCHEMA.names)


def from_signed(table: pa.Table) -> pa.Table:
    arrays = []
    for field in ATTEMPT_SCHEMA:
        column = table.column(field.name).combine_chunks()
        if field.name in _UNSIGNED:
            column = pa.array(np.asarray(column.to_numpy()).astype(np.int64).view(np.uint64))
        arrays.append(column.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=ATTEMPT_SCHEMA)


_AUDITORS: dict[bytes, BatchAuditor] = {}  # per Python worker: compiled once, reused by tasks


def _auditor(registry: bytes) -> BatchAuditor:
    """The auditor of a pickled (registry, host), compiled once per executor Python worker:
    tasks carry the registry (small), not the compiled lookup tables (tens of MB)."""
    auditor = _AUDITORS.get(registry)
    if auditor is None:
        loaded, host = pickle.loads(registry)  # noqa: S301 -- our own driver's registry
        auditor = _AUDITORS[registry] = BatchAuditor(loaded, host, track_failing=True)
    return auditor


def _scan_group(table: pa.Table) -> pa.Table:
    found: list[ScanFinding] = []
    for source, group in source_groups(from_signed(table)):
        finding = scan_source(source, group)
        if finding is not None:
            found.append(finding)
    return pa.table(
        {
            "source": pa.array([f.source for f in found], pa.string()),
            "message": pa.array([f.message for f in found], pa.string()),
            "count": pa.array([f.count for f in found], pa.int64()),
        }
    )


def _failure(exc: Exception) -> Exception:
    """An executor's InputError comes back inside Spark's exception text: one line again."""
    text = str(exc)
    found = re.search(r"ppsguard\.errors\.InputError: (.+)", text)
    if found:
        return InputError(found.group(1).strip())
    first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    return RuntimeFailure(f"Spark failed: {first[:300]}")


class SparkEngine:
    """One Spark session; `progress` draws the bar on `console` (default: a Rich console on
    stderr)."""

    def __init__(
        self, master: str, *, partitions: int | None, progress: bool, console: Any = None
    ) -> None:
        self.master = master
        self.partitions = partitions
        self.progress = progress
        self.console = console
        self.session: Any = None

    def start(self) -> None:
        if java() is None:
            raise RuntimeFailure(
                "--engine spark needs Java: set JAVA_HOME or put java on PATH "
                "(Debian: apt install default-jre-headless)"
            )
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise RuntimeFailure(
                "--engine spark needs pyspark: pip install 'ppsguard[spark]'"
            ) from None
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = (
            SparkSession.builder.master(self.master)
            .appName("pps flows audit")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(BATCH))
            .config("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"])
            .config("spark.sql.shuffle.partitions", str(self.partitions or 8))
        )
        if self.master.startswith("local") or "//127.0.0.1:" in self.master:
            builder = builder.config("spark.driver.host", "127.0.0.1").config(
                "spark.driver.bindAddress", "127.0.0.1"
            )
        ours = "LOG4J_CONFIGURATION_FILE" not in os.environ  # the user's own log wins
        if ours:  # read by the driver's JVM as it starts, and by no other
            os.environ["LOG4J_CONFIGURATION_FILE"] = str(LOG_CONFIG)
        try:
            self.session = builder.getOrCreate()
        except Exception as exc:
            raise RuntimeFailure(f"Spark did not start: {str(exc).splitlines()[0]}") from exc
        finally:
            if ours:
                os.environ.pop("LOG4J_CONFIGURATION_FILE", None)
        if ours:  # failures are ours to report; a user's own log keeps its levels
            self.session.sparkContext.setLogLevel("FATAL")

    def stop(self) -> None:
        if self.session is not None:
            self.session.stop()
            self.session = None

    def _frame(self, sources: Sources) -> Any:
        """One DataFrame of the audit's columns over every source. Local files were checked
        by `sources.expand`; a URL's schema is checked here, the same way."""
        from pyspark.sql import functions as f

        from ppsguard.flows.audit_columns import COLUMNS
        from ppsguard.flows.columnar import SCHEMA

        reader = self.session.read
        parquet = [s.path for s in sources.items if s.kind in ("parquet", "url")]
        csv = [s.path for s in sources.items if s.kind == "csv"]
        other = [s for s in sources.items if s.kind not in ("parquet", "csv", "url")]
        if other:
            raise InputError(
                "Spark reads Parquet and CSV tables of flows; use --engine local for this file",
                file=other[0].path,
            )
        frames = []
        try:
            if parquet:
                frame = reader.parquet(*parquet)
                urls = [s.path for s in sources.items if s.kind == "url"]
                if urls:
                    check_columns(
                        {x.name: _KINDS.get(x.dataType.simpleString(), x.dataType.simpleString())
                         for x in frame.schema},
                        urls[0],
                    )  # fmt: skip
                frames.append(frame)
            if csv:
                frame = reader.option("header", True).option("nullValue", "-").csv(csv)
                types = {x.name: {"int64": "bigint", "double": "double"}.get(str(x.type), "string")
                         for x in SCHEMA}  # fmt: skip
                frames.append(
                    frame.select(
                        [
                            f.col(f"`{c}`").cast(types[c]).alias(c)
                            for c in frame.columns
                            if c in types
                        ]
                    )
                )
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"Spark could not read the flows: {str(exc).splitlines()[0]}") from exc
        wanted = [c for c in COLUMNS if any(c in frame.columns for frame in frames)]
        selected = [  # dotted names would be nested fields to Spark's resolver
            frame.select([f.col(f"`{c}`").alias(_plain(c)) for c in wanted if c in frame.columns])
            for frame in frames
        ]
        frame = selected[0]
        for more in selected[1:]:
            frame = frame.unionByName(more, allowMissingColumns=True)
        if self.partitions:
            frame = frame.repartition(self.partitions)
        return frame

    def audit(self, registry: Registry, sources: Sources, host: str | None = None) -> FlowAudit:
        from pyspark.sql import functions as f

        auditor = BatchAuditor(registry, host, track_failing=True)
        shipped = pickle.dumps((registry, host))
        frame = self._frame(sources)

        def audit_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            auditor = _auditor(shipped)
            part = auditor.partial()
            for batch in batches:
                auditor.audit_flagged(_dotted(batch), part)
            yield pa.RecordBatch.from_pydict({"part": [pickle.dumps(part)]})

        def attempts(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            auditor = _auditor(shipped)
            for batch in batches:
                yield to_signed(auditor.attempts(_dotted(batch)))

        with StageProgress(self.session, self.progress, self.console):
            try:
                rows = flagged(frame).mapInArrow(audit_partition, "part binary").collect()
                part = auditor.partial()
                for row in rows:
                    part.merge(pickle.loads(row["part"]))  # noqa: S301 -- our own partials
                suspects = candidate_texts(part.failing_sources)
                scans: list[ScanFinding] = []
                if suspects:
                    found = (
                        frame.filter(f.col(_plain("id.orig_h")).isin(suspects))
                        .mapInArrow(attempts, SIGNED)
                        .groupBy("src_family", "src_high", "src_low")
                        .applyInArrow(_scan_group, FOUND)
                        .collect()
                    )
                    scans = [ScanFinding(r["source"], r["message"], r["count"]) for r in found]
            except (InputError, RuntimeFailure):
                raise
            except Exception as exc:
                raise _failure(exc) from exc
        return finish(auditor, part, scans)


class StageProgress:
    """A Rich bar on stderr: tasks done of the active stages, from Spark's status tracker,
    polled every `every` seconds."""

    every = 0.5

    def __init__(self, session: Any, enabled: bool, console: Any = None) -> None:
        self.session = session
        self.enabled = enabled
        self.console = console
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> StageProgress:
        if self.enabled:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _run(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        tracker = self.session.sparkContext.statusTracker()
        with Progress(
            TextColumn("spark stage {task.fields[stage]}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=self.console or Console(stderr=True),
            transient=True,
        ) as bar:
            task = bar.add_task("tasks", total=None, stage="-")
            while not self.done.wait(self.every):
                total = completed = 0
                stages = tracker.getActiveStageIds()
                for stage in stages:
                    info = tracker.getStageInfo(stage)
                    if info is not None:
                        total += info.numTasks
                        completed += info.numCompletedTasks
                if stages:
                    bar.update(
                        task, total=total, completed=completed, stage=",".join(map(str, stages))
                    )
