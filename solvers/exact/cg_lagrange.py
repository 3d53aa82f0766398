"""The Lagrangian (Farley) bound of the column generation (solvers.exact.colgen's docstring): from coverage duals
pi >= 0 and the proven upper bounds V_p of the pricing, GPUs >= sum_s pi_s / W (min-gpus), alpha <= G W / sum_s pi_s
(max-scale), W = max_L sum_p n_L(p) V_p; under branching rows on the GPUs per layout the best y of a small LP
(`_lagrange_rows`); and at the best nonnegative combination of the duals priced so far (`_combined`).
"""

from __future__ import annotations

import math

import numpy as np

from stsched.registry import Objective


def _lagrange(total: float, wl: np.ndarray, objective: Objective, gpus: int, y_rows: tuple = ()) -> float:
    """The Lagrangian bound of the module docstring from the sum of coverage weights pi >= 0 (`total`) and the layouts'
    weights under per-size upper bounds (`wl`, `layout_weights`).  Under branching rows on the GPUs per layout
    (`y_rows`: (coefficients, lower, upper)), every plan of the branch has sum_L W_L y_L >= sum(pi) (W_L = sum_p n_L(p)
    V_p) and meets the rows: the bound is the best y of that small LP."""
    if y_rows:
        return _lagrange_rows(total, wl, objective, gpus, y_rows)
    w = float(wl.max())
    if objective is Objective.MIN_GPUS:
        return total / w if w > 0 else math.inf
    return gpus * w / total if total > 0 else math.inf


def _combined(totals: list[float], weights: list[np.ndarray], objective: Objective, gpus: int) -> float:
    """The best Lagrangian bound at a nonnegative combination pi = sum_k m_k pi_k of the duals priced so far
    (`totals` sum(pi_k), `weights` W_L(pi_k) per layout from their proven V_p): each V_p is a maximum of functions
    linear in pi, so V_p(pi) <= sum_k m_k V_p(pi_k) and W_L(pi) <= sum_k m_k W_L(pi_k), and the bound of the module
    docstring holds at pi with these W.  The combination m is chosen by a small LP (scale-free: min-gpus max S.m
    s.t. W m <= 1; max-scale min max_L (W m)_L s.t. S.m = 1); the bound is then evaluated from m itself, so an
    inexact LP solution can only give a weaker bound, never an invalid one."""
    from scipy.optimize import linprog

    s, w = np.array(totals), np.array(weights).T  # w: layouts x rounds
    k = len(s)
    if objective is Objective.MIN_GPUS:
        res = linprog(-s, A_ub=w, b_ub=np.ones(len(w)), bounds=(0, None), method="highs")
    else:  # variables (m, t): min t, W m - t <= 0, S.m = 1
        res = linprog(np.r_[np.zeros(k), 1.0], A_ub=np.c_[w, -np.ones(len(w))], b_ub=np.zeros(len(w)),
                      A_eq=np.r_[s, 0.0][None, :], b_eq=[1.0], bounds=(0, None), method="highs")
    if res.status != 0:
        return -math.inf if objective is Objective.MIN_GPUS else math.inf
    m = np.maximum(np.asarray(res.x[:k]), 0.0)
    total, top = float(s @ m), float((w @ m).max())
    if objective is Objective.MIN_GPUS:
        return total / top if top > 0 else -math.inf
    return gpus * top / total if total > 0 else math.inf


def _lagrange_rows(total: float, wl: np.ndarray, objective: Objective, gpus: int, y_rows: tuple) -> float:
    from scipy.optimize import linprog

    n = len(wl)
    a_ub, b_ub = [], []
    for coefs, lo, hi in y_rows:
        row = np.zeros(n)
        for i, c in coefs.items():
            row[i] = c
        if math.isfinite(hi):
            a_ub.append(row), b_ub.append(hi)
        if math.isfinite(lo):
            a_ub.append(-row), b_ub.append(-lo)
    if objective is Objective.MIN_GPUS:  # min sum y: W y >= total
        a_ub.append(-wl), b_ub.append(-total)
        res = linprog(np.ones(n), A_ub=np.array(a_ub), b_ub=np.array(b_ub), bounds=(0, None), method="highs")
        if res.status == 2:
            return math.inf  # no plan of the branch covers the services
        return float(res.fun) if res.status == 0 else 0.0
    a_ub.append(np.ones(n)), b_ub.append(float(gpus))  # max W y: sum y <= G
    res = linprog(-wl, A_ub=np.array(a_ub), b_ub=np.array(b_ub), bounds=(0, None), method="highs")
    if res.status == 2:
        return 0.0  # the branch holds no plan
    if res.status != 0:
        return math.inf
    return -float(res.fun) / total if total > 0 else math.inf


__all__ = ["_combined", "_lagrange"]
