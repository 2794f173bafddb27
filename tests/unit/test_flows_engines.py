"""The flows audit gives one document whatever the engine (local, DuckDB) and whatever the
order of the flows, reads folders, globs and Hive partitions, and refuses bad tables with one
line and exit 2. Spark's half of this lives in tests/spark/."""

from __future__ import annotations

import ipaddress
import random
import subprocess
import sys
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ppsguard.errors import InputError
from ppsguard.flows.audit import audit_flows, document
from ppsguard.flows.columnar import write_parquet
from ppsguard.flows.engines import run_audit
from ppsguard.flows.engines.sources import expand
from ppsguard.model.flows import Flow
from ppsguard.registry.load import load_registry, parse_registry
from ppsguard.testing.flowsets import (
    STATE_COLUMNS_DROPPED,
    flags_read_from_texts,
    odd_tables,
    probe_flows,
    random_flows,
    refused_tables,
    state_cases,
)

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed-building.yaml"
REGISTRY = load_registry(SEED)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 120))
def test_local_and_duckdb_agree_with_the_flow_object_path(
    tmp_path: Path, seed: int, count: int
) -> None:
    flows = random_flows(random.Random(seed), count)
    path = tmp_path / f"flows-{seed}-{count}.parquet"
    write_parquet(flows, path)
    expected = document(audit_flows(REGISTRY, flows, "building"))
    sources = expand([str(path)])
    for engine in ("local", "duckdb"):
        assert document(run_audit(engine, REGISTRY, sources, "building")) == expected, engine
    reordered = sorted(flows, key=lambda f: (-f.ts, f.uid))
    assert document(audit_flows(REGISTRY, reordered, "building")) == expected


def test_folders_globs_and_hive_partitions_read_the_same_flows(tmp_path: Path) -> None:
    flows = random_flows(random.Random(7), 200)
    whole = tmp_path / "whole.parquet"
    write_parquet(flows, whole)
    for day, part in (("2026-12-01", flows[:90]), ("2026-12-02", flows[90:])):
        folder = tmp_path / "hive" / f"day={day}"
        folder.mkdir(parents=True)
        write_parquet(part, folder / "part-0.parquet")
    (tmp_path / "hive" / "_SUCCESS").write_text("")
    expected = document(run_audit("local", REGISTRY, expand([str(whole)]), "building"))
    for paths in ([str(tmp_path / "hive")], [str(tmp_path / "hive" / "*" / "*.parquet")]):
        for engine in ("local", "duckdb"):
            got = document(run_audit(engine, REGISTRY, expand(paths), "building"))
            assert got == expected, (engine, paths)


def bad_tables(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.parquet"
    write_parquet(random_flows(random.Random(1), 20), good)
    table = pq.read_table(good)
    missing = tmp_path / "missing.parquet"
    pq.write_table(table.drop_columns(["id.resp_p"]), missing)
    wrong = tmp_path / "wrong.parquet"
    index = table.schema.get_field_index("id.resp_p")
    pq.write_table(
        table.set_column(index, "id.resp_p", table.column("id.resp_p").cast(pa.string())), wrong
    )
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1" + b"\x00" * 64)
    return {
        "missing": (missing, "no column id.resp_p"),
        "wrong": (wrong, "column id.resp_p holds text values, the audit needs integer"),
        "garbage": (garbage, "not a readable Parquet file"),
        "absent": (tmp_path / "nowhere.parquet", "no such file or folder"),
    }


@pytest.mark.parametrize("engine", ["local", "duckdb", "spark"])
def test_bad_tables_are_one_line_and_exit_2_from_every_engine(tmp_path: Path, engine: str) -> None:
    """Local paths are checked before any engine starts, so Spark needs no session here."""
    for path, words in bad_tables(tmp_path).values():
        done = subprocess.run(
            [sys.executable, "-m", "ppsguard", "flows", "audit", str(SEED), str(path),
             "--engine", engine],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0] and str(path) in lines[0], done.stderr
        assert done.stdout == ""


def corrupt_pages(tmp_path: Path) -> Path:
    """A Parquet file whose footer and schema are whole but whose first column's pages are not:
    the error comes mid-read, after the checks made when the file is opened."""
    good = tmp_path / "good.parquet"
    write_parquet(random_flows(random.Random(1), 2000), good)
    chunk = pq.ParquetFile(good).metadata.row_group(0).column(0)
    data = bytearray(good.read_bytes())
    start = chunk.data_page_offset
    data[start + 30 : start + chunk.total_compressed_size - 5] = b"\xff" * (
        chunk.total_compressed_size - 35
    )
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(bytes(data))
    return corrupt


@pytest.mark.parametrize(
    "command", [["read"], ["audit", str(SEED), "--engine", "local"], ["audit", str(SEED)]]
)
def test_corrupt_pages_are_one_line_and_exit_2(tmp_path: Path, command: list[str]) -> None:
    """Found by corrupting real tables: Arrow's OSError from a page escaped as a traceback with
    exit 1, the code for findings (DuckDB's own error was already caught)."""
    path = corrupt_pages(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "ppsguard", "flows", command[0], *command[1:2], str(path),
         *command[2:]],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "corrupt.parquet" in lines[0], done.stderr


def test_a_bad_address_value_names_the_column(tmp_path: Path) -> None:
    table = pq.read_table(next(iter(bad_tables(tmp_path).values()))[0].parent / "good.parquet")
    index = table.schema.get_field_index("id.orig_h")
    values = table.column("id.orig_h").to_pylist()
    values[3] = "198.18.0.300"
    bad = tmp_path / "bad-address.parquet"
    pq.write_table(table.set_column(index, "id.orig_h", pa.array(values)), bad)
    for engine in ("local", "duckdb"):
        with pytest.raises(
            ValueError, match=r"column id\.orig_h: not an IP address: '198\.18\.0\.300'"
        ):
            run_audit(engine, REGISTRY, expand([str(bad)]), "building")


@pytest.mark.parametrize("kind", ["empty", "null-typed"])
def test_odd_tables_give_one_document_from_every_engine(tmp_path: Path, kind: str) -> None:
    """Found by a sweep of odd tables: DuckDB's engine crashed on a table with no rows, the
    local one on a column typed null (pyarrow's type for a column of nothing but None). A
    column typed null reads as absent."""
    good = tmp_path / "good.parquet"
    write_parquet(random_flows(random.Random(8), 120), good)
    path = tmp_path / f"{kind}.parquet"
    pq.write_table(odd_tables(pq.read_table(good))[kind], path)
    documents = [
        document(run_audit(engine, REGISTRY, expand([str(path)]), "building"))
        for engine in ("local", "duckdb")
    ]
    assert documents[0] == documents[1]
    assert documents[0]["flows"] == (0 if kind == "empty" else 120)


@pytest.mark.parametrize("kind", ["no-address", "not-finite"])
def test_flows_without_an_address_or_a_finite_time_are_one_error(tmp_path: Path, kind: str) -> None:
    """Found by the same sweep: infinite times printed NumPy's RuntimeWarning and made scans
    "from -inf to inf". Flows without an address were one error already; held here too."""
    good = tmp_path / "good.parquet"
    write_parquet(random_flows(random.Random(9), 40), good)
    table, message = refused_tables(pq.read_table(good))[kind]
    path = tmp_path / f"{kind}.parquet"
    pq.write_table(table, path)
    for engine in ("local", "duckdb"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(InputError) as caught:
                run_audit(engine, REGISTRY, expand([str(path)]), "building")
        assert str(caught.value) == message, engine


def test_flows_read_names_the_column_of_a_bad_value(tmp_path: Path) -> None:
    """`pps flows read` said `row 1: TypeError("float() argument must be a string or a real
    number, not 'NoneType'")` for a row without a time, and wrote NaN times as null."""
    good = tmp_path / "good.parquet"
    write_parquet(random_flows(random.Random(9), 40), good)
    table = pq.read_table(good)
    cases = {
        "no-address": (refused_tables(table)["no-address"][0], "row 1: id.resp_h: no value"),
        "not-finite": (refused_tables(table)["not-finite"][0], "row 4: ts: NaN or infinite"),
        "no-time": (odd_tables(table)["null-typed"], "row 1: ts: no value"),
    }
    bad_address = table.column("id.orig_h").to_pylist()
    bad_address[1] = "198.18.0.300"
    index = table.schema.get_field_index("id.orig_h")
    cases["bad-address"] = (
        table.set_column(index, "id.orig_h", pa.array(bad_address)),
        "row 2: id.orig_h: not an IP address: '198.18.0.300'",
    )
    for kind, (bad, message) in cases.items():
        path = tmp_path / f"{kind}.parquet"
        pq.write_table(bad, path)
        done = subprocess.run(
            [sys.executable, "-m", "ppsguard", "flows", "read", str(path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, kind
        assert done.stderr == f"pps: error: {path}: {message}\n", kind


def test_a_csv_of_flows_reads_like_its_flows(tmp_path: Path) -> None:
    """`pps flows read --csv` output, audited in place by the local and DuckDB engines."""
    flows = random_flows(random.Random(2), 100)
    path = write_csv(flows, tmp_path / "flows.csv")
    expected = document(audit_flows(REGISTRY, flows, "building"))
    for engine in ("local", "duckdb"):
        assert document(run_audit(engine, REGISTRY, expand([str(path)]), "building")) == expected


def test_addresses_parse_the_same_plain_or_dictionary_encoded() -> None:
    """Each distinct text is parsed once (through a dictionary); the rows get the same integers
    as a row-by-row parse, IPv4 and IPv6 mixed, and a bad value is still named."""
    import numpy as np

    from ppsguard.errors import InputError
    from ppsguard.flows.audit_columns import AddressCache, parse_addresses, parse_texts

    texts = ["198.18.0.1", "2001:db8::1", "198.18.0.1", "198.19.255.254", "2001:db8::1", "0.0.0.0"]
    plain = pa.array(texts)
    expected = parse_texts(plain, "id.orig_h", {})
    for array in (plain, plain.dictionary_encode(), pa.array(texts, pa.large_string())):
        got = parse_addresses(array, "id.orig_h", AddressCache())
        for want, have in zip(expected, got, strict=True):
            assert np.array_equal(np.asarray(want), np.asarray(have))
    assert got[2][0] == int.from_bytes(bytes([198, 18, 0, 1]), "big") and got[0][1] == 6
    bad = pa.array([*texts, "198.18.0.300"]).dictionary_encode()
    with pytest.raises(InputError, match=r"not an IP address: '198\.18\.0\.300'"):
        parse_addresses(bad, "id.orig_h", AddressCache())


def test_a_scanner_in_a_table_is_found_on_the_second_read(tmp_path: Path) -> None:
    """Tables are read twice by the local engine, three times by DuckDB's: the scanner's
    attempts, taken on the last read (only the suspects' rows), give the flow-object path's
    document."""
    flows = [*random_flows(random.Random(5), 60), *refused("198.18.0.66", 40)]
    expected = document(audit_flows(REGISTRY, flows, "building"))
    scans = [f for f in expected["findings"] if f["type"] == "scan"]  # type: ignore[attr-defined]
    assert ["198.18.0.66"] in [f["peers"] for f in scans]
    parquet = tmp_path / "flows.parquet"
    write_parquet(flows, parquet)
    for path in (parquet, write_csv(flows, tmp_path / "flows.csv")):
        for engine in ("local", "duckdb"):
            got = document(run_audit(engine, REGISTRY, expand([str(path)]), "building"))
            assert got == expected, (engine, path)


def refused(source: str, ports: int) -> list[Flow]:
    """A vertical scan of the building: one refused attempt on each of `ports` ports."""
    return [
        Flow(
            ts=100.0 + i,
            uid=f"CS{i:04d}",
            orig_h=ipaddress.ip_address(source),
            orig_p=50000 + i,
            resp_h=ipaddress.ip_address("198.18.0.1"),
            resp_p=2000 + i,
            proto="tcp",
            duration=0.01,
            conn_state="REJ",
            history="Sr",
            orig_pkts=1,
            resp_pkts=1,
            source="test",
        )
        for i in range(ports)
    ]


def write_csv(flows: list[Flow], path: Path) -> Path:
    """The flows as `pps flows read --csv` writes them."""
    import csv

    from ppsguard.flows import records

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(records.CSV_COLUMNS)
        for flow in flows:
            writer.writerow(["" if v is None else v for v in records.csv_values(flow)])
    return path


def test_attempts_need_only_the_columns_the_second_read_fetches(tmp_path: Path) -> None:
    """The scan pass's second read fetches ATTEMPT_INPUTS only: attempts made from those
    columns equal attempts made from every column (a column attempts start to use and the list
    misses would show here, not as scans silently lost)."""
    import pyarrow.parquet as pq

    from ppsguard.flows.audit_batch import ATTEMPT_INPUTS, BatchAuditor

    flows = [*random_flows(random.Random(9), 120), *refused("198.18.0.66", 10)]
    path = tmp_path / "flows.parquet"
    write_parquet(flows, path)
    table = pq.read_table(path)
    fetched = table.select([c for c in table.column_names if c in ATTEMPT_INPUTS])
    assert set(table.column_names) - set(fetched.column_names) >= {"uid", "id.orig_p"}
    auditor = BatchAuditor(REGISTRY, "building")
    whole = auditor.attempts(table.combine_chunks().to_batches()[0])
    assert whole.num_rows > 10
    assert auditor.attempts(fetched.combine_chunks().to_batches()[0]).equals(whole)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 150))
def test_flows_sharing_a_time_are_ordered_by_uid_in_every_engine(
    tmp_path: Path, seed: int, count: int
) -> None:
    """DuckDB's policy pass reads no uid: it keeps each finding's first times and reads the
    flows at those times again. With six distinct times for up to 150 flows, a finding's first
    five flows are decided by their uids, and its message by the first of them."""
    flows = random_flows(random.Random(seed), count, coarse=True)
    path = tmp_path / f"ties-{seed}-{count}.parquet"
    write_parquet(flows, path)
    expected = document(audit_flows(REGISTRY, flows, "building"))
    for engine in ("local", "duckdb"):
        got = document(run_audit(engine, REGISTRY, expand([str(path)]), "building"))
        assert got == expected, engine


def test_texts_of_one_address_are_one_peer_in_every_engine(tmp_path: Path) -> None:
    """DuckDB numbers address texts; two texts of one address (IPv6 in either case) are one
    peer, as they are to the engines that count peers by the parsed address."""
    flows = random_flows(random.Random(4), 120)
    path = tmp_path / "flows.parquet"
    write_parquet(flows, path)
    table = pq.read_table(path)
    index = table.schema.get_field_index("id.orig_h")
    values = [
        v.upper() if v is not None and ":" in v and i % 2 else v
        for i, v in enumerate(table.column("id.orig_h").to_pylist())
    ]
    assert any(v != v.lower() for v in values if v is not None)
    mixed = tmp_path / "mixed.parquet"
    pq.write_table(table.set_column(index, "id.orig_h", pa.array(values)), mixed)
    expected = document(audit_flows(REGISTRY, flows, "building"))
    for engine in ("local", "duckdb"):
        assert document(run_audit(engine, REGISTRY, expand([str(mixed)]), "building")) == expected


def test_a_table_without_the_optional_columns_audits_alike(tmp_path: Path) -> None:
    """Without duration, conn_state, history and packets, DuckDB's SQL reads them as missing
    the way `FlowColumns.of` does (nothing answered, every flow initiated)."""
    flows = [*random_flows(random.Random(6), 80), *refused("198.18.0.66", 12)]
    path = tmp_path / "flows.parquet"
    write_parquet(flows, path)
    optional = ["duration", "conn_state", "history", "orig_pkts", "resp_pkts"]
    bare = tmp_path / "bare.parquet"
    pq.write_table(pq.read_table(path).drop_columns(optional), bare)
    documents = [
        document(run_audit(engine, REGISTRY, expand([str(bare)]), "building"))
        for engine in ("local", "duckdb")
    ]
    assert documents[0] == documents[1]
    assert documents[0]["findings"]


def spelled_twice(path: Path, out: Path) -> Path:
    """The table with every other IPv6 address upper-cased: two texts of one address."""
    table = pq.read_table(path)
    for name in ("id.orig_h", "id.resp_h"):
        values = [
            v.upper() if v is not None and ":" in v and i % 2 else v
            for i, v in enumerate(table.column(name).to_pylist())
        ]
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(values))
    pq.write_table(table, out)
    return out


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), count=st.integers(1, 200))
def test_the_first_contacts_read_finds_the_scans_of_every_attempt(
    tmp_path: Path, seed: int, count: int
) -> None:
    """Tables' scan passes decide from each suspect's contacts, grouped in DuckDB
    (`tables.contacts_sql`), whose attempts to fetch: with repeats, ties in time, backscatter
    and two spellings of one address, they find what every attempt finds."""
    flows = probe_flows(random.Random(seed), count)
    path = tmp_path / f"probes-{seed}-{count}.parquet"
    write_parquet(flows, path)
    mixed = spelled_twice(path, tmp_path / f"mixed-{seed}-{count}.parquet")
    expected = document(audit_flows(REGISTRY, flows, "building"))
    for engine in ("local", "duckdb"):
        got = document(run_audit(engine, REGISTRY, expand([str(mixed)]), "building"))
        assert got == expected, engine


def test_a_source_past_what_trw_remembers_is_read_whole(tmp_path: Path) -> None:
    """Past `max_targets` first contacts TRW forgets the oldest, and trying one of those again
    is a first contact again: 4,100 answered ports, then four refused repeats of the first
    ones, make a scanner: a repeat the contacts alone do not show."""

    def attempt(ts: float, port: int, answered: bool) -> Flow:
        return Flow(
            ts=ts,
            uid=f"C{ts:09.0f}",
            orig_h=ipaddress.ip_address("198.18.0.70"),
            orig_p=40000,
            resp_h=ipaddress.ip_address("198.18.0.1"),
            resp_p=port,
            proto="tcp",
            duration=0.1,
            conn_state="SF" if answered else "REJ",
            history="S",
            orig_pkts=1,
            resp_pkts=1 if answered else 0,
            source="test",
        )

    answered = [attempt(float(i), 1000 + i, True) for i in range(4100)]
    again = [attempt(5000.0 + i, 1000 + i, False) for i in range(4)]
    flows = [*answered, *again]
    expected = document(audit_flows(REGISTRY, flows, "building"))
    scans = [f for f in expected["findings"] if f["type"] == "scan"]  # type: ignore[attr-defined]
    assert [f["peers"] for f in scans] == [["198.18.0.70"]]
    path = tmp_path / "forgotten.parquet"
    write_parquet(flows, path)
    for engine in ("local", "duckdb"):
        assert document(run_audit(engine, REGISTRY, expand([str(path)]), "building")) == expected


def test_contacts_with_other_hosts_do_not_hide_a_scan_of_this_one(tmp_path: Path) -> None:
    """Only attempts on the audited host are steps of its TRW walks: a source's answered
    contacts with another machine, between its refused probes here, must not walk it back."""

    def flow(i: int, target: str, port: int, answered: bool) -> Flow:
        return Flow(
            ts=10.0 * i, uid=f"CI{i:03d}", orig_h=ipaddress.ip_address("198.18.0.77"),
            orig_p=40000 + i, resp_h=ipaddress.ip_address(target), resp_p=port, proto="tcp",
            duration=0.1, conn_state="SF" if answered else "REJ", history="S", orig_pkts=1,
            resp_pkts=1 if answered else 0, source="test",
        )  # fmt: skip

    flows = [
        flow(2 * i + k, *(("198.18.0.1", 2000 + i, False), ("198.19.9.9", 80 + i, True))[k])
        for i in range(8)
        for k in (0, 1)
    ]
    registry = parse_registry(
        "version: 1\nhosts:\n  web:\n    addresses: [198.18.0.1]\n"
        "    provides:\n      - {id: http, port: 80/tcp, from: anywhere}\n",
        "web.yaml",
    )
    expected = document(audit_flows(registry, flows, "web"))
    scans = [f for f in expected["findings"] if f["type"] == "scan"]  # type: ignore[attr-defined]
    assert [f["peers"] for f in scans] == [["198.18.0.77"]]
    path = tmp_path / "between.parquet"
    write_parquet(flows, path)
    for engine in ("local", "duckdb"):
        assert document(run_audit(engine, registry, expand([str(path)]), "web")) == expected


@pytest.mark.parametrize("dropped", STATE_COLUMNS_DROPPED)
def test_duckdb_flag_bits_say_what_the_texts_say(dropped: tuple[str, ...]) -> None:
    """`flags_sql` (DuckDB's dialect) against `FlowColumns.of`, on every combination of
    conn_state, history and packet counts, and with some of those columns absent."""
    import duckdb

    from ppsguard.flows.engines.tables import flags_sql

    table = state_cases().drop_columns(list(dropped))
    con = duckdb.connect()
    try:
        con.register("pps_cases", table)
        sql = f"SELECT uid, CAST({flags_sql(set(table.column_names))} AS UTINYINT) AS flags"
        found = con.sql(f"{sql} FROM pps_cases").fetchall()
    finally:
        con.close()
    expected = flags_read_from_texts(table)
    assert dict(found) == expected
    if not dropped:  # every bit is both set and clear somewhere
        for mask in (1, 2, 4):
            assert {bits & mask for bits in expected.values()} == {0, mask}
