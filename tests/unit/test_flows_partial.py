"""PairSet, the audit's set of (id, family, high, low) rows: merging two sets (ids remapped, as
when partials of different batches or Spark partitions merge) gives the set a Python set of
tuples gives, IPv4 and IPv6 rows mixed, and the per-id counts agree."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ppsguard.flows import partial
from ppsguard.flows.partial import PairSet

row = st.tuples(
    st.integers(0, 5),
    st.sampled_from([4, 6]),
    st.integers(0, 3),
    st.integers(0, (1 << 32) - 1),
)


def _set(rows: list[tuple[int, int, int, int]]) -> PairSet:
    pairs = PairSet()
    for start in range(0, len(rows), 7):  # several adds, as batches come
        chunk = rows[start : start + 7]
        pairs.add_columns(*(np.array(c, dtype=np.uint64) for c in zip(*chunk, strict=True)))
    return pairs


def _normal(rows: list[tuple[int, int, int, int]]) -> set[tuple[int, int, int, int]]:
    return {(i, f, h if f == 6 else 0, lo) for i, f, h, lo in rows}


@settings(max_examples=60, deadline=None)
@given(st.lists(row, max_size=40), st.lists(row, max_size=40), st.permutations(range(6)))
def test_update_with_a_remap_is_the_union_of_sets(
    ours: list[tuple[int, int, int, int]],
    theirs: list[tuple[int, int, int, int]],
    remap: list[int],
) -> None:
    merged = _set(ours)
    merged.update(_set(theirs), np.array(remap, dtype=np.uint64))
    expected = _normal(ours) | {(remap[i], f, h, lo) for i, f, h, lo in _normal(theirs)}
    got = {tuple(int(v) for v in r) for r in merged.rows()}
    assert got == expected
    assert sorted(got) == [tuple(int(v) for v in r) for r in merged.rows()]
    counts = merged.counts(6)
    assert counts.tolist() == [sum(1 for r in expected if r[0] == i) for i in range(6)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(row, min_size=1, max_size=12), max_size=10), st.integers(0, 15))
def test_compacting_after_every_few_rows_keeps_the_set(
    batches: list[list[tuple[int, int, int, int]]], every: int
) -> None:
    """Pending keys merged into the sorted distinct keys many times over give the same set."""
    with patch.object(partial, "_COMPACT", every):
        pairs, other = PairSet(), PairSet()
        expected: set[tuple[int, int, int, int]] = set()
        for n, batch in enumerate(batches):
            target = pairs if n % 3 else other  # some go through `update`
            target.add_columns(*(np.array(c, dtype=np.uint64) for c in zip(*batch, strict=True)))
            expected |= _normal(batch)
        pairs.update(other)
    got = [tuple(int(v) for v in r) for r in pairs.rows()]
    assert got == sorted(expected)
    assert pairs.counts(6).tolist() == [sum(1 for r in expected if r[0] == i) for i in range(6)]
