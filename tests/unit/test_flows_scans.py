"""The scan pass walks only the sources whose TRW walks can reach "scanner" (`could_scan`,
vectorised over every source), and finds exactly the scanners that walking every source finds;
the table engines decide whose attempts to fetch from contacts alone (`possible_scanners`),
and miss none of those sources."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.flows.audit_batch import ATTEMPT_SCHEMA
from ppsguard.flows.scans import (
    could_scan,
    possible_scanners,
    scan_findings,
    scan_source,
    source_groups,
)

BASE = 0xC6120000  # 198.18.0.0


def attempts_table(rows: list[tuple[int, float, float, int, int, bool]]) -> pa.Table:
    """(source, ts, duration, target, port, ok) rows; IPv4 sources and targets in the lab."""
    n = len(rows)
    column = list(zip(*rows, strict=True)) if rows else [[]] * 6
    return pa.table(
        {
            "src_family": pa.array([4] * n, pa.uint8()),
            "src_high": pa.array([0] * n, pa.uint64()),
            "src_low": pa.array([BASE + s for s in column[0]], pa.uint64()),
            "ts": pa.array(column[1], pa.float64()),
            "duration": pa.array(column[2], pa.float64()),
            "dst_family": pa.array([4] * n, pa.uint8()),
            "dst_high": pa.array([0] * n, pa.uint64()),
            "dst_low": pa.array([BASE + 256 + t for t in column[3]], pa.uint64()),
            "port": pa.array(column[4], pa.int64()),
            "protocol": pa.array(["tcp"] * n, pa.string()),
            "ok": pa.array(column[5], pa.bool_()),
        },
        schema=ATTEMPT_SCHEMA,
    )


def every_source(table: pa.Table) -> list[str]:
    found = (scan_source(s, g) for s, g in source_groups(table, every=True))
    return sorted(f.message for f in found if f is not None)


def attempts(
    sources: int, times: int, durations: list[float], targets: int, ports: int
) -> st.SearchStrategy[tuple[int, float, float, int, int, bool]]:
    """(source, ts, duration, target, port, ok) rows; a 5 s duration is answered too late."""
    return st.tuples(
        st.integers(0, sources - 1),
        st.integers(0, times).map(float),
        st.sampled_from(durations),
        st.integers(0, targets - 1),
        st.integers(1, ports),
        st.booleans(),
    )


attempt = attempts(6, 12, [0.0, 0.5, 5.0], 4, 12)  # few times: ties are common
long_walk = attempts(2, 400, [0.0, 5.0], 2, 90)  # mostly new ports: walks fall back, climb again
crowded = attempts(3, 4, [0.0, 5.0], 2, 4)  # first contacts tied in time, borderline walks
attempt_sets = st.one_of(
    st.lists(attempt, max_size=120),
    st.lists(long_walk, max_size=200),
    st.lists(crowded, min_size=10, max_size=60),
    st.lists(crowded, min_size=10, max_size=60),  # drawn twice as often: ties are the hard part
)


@settings(max_examples=300, deadline=None)
@given(rows=attempt_sets)
def test_walking_only_the_possible_scanners_finds_every_scanner(
    rows: list[tuple[int, float, float, int, int, bool]],
) -> None:
    table = attempts_table(rows)
    assert sorted(f.message for f in scan_findings(table)) == every_source(table)


def test_a_busy_client_with_scattered_failures_is_not_walked() -> None:
    """Four failures among many answered first contacts never reach the upper threshold; a
    vertical scan's run of refusals does."""
    client = [(1, float(i), 0.1, 0, 100 + i, i % 10 != 3) for i in range(60)]
    scanner = [(2, float(i), 0.1, 1, 2000 + i, False) for i in range(12)]
    table = attempts_table(client + scanner).sort_by(
        [(c, "ascending") for c in ("src_family", "src_high", "src_low", "ts")]
    )
    starts = np.array([0, 60])
    assert could_scan(table, starts).tolist() == [False, True]
    (finding,) = scan_findings(table)
    assert finding.source == "198.18.0.2"


def test_a_walk_that_fell_back_to_benign_and_climbs_again_is_walked() -> None:
    """Four answered first contacts end a walk as benign (a fresh walk starts at zero); four
    refused ones after them reach "scanner". The vectorised walk resets the same way."""
    rows = [(0, float(i), 0.1, 0, 10 + i, i < 4) for i in range(8)]
    table = attempts_table(rows)
    assert could_scan(table, np.array([0])).tolist() == [True]
    assert [f.message for f in scan_findings(table)] == every_source(table) != []


def contacts_of(table: pa.Table, spellings: list[int]) -> pa.Table:
    """What `tables.contacts_sql` groups, from attempts: per (source, target, port, spelling)
    the earliest time, of a success and of a failure. `spellings` splits a target's contacts
    between texts, as two spellings of one IPv6 address would."""
    succeeded = pc.and_(
        table.column("ok"),
        pc.less(
            pc.subtract(pc.add(table.column("ts"), table.column("duration")), table.column("ts")),
            3.0,
        ),
    )
    rows = table.append_column("spelling", pa.array(spellings, pa.int64())).select(
        ["src_low", "dst_family", "dst_high", "dst_low", "port", "spelling", "ts"]
    )
    rows = rows.append_column("t_ok", pc.if_else(succeeded, rows.column("ts"), None))
    rows = rows.append_column("t_fail", pc.if_else(succeeded, None, rows.column("ts")))
    grouped = rows.group_by(["src_low", "dst_family", "dst_high", "dst_low", "port", "spelling"])
    found = grouped.aggregate([("ts", "min"), ("t_ok", "min"), ("t_fail", "min")])
    return pa.table(
        {
            "k": found.column("src_low").cast(pa.int64()), "dst_family": found.column("dst_family"),
            "dst_high": found.column("dst_high"), "dst_low": found.column("dst_low"),
            "port": found.column("port"), "t": found.column("ts_min"),
            "t_ok": found.column("t_ok_min"), "t_fail": found.column("t_fail_min"),
        }
    )  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(rows=attempt_sets, seed=st.integers(0, 2**32))
def test_contacts_alone_keep_every_source_the_detectors_could_call_a_scanner(
    rows: list[tuple[int, float, float, int, int, bool]], seed: int
) -> None:
    """From contacts alone (each target's contacts split between two spellings), the sources
    kept are exactly those `could_scan` keeps from every attempt, plus only sources with a
    success and a failure at one first-contact time, which contacts cannot order."""
    table = attempts_table(rows)
    spellings = np.random.default_rng(seed).integers(0, 2, table.num_rows).tolist()
    kept = set(possible_scanners(contacts_of(table, spellings)))
    walked = {low for (_, _, low), _ in source_groups(table)}
    assert walked <= kept
    contacts = contacts_of(table, [0] * table.num_rows)
    tied = pc.and_(
        pc.equal(contacts.column("t_ok"), contacts.column("t")),
        pc.equal(contacts.column("t_fail"), contacts.column("t")),
    )
    unclear = set(contacts.filter(pc.fill_null(tied, False)).column("k").to_pylist())
    assert kept - walked <= unclear
