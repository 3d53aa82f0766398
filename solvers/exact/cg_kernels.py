"""Compiled loops of the column generation's pricing (solvers.exact.cg_pricing), with numba.

The multiple-choice knapsack DP of `_suffix_dp` was a Python loop over services and their operating points with one
numpy call per point: at 256 services about 70 % of the column generation's CPU time, mostly numpy's per-call
overhead (a table of 512 units costs a few microseconds of arithmetic).  `mck_rows` is the same recurrence
compiled, with the same floating-point operations in the same order (an addition, then a maximum), so its tables
are bit for bit those of the numpy loop (`mck_rows_numpy`, kept as the reference a test holds it to).

Compilation: `cache=True` keeps the machine code on disk beside this module (or in numba's user cache where that
is not writable); the first call in a fresh environment compiles (about a second), later processes load it.
The column generation's wall time counts that first call like any other work.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def mck_rows(first: np.ndarray, q: np.ndarray, v: np.ndarray, last: np.ndarray, k_dp: int, full: bool
             ) -> np.ndarray:
    """The suffix rows of a multiple-choice knapsack: services 0..k_dp-1, service k's items first[k]..first[k+1]
    (integer sizes `q`, values `v`), `last` the row after service k_dp - 1 (columns 0..units).  Row k at column c
    is max(row k+1 at c, max over k's items i with q_i <= c of row k+1 at c - q_i + v_i).
    Returns every row k = 0..k_dp (`full`; shape (k_dp + 1, units + 1)) or row 0 alone (shape (1, units + 1))."""
    m = last.shape[0]
    units = m - 1
    g = np.empty((k_dp + 1 if full else 1, m))
    nxt = last.copy()
    row = np.empty(m)
    if full:
        g[k_dp, :] = nxt
    for k in range(k_dp - 1, -1, -1):
        for c in range(m):
            row[c] = nxt[c]
        for i in range(first[k], first[k + 1]):
            qi = q[i]
            if qi > units:
                continue
            vi = v[i]
            for c in range(qi, m):
                x = nxt[c - qi] + vi
                if x > row[c]:
                    row[c] = x
        if full:
            g[k, :] = row
        nxt, row = row, nxt
    if not full:
        g[0, :] = nxt
    return g


def mck_rows_numpy(first: np.ndarray, q: np.ndarray, v: np.ndarray, last: np.ndarray, k_dp: int, full: bool
                   ) -> np.ndarray:
    """`mck_rows` as numpy calls (the loop of the previous sessions; the reference of the tests)."""
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


__all__ = ["mck_rows", "mck_rows_numpy"]
