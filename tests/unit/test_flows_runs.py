"""`flows.runs` against plain Python sorting: the stable order of the rows by their keys, and
which rows start a run of equal keys, constant keys (left out of the sort) included."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from ppsguard.flows.runs import run_starts, sorted_runs

ROWS = st.integers(0, 40).flatmap(
    lambda n: st.lists(
        st.lists(st.integers(0, 3), min_size=n, max_size=n).map(
            lambda values: np.array(values, dtype=np.int64)
        ),
        min_size=1,
        max_size=4,
    )
)


@given(ROWS)
def test_sorted_runs_is_a_stable_sort_with_its_run_starts(keys: list[np.ndarray]) -> None:
    rows = list(zip(*(key.tolist() for key in keys), strict=True))
    order, starts = sorted_runs(keys)
    assert order.tolist() == sorted(range(len(rows)), key=lambda i: rows[i])
    ordered = [rows[i] for i in order]
    assert starts.tolist() == [i == 0 or ordered[i] != ordered[i - 1] for i in range(len(rows))]


def test_constant_keys_change_nothing() -> None:
    varying = np.array([2, 1, 2, 1, 0])
    constant = np.full(5, 4)
    order, starts = sorted_runs([constant, varying, constant])
    assert order.tolist() == [4, 1, 3, 0, 2]
    assert starts.tolist() == [True, True, False, True, False]
    assert run_starts([constant]).tolist() == [True, False, False, False, False]
