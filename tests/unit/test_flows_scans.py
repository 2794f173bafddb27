"""The scan pass walks only the sources whose TRW walks can reach "scanner" (`could_scan`,
vectorised over every source), and finds exactly the scanners that walking every source finds."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.flows.audit_batch import ATTEMPT_SCHEMA
from ppsguard.flows.scans import could_scan, scan_findings, scan_source, source_groups

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


attempt = st.tuples(
    st.integers(0, 5),  # source
    st.integers(0, 12).map(float),  # few times: ties are common
    st.sampled_from([0.0, 0.5, 5.0]),  # 5 s: answered too late, a failure
    st.integers(0, 3),  # target
    st.integers(1, 12),  # port
    st.booleans(),
)


long_walk = st.tuples(  # two sources, mostly new ports: walks that fall back and climb again
    st.integers(0, 1),
    st.integers(0, 400).map(float),
    st.sampled_from([0.0, 5.0]),
    st.integers(0, 1),
    st.integers(1, 90),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(rows=st.one_of(st.lists(attempt, max_size=120), st.lists(long_walk, max_size=200)))
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
