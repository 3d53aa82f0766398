"""The compiled knapsack DP of the column generation's pricing (solvers/exact/cg_kernels.py) equals the numpy loop
it replaced, bit for bit, on random inputs (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.exact.cg_kernels import mck_prepare, mck_prepare_numpy, mck_rows, mck_rows_numpy


@settings(max_examples=150, deadline=None)
@given(items=st.lists(st.lists(st.tuples(st.integers(0, 40), st.floats(0.0, 5.0, allow_nan=False)), min_size=1,
                               max_size=4), min_size=0, max_size=8),
       units=st.integers(0, 32), extra=st.integers(0, 3), full=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_compiled_dp_equals_numpy(items, units, extra, full, seed):
    """Services of 1-4 items (sizes may exceed the units, or be 0), a core of all but `extra` of them, a random
    non-decreasing last row (the fractional tail's): the same rows, exactly."""
    k_dp = max(0, len(items) - extra)
    first = np.r_[0, np.cumsum([len(x) for x in items[:k_dp]])].astype(np.int64)
    flat = [it for x in items[:k_dp] for it in x]
    q = np.array([a for a, _ in flat], dtype=np.int64)
    v = np.array([b for _, b in flat], dtype=np.float64)
    last = np.sort(np.random.default_rng(seed).random(units + 1) * 3.0)
    a = mck_rows(first, q, v, last, k_dp, full)
    b = mck_rows_numpy(first, q, v, last, k_dp, full)
    assert a.shape == b.shape == ((k_dp + 1) if full else 1, units + 1)
    assert np.array_equal(a, b)
    assert np.all(a[0] >= last)  # taking nothing is always possible


@settings(max_examples=150, deadline=None)
@given(items=st.lists(st.tuples(st.integers(0, 6), st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 3.0]),
                                st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5, 4.0])), min_size=0, max_size=14))
def test_compiled_grouping_equals_numpy(items):
    """The grouping of the points (dominated ones dropped, services by density, ties included: values and times
    from small sets) is the numpy code's."""
    svc = np.array([s for s, _, _ in items], dtype=np.int64)
    e = np.array([t for _, t, _ in items], dtype=float)
    v = np.array([x for _, _, x in items], dtype=float)
    pts = np.arange(len(items), dtype=np.int64)
    a = mck_prepare(svc, e, v, pts)
    b = mck_prepare_numpy(svc, e, v, pts)
    for x, y in zip(a, b):
        assert np.array_equal(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
