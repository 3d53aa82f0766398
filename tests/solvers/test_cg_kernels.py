"""The compiled kernels of the column generation's pricing (solvers/exact/cg_kernels.py): the knapsack DP and its
grouping equal the numpy code they replaced, bit for bit, and the branch and bound finds the best set that
enumeration finds, on random inputs (hypothesis)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.exact.cg_kernels import branch_sets, mck_prepare, mck_rows
from solvers.exact.cg_pricing import _suffix_dp


def mck_rows_numpy(first: np.ndarray, q: np.ndarray, v: np.ndarray, last: np.ndarray, k_dp: int, full: bool
                   ) -> np.ndarray:
    """`mck_rows` as numpy calls (the loop the kernel replaced: the reference it is held to)."""
    units = len(last) - 1
    g = np.empty((k_dp + 1 if full else 1, units + 1))
    nxt = last.copy()
    if full:
        g[k_dp] = nxt
    for k in range(k_dp - 1, -1, -1):
        row = nxt.copy()
        for i in range(first[k], first[k + 1]):
            qi = q[i]
            if qi > units:
                continue
            if qi == 0:
                np.maximum(row, nxt + v[i], out=row)
            else:
                np.maximum(row[qi:], nxt[:units + 1 - qi] + v[i], out=row[qi:])
        if full:
            g[k] = row
        nxt = row
    if not full:
        g[0] = nxt
    return g


def mck_prepare_numpy(svc: np.ndarray, e: np.ndarray, v: np.ndarray, pts: np.ndarray):
    """`mck_prepare` as numpy calls (the code the kernel replaced: the reference it is held to)."""
    o = np.lexsort((e, svc))
    svc, e, v, pts = svc[o], e[o], v[o], pts[o]
    start = np.r_[True, svc[1:] != svc[:-1]]
    seg = np.cumsum(start) - 1
    big = float(v.max()) + 1.0 if len(v) else 1.0
    vv = v + seg * big
    prev = np.r_[-np.inf, np.maximum.accumulate(vv)[:-1]]
    keep = (vv > prev) & (v > 0)
    e, v, pts, seg = e[keep], v[keep], pts[keep], seg[keep]
    if not len(v):
        return e, v, pts, np.zeros(1, dtype=np.int64), np.zeros(0)
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    n = len(starts)
    seg = np.cumsum(np.r_[True, seg[1:] != seg[:-1]]) - 1
    dens = np.maximum.reduceat(v / e, starts)
    rank = np.empty(n, dtype=int)
    rank[np.argsort(-dens, kind="stable")] = np.arange(n)
    o = np.lexsort((e, rank[seg]))
    e, v, pts, pos = e[o], v[o], pts[o], rank[seg][o]
    return e, v, pts, np.searchsorted(pos, np.arange(n + 1)), -np.sort(-dens)



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


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.tuples(st.integers(0, 5), st.floats(0.1, 3.0), st.floats(0.01, 2.0)), min_size=1,
                      max_size=10),
       cap=st.floats(0.5, 6.0), k_max=st.integers(2, 4), core=st.sampled_from([0, 1, 2]),
       thr=st.floats(0.0, 2.0))
def test_branch_and_bound_finds_the_best_set(items, cap, k_max, core, thr):
    """The compiled branch and bound over the knapsack tables (full DP or a core and the fractional tail) finds the
    best set of at least two points (one per service, times within `cap`, at most `k_max`), as enumeration does;
    the sets it returns are sets of that kind worth what it says, all above `thr`."""
    svc = np.array([s for s, _, _ in items], dtype=np.int64)
    e = np.array([t for _, t, _ in items])
    v = np.array([x for _, _, x in items])
    pts, V, E, first, tables, delta = _suffix_dp(svc, e, v, np.arange(len(items)), cap, 64, core)
    complete, z, sets, vals, left, _ = branch_sets(first, V, E, tables.core, tables.tail.start, tables.tail.cw,
                                                   tables.tail.cv, delta, cap, thr, k_max, 10 ** 6, 10, np.inf, False)
    assert complete and left > 0
    best = 0.0  # enumeration over the original points (dominated ones included)
    for k in range(2, k_max + 1):
        for comb in itertools.combinations(range(len(items)), k):
            if len({svc[i] for i in comb}) == k and e[list(comb)].sum() <= cap + 1e-12:
                best = max(best, float(v[list(comb)].sum()))
    if best > thr:
        assert z == pytest.approx(best, rel=1e-9)
        assert len(vals) and max(vals) == pytest.approx(best, rel=1e-9)
    else:
        assert z <= thr + 1e-9 or z == pytest.approx(best, rel=1e-9)
    for row, val in zip(sets, vals):
        members = [int(j) for j in row if j >= 0]
        assert 2 <= len(members) <= k_max and val > thr
        assert len({int(svc[pts[j]]) for j in members}) == len(members)
        assert E[members].sum() <= cap + 1e-9 and V[members].sum() == pytest.approx(val)


@settings(max_examples=80, deadline=None)
@given(items=st.lists(st.tuples(st.integers(0, 7), st.floats(0.1, 3.0), st.floats(0.01, 2.0)), min_size=2,
                      max_size=14),
       cap=st.floats(0.5, 6.0), k_max=st.integers(2, 5), core=st.sampled_from([0, 2]), thr=st.floats(0.0, 1.0),
       nodes=st.integers(1, 25))
def test_branch_and_bound_stopped_early_bounds_every_set(items, cap, k_max, core, thr, nodes):
    """Out of nodes, the search's open bound (with its best value and `thr`) is still at least the value of every
    set of at least two points, as enumeration finds it: what cg_pricing returns for such an interval."""
    svc = np.array([s for s, _, _ in items], dtype=np.int64)
    e = np.array([t for _, t, _ in items])
    v = np.array([x for _, _, x in items])
    pts, V, E, first, tables, delta = _suffix_dp(svc, e, v, np.arange(len(items)), cap, 64, core)
    complete, z, _, _, _, open_bound = branch_sets(first, V, E, tables.core, tables.tail.start, tables.tail.cw,
                                                   tables.tail.cv, delta, cap, thr, k_max, nodes, 10, np.inf, False)
    best = 0.0
    for k in range(2, k_max + 1):
        for comb in itertools.combinations(range(len(items)), k):
            if len({svc[i] for i in comb}) == k and e[list(comb)].sum() <= cap + 1e-12:
                best = max(best, float(v[list(comb)].sum()))
    if complete:
        assert open_bound == -np.inf
    else:
        assert max(z, thr, open_bound) >= best * (1 - 1e-9)


def test_warm_prints_its_cost(capsys):
    """`python -m solvers.exact.cg_warm` fills the kernels' cache and prints what that cost."""
    from solvers.exact.cg_warm import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cg kernels ready:") and "s CPU" in out
