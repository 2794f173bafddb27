"""The Spark engine gives the document the local engine gives: on random flow sets (local[2]),
on Hive-partitioned folders, with the same one-line error for a bad value found on an executor,
and on a real standalone cluster (a master and two workers started here) through the CLI."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsguard.errors import InputError
from ppsguard.flows.audit import document
from ppsguard.flows.columnar import write_parquet
from ppsguard.flows.engines import run_audit
from ppsguard.flows.engines.sources import expand
from ppsguard.flows.engines.spark import SparkEngine, flagged
from ppsguard.registry.load import load_registry
from ppsguard.testing.flowsets import (
    STATE_COLUMNS_DROPPED,
    flags_read_from_texts,
    odd_tables,
    probe_flows,
    random_flows,
    refused_tables,
    state_cases,
)
from ppsguard.testing.spark import SparkCluster, require_spark

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
REGISTRY = load_registry(SEED)


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 150))
def test_spark_duckdb_and_local_give_one_document(
    spark_engine: SparkEngine, tmp_path: Path, seed: int, count: int
) -> None:
    flows = random_flows(random.Random(seed), count)
    folder = tmp_path / f"set-{seed}-{count}"
    folder.mkdir()
    write_parquet(flows[: count // 2], folder / "a.parquet")
    write_parquet(flows[count // 2 :], folder / "b.parquet")
    sources = expand([str(folder)])
    local = document(run_audit("local", REGISTRY, sources, "building"))
    assert document(run_audit("duckdb", REGISTRY, sources, "building")) == local
    assert document(spark_engine.audit(REGISTRY, sources, "building")) == local


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), count=st.integers(20, 200))
def test_spark_finds_the_scans_of_probes_like_the_others(
    spark_engine: SparkEngine, tmp_path: Path, seed: int, count: int
) -> None:
    """Probes with repeats and ties in time: Spark walks every suspect's attempts on its
    executors, the local engine only those its contacts say could be scanners; one document."""
    flows = probe_flows(random.Random(seed), count)
    path = tmp_path / f"probes-{seed}-{count}.parquet"
    write_parquet(flows, path)
    sources = expand([str(path)])
    local = document(run_audit("local", REGISTRY, sources, "building"))
    assert document(spark_engine.audit(REGISTRY, sources, "building")) == local


def test_spark_reads_hive_partitions_like_the_others(
    spark_engine: SparkEngine, tmp_path: Path
) -> None:
    flows = random_flows(random.Random(11), 300)
    for day, part in (("2026-12-01", flows[:100]), ("2026-12-02", flows[100:])):
        (tmp_path / f"day={day}").mkdir()
        write_parquet(part, tmp_path / f"day={day}" / "part-0.parquet")
    sources = expand([str(tmp_path)])
    local = document(run_audit("local", REGISTRY, sources, "building"))
    assert local["counts"]  # the set holds findings worth comparing
    assert document(spark_engine.audit(REGISTRY, sources, "building")) == local


def test_a_bad_value_on_an_executor_is_the_same_one_line_error(
    spark_engine: SparkEngine, tmp_path: Path
) -> None:
    good = tmp_path / "good.parquet"
    write_parquet(random_flows(random.Random(3), 30), good)
    table = pq.read_table(good)
    values = table.column("id.orig_h").to_pylist()
    values[5] = "not-an-address"
    bad = tmp_path / "bad.parquet"
    index = table.schema.get_field_index("id.orig_h")
    pq.write_table(table.set_column(index, "id.orig_h", pa.array(values)), bad)
    sources = expand([str(bad)])
    messages = []
    for run in (
        lambda: run_audit("local", REGISTRY, sources, "building"),
        lambda: spark_engine.audit(REGISTRY, sources, "building"),
    ):
        with pytest.raises(InputError) as caught:
            run()
        messages.append(str(caught.value))
    assert messages[0] == messages[1] == "column id.orig_h: not an IP address: 'not-an-address'"


def test_odd_tables_give_the_local_document_and_bad_ones_the_same_error(
    spark_engine: SparkEngine, tmp_path: Path
) -> None:
    """No rows and columns typed null (`odd_tables`): the local document; flows without an
    address or with times that are not finite (`refused_tables`): the local engine's error."""
    good = tmp_path / "good.parquet"
    write_parquet(random_flows(random.Random(8), 120), good)
    table = pq.read_table(good)
    for kind, odd in odd_tables(table).items():
        path = tmp_path / f"{kind}.parquet"
        pq.write_table(odd, path)
        sources = expand([str(path)])
        local = document(run_audit("local", REGISTRY, sources, "building"))
        assert document(spark_engine.audit(REGISTRY, sources, "building")) == local, kind
    for kind, (bad, message) in refused_tables(table).items():
        path = tmp_path / f"{kind}.parquet"
        pq.write_table(bad, path)
        with pytest.raises(InputError) as caught:
            spark_engine.audit(REGISTRY, expand([str(path)]), "building")
        assert str(caught.value) == message, kind


def test_a_bad_value_is_one_line_on_stderr_from_the_spark_command(tmp_path: Path) -> None:
    """Spark's default log printed about 45 lines for this (its start-up notes, a native
    library warning, the executor's Python traceback) before pps's one line. The driver's log
    is quiet now (`spark_log4j2.properties`); what may remain is the JVM's own note about
    incubator modules, which no log setting reaches."""
    require_spark()
    good = tmp_path / "good.parquet"
    write_parquet(random_flows(random.Random(9), 20), good)
    path = tmp_path / "no-address.parquet"
    pq.write_table(refused_tables(pq.read_table(good))["no-address"][0], path)
    done = subprocess.run(
        [sys.executable, "-m", "ppsguard", "flows", "audit", str(SEED), str(path),
         "--host", "building", "--engine", "spark", "--spark-master", "local[1]"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [
        line for line in done.stderr.splitlines()
        if not line.startswith("WARNING: Using incubator modules")
    ]  # fmt: skip
    assert lines == ["pps: error: column id.resp_h: a flow without an address"], done.stderr
    assert done.stdout == ""


def test_the_audit_submitted_to_a_standalone_cluster_equals_local(tmp_path: Path) -> None:
    require_spark()
    flows = random_flows(random.Random(5), 400)
    write_parquet(flows[:200], tmp_path / "a.parquet")
    write_parquet(flows[200:], tmp_path / "b.parquet")
    expected = document(run_audit("local", REGISTRY, expand([str(tmp_path)]), "building"))
    cluster = SparkCluster(workers=2).start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ppsguard", "flows", "audit", str(SEED), str(tmp_path),
             "--host", "building", "--engine", "spark", "--spark-master", cluster.url,
             "--partitions", "4", "--json"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert cluster.processes and all(p.poll() is None for p in cluster.processes)
    finally:
        cluster.stop()
    assert done.returncode == 1, done.stderr[-2000:]
    assert json.loads(done.stdout) == expected
    assert "log4j" not in done.stderr and " WARN " not in done.stderr  # the driver is quiet


def test_the_progress_bar_is_fed_by_the_status_tracker(
    spark_engine: SparkEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With progress on, the bar draws the stages Spark reports while the audit runs."""
    import io
    import re

    from rich.console import Console

    from ppsguard.flows.engines.spark import StageProgress

    flows = random_flows(random.Random(5), 400)
    for i in range(4):
        write_parquet(flows[i::4], tmp_path / f"part-{i}.parquet")
    out = io.StringIO()
    monkeypatch.setattr(StageProgress, "every", 0.02)
    monkeypatch.setattr(spark_engine, "progress", True)
    monkeypatch.setattr(spark_engine, "console", Console(file=out, force_terminal=True, width=100))
    result = spark_engine.audit(REGISTRY, expand([str(tmp_path)]), "building")
    assert document(result) == document(
        run_audit("local", REGISTRY, expand([str(tmp_path)]), "building")
    )
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert re.search(r"spark stage [0-9,]+ .*\d+/\d+", text), text[-500:]


@pytest.mark.parametrize("dropped", STATE_COLUMNS_DROPPED)
def test_spark_flag_bits_say_what_the_texts_say(
    spark_engine: SparkEngine, tmp_path: Path, dropped: tuple[str, ...]
) -> None:
    """The policy pass's flag bits, from Spark's SQL (`flagged`), against `FlowColumns.of`, on
    every combination of conn_state, history and packet counts, some of those columns absent."""
    table = state_cases().drop_columns(list(dropped))
    path = tmp_path / "cases.parquet"
    pq.write_table(table, path)
    rows = flagged(spark_engine._frame(expand([str(path)]))).select("uid", "flags").collect()
    assert {row["uid"]: row["flags"] for row in rows} == flags_read_from_texts(table)
