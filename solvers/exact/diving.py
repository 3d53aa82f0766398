"""Integer plans from the column generation's columns by diving (min-gpus): the configuration LP over the generated
columns is solved in HiGHS, the columns of the largest fractional values are rounded up (their lower bounds raised
to the next integer) and the LP re-solved warm, until every configuration count is whole; the GPUs then come from
a small integer program over the layouts (every configuration needs a slot of its size).  Rounding up only adds
coverage, so the counts always serve every service's rate; the plan is checked like every plan by the caller.

Symbols as in solvers.exact.colgen: x_c partitions of configuration c, y_L GPUs of layout L, a_{c,s} coverage.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from solvers.exact.patterns import Config, ModelData, coverage
from solvers.exact.plans import Counts

log = logging.getLogger(__name__)

INT_TOL = 1e-6


def slots_lp(data: ModelData, configs: list[Config], rates: np.ndarray, clip: float = 1.0):
    """The slots formulation's LP as a HiGHS model, not yet run: one column per configuration of `configs` (its
    slot of its size and its `coverage` of `rates`), then one per layout of `data` (cost 1 GPU, the slots it
    gives); rows: slots used <= slots given per size, coverage >= 1 per service with a rate."""
    import highspy

    from solvers.exact.milp import quiet_highs

    h = quiet_highs()
    inf = highspy.kHighsInf
    sizes = list(data.sizes)
    row_size = {p: i for i, p in enumerate(sizes)}
    active = [s for s in range(len(rates)) if rates[s] > 0]
    row_serv = {s: len(sizes) + i for i, s in enumerate(active)}
    n_rows = len(sizes) + len(active)
    lower = np.r_[np.full(len(sizes), -inf), np.ones(len(active))]
    upper = np.r_[np.zeros(len(sizes)), np.full(len(active), inf)]
    h.addRows(n_rows, lower, upper, 0, np.zeros(n_rows, dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
    for c in configs:
        cov = coverage(c, rates, clip)
        idx = [row_size[c.size]] + [row_serv[s] for s in cov]
        h.addCol(0.0, 0.0, inf, len(idx), np.array(idx, dtype=np.int32), np.array([1.0] + list(cov.values())))
    for L in data.layouts:
        ps = sorted(set(L))
        h.addCol(1.0, 0.0, inf, len(ps), np.array([row_size[p] for p in ps], dtype=np.int32),
                 np.array([-float(L.count(p)) for p in ps]))
    return h


def dive(data: ModelData, deadline: float, clock=time.perf_counter, share: float = 0.05) -> tuple[Counts | None, str]:
    """Counts of a min-gpus plan over `data`'s configurations (slots formulation), or None (with the reason) when
    the LP has no solution or the deadline passes; each round fixes `share` of the fractional columns (at least
    one), the largest first."""
    import highspy

    h = slots_lp(data, data.configs, np.asarray(data.rates, dtype=float), data.clip_alpha)
    inf = highspy.kHighsInf
    sizes = list(data.sizes)
    n_x = len(data.configs)
    lo = np.zeros(n_x)
    rounds = 0
    while True:
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None, f"diving: the LP stopped ({h.modelStatusToString(h.getModelStatus())}) after {rounds} rounds"
        x = np.asarray(h.getSolution().col_value[:n_x])
        frac = np.flatnonzero(np.abs(x - np.round(x)) > INT_TOL)
        if not len(frac):
            break
        if clock() > deadline:
            return None, f"diving: out of time after {rounds} rounds ({len(frac)} columns still fractional)"
        rounds += 1
        k = max(1, int(len(frac) * share))
        pick = frac[np.argsort(-x[frac], kind="stable")[:k]]
        lo[pick] = np.ceil(x[pick] - INT_TOL)
        h.changeColsBounds(len(pick), pick.astype(np.int32), lo[pick], np.full(len(pick), inf))
    counts = np.round(x).astype(int)
    need = {p: int(sum(n for c, n in zip(data.configs, counts) if c.size == p)) for p in sizes}
    layouts = _layouts(data, need)
    if layouts is None:
        return None, "diving: no whole number of GPUs holds the rounded partitions"
    cfg = {i: int(n) for i, n in enumerate(counts) if n > 0}
    gpus = sum(layouts.values())
    return Counts(layouts=layouts, configs=cfg), (f"diving: {rounds} rounds, {sum(cfg.values())} partitions on "
                                                  f"{gpus} GPUs")


def _layouts(data: ModelData, need: dict[float, int]) -> dict[int, int] | None:
    """The fewest GPUs (a small integer program over the layouts) with a slot for every partition."""
    import highspy

    from solvers.exact.milp import quiet_highs

    h = quiet_highs()
    inf = highspy.kHighsInf
    sizes = [p for p in data.sizes if need.get(p, 0) > 0]
    if not sizes:
        return {}
    row = {p: i for i, p in enumerate(sizes)}
    h.addRows(len(sizes), np.array([float(need[p]) for p in sizes]), np.full(len(sizes), inf), 0,
              np.zeros(len(sizes), dtype=np.int32), np.zeros(0, dtype=np.int32), np.zeros(0))
    for L in data.layouts:
        ps = [p for p in sorted(set(L)) if p in row]
        h.addCol(1.0, 0.0, inf, len(ps), np.array([row[p] for p in ps], dtype=np.int32),
                 np.array([float(L.count(p)) for p in ps]))
    n = len(data.layouts)
    h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * n))
    h.setOptionValue("time_limit", 30.0)
    h.run()
    sol = h.getSolution()
    if h.getInfo().primal_solution_status != 2:  # no feasible solution
        return None
    y = np.round(np.asarray(sol.col_value[:n])).astype(int)
    return {i: int(v) for i, v in enumerate(y) if v > 0} if math.isfinite(float(y.sum())) else None


__all__ = ["dive"]
