"""The restricted master LP of the column generation (solvers.exact.colgen) in HiGHS, and the layout LP built on it.

`_Master`: min sum_L y_L | max alpha over the layouts' GPUs y and the configurations' counts x (the rows of
solvers.exact.colgen's docstring: one per partition size, one per active service, and for max-scale the GPUs),
columns added and re-solved warm; branching rows on y (solvers.exact.cg_branch, cg_ryan's subclass), rounding cut
rows (solvers.exact.cg_cuts), the service duals pi read out for the pricing, and a time limit on the wall clock or
a CPU clock.  `layout_lp_duals`: the layout LP (one-tenant configurations at their optimistic capacity) on the same
master, whose duals are the column generation's first stability centre.
"""

from __future__ import annotations

import math
import time

import numpy as np

from solvers.exact.patterns import POLL_EVERY, Config, OutOfTime, Stop, poll
from stsched.bounds import point_capacity
from stsched.problem import Instance
from stsched.registry import Objective


class _Master:
    """The restricted master in HiGHS (columns added, re-solved warm)."""

    def __init__(self, sizes, layouts, active: list[int], objective: Objective, gpus: int):
        import highspy

        from solvers.exact.milp import quiet_highs

        self.h = quiet_highs()
        inf = highspy.kHighsInf
        self.inf = inf
        self.maxi = objective is Objective.MAX_SCALE
        self.sizes = list(sizes)
        self.row_size = {p: i for i, p in enumerate(self.sizes)}
        self.row_serv = {s: len(self.sizes) + i for i, s in enumerate(active)}
        n_rows = len(self.sizes) + len(active) + (1 if self.maxi else 0)
        lower = np.r_[np.full(len(self.sizes), -inf), np.full(len(active), 0.0 if self.maxi else 1.0),
                      [-inf] if self.maxi else []]
        upper = np.r_[np.zeros(len(self.sizes)), np.full(len(active), inf), [float(gpus)] if self.maxi else []]
        self.h.addRows(n_rows, lower, upper, 0, np.zeros(n_rows, dtype=np.int32), np.zeros(0, dtype=np.int32),
                       np.zeros(0))
        for L in layouts:
            idx = [self.row_size[p] for p in sorted(set(L))]
            val = [-float(L.count(p)) for p in sorted(set(L))]
            if self.maxi:
                idx.append(n_rows - 1)
                val.append(1.0)
            self._add(0.0 if self.maxi else 1.0, idx, val)
        if self.maxi:
            self._add(-1.0, [self.row_serv[s] for s in active], [-1.0] * len(active))
        self.n_rows = n_rows
        self.config_cols: list[int] = []  # the HiGHS column of every configuration, in the order added
        self.cut_rows: list[int] = []  # the HiGHS row of every cut (solvers.exact.cg_cuts), in the pool's order
        self._release = None  # unsubscribes the interrupt callbacks of `limit` (a CPU clock)

    def _add(self, cost: float, idx: list[int], val: list[float]) -> None:
        self.h.addCol(cost, 0.0, self.inf, len(idx), np.array(idx, dtype=np.int32), np.array(val, dtype=float))

    def add_y_row(self, coefs: dict[int, float], lo: float, hi: float) -> None:
        """A constraint on the GPUs per layout (layout index -> coefficient): a branch of cg_branch."""
        idx = np.array(sorted(coefs), dtype=np.int32)
        self.h.addRow(lo if math.isfinite(lo) else -self.inf, hi if math.isfinite(hi) else self.inf, len(idx), idx,
                      np.array([float(coefs[i]) for i in idx]))

    def add_artificials(self, active: list[int], cost: float) -> None:
        """Min-gpus under branching rows: a costly slack per service keeps the restricted master feasible (its
        duals stay finite; the Lagrangian bound holds for any duals)."""
        for s in active:
            self._add(cost, [self.row_serv[s]], [1.0])

    def y(self, n: int) -> tuple[float, ...]:
        return tuple(float(v) for v in self.h.getSolution().col_value[:n])

    def add_config(self, c: Config, cov: dict[int, float], cut_coefs: dict[int, float] | None = None) -> None:
        """A configuration's column (`cut_coefs`: its coefficient per cut position, solvers.exact.cg_cuts)."""
        idx = [self.row_size[c.size]] + [self.row_serv[s] for s in cov]
        val = [1.0] + list(cov.values())
        for j, h in (cut_coefs or {}).items():
            idx.append(self.cut_rows[j])
            val.append(h)
        self.config_cols.append(self.h.getNumCol())
        self._add(0.0, idx, val)

    def add_cut_row(self, coefs: dict[int, float]) -> None:
        """A cut scaled to sum_c h_c x_c >= 1 (configuration position -> h_c) (min-gpus)."""
        idx = np.array([self.config_cols[i] for i in coefs], dtype=np.int32)
        self.cut_rows.append(self.h.getNumRow())
        self.h.addRow(1.0, self.inf, len(idx), idx, np.array(list(coefs.values()), dtype=float))

    def config_x(self) -> np.ndarray:
        """The configurations' values in the last solution, in the order added."""
        return np.asarray(self.h.getSolution().col_value)[self.config_cols]

    def service_duals(self, dual: np.ndarray, n: int) -> np.ndarray:
        """The coverage duals pi >= 0 per service (n: the instance's services; 0 for those without a row) read out of
        the master's row duals `dual`, followed by the cuts' duals (>= 0) when there are cuts."""
        pi = np.zeros(n + len(self.cut_rows))
        for s, row in self.row_serv.items():
            pi[s] = max(0.0, float(dual[row]))
        for j, row in enumerate(self.cut_rows):
            pi[n + j] = max(0.0, float(dual[row]))
        return pi

    def limit(self, deadline: float, clock, wall: bool) -> None:
        """Stop the next solves at `deadline` on `clock` (`wall`: the wall clock): by HiGHS's own `time_limit` (the
        seconds left) on the wall clock; on a CPU clock by its interrupt callbacks reading that clock
        (`solvers.exact.milp.interrupt_at`), since HiGHS's limit is wall seconds: the CPU seconds left given to it
        would cut the LP early on a loaded machine."""
        if wall:
            self.h.setOptionValue("time_limit", max(deadline - clock(), 1e-3))
        else:
            from solvers.exact.milp import interrupt_at

            self._release = interrupt_at(self.h, deadline, clock)

    def unlimit(self) -> None:
        """The later solves without the limit of `limit`."""
        self.h.setOptionValue("time_limit", math.inf)
        if self._release is not None:
            self._release()
            self._release = None

    def timed_out(self) -> bool:
        """Whether the last solve stopped on the limit of `limit` (HiGHS's time limit, or interrupted)."""
        status = self.h.getModelStatus()
        return status in (status.__class__.kTimeLimit, status.__class__.kInterrupt)

    def solve(self) -> tuple[float, np.ndarray, dict[float, float]] | None:
        self.h.run()
        if self.h.getModelStatus() != self.h.getModelStatus().__class__.kOptimal:
            return None
        dual = np.asarray(self.h.getSolution().row_dual)
        value = float(self.h.getInfo().objective_function_value)
        return (-value if self.maxi else value), dual, {p: abs(float(dual[i])) for p, i in self.row_size.items()}


def layout_lp(instance: Instance, objective: Objective, layouts, active: list[int]) -> float:
    """The layout LP of `stsched.bounds.lp_relaxation` (one-tenant configurations at their optimistic capacity, no
    clipping: a valid bound, docs/RULES.md), built sparse so that it scales to thousands of services."""
    return layout_lp_duals(instance, objective, layouts, active)[0]


def layout_lp_duals(instance: Instance, objective: Objective, layouts, active: list[int], stop: Stop = None,
                    deadline: float | None = None, clock=time.perf_counter, wall: bool = True
                    ) -> tuple[float, np.ndarray | None, dict[float, float] | None]:
    """The layout LP's value and its duals (pi per service of the instance, mu per size; None when it has none):
    the column generation's first stability centre.  `stop` is polled while its columns are built and HiGHS is
    stopped at `deadline` on `clock` (`wall`: the wall clock; `_Master.limit`) (patterns.OutOfTime either way)."""
    master = _Master(instance.mechanism.sizes, layouts, active, objective, instance.gpus)
    names = instance.service_names
    for n, s in enumerate(active):
        if n % POLL_EVERY == 0:
            poll(stop, "the layout LP's columns")
        rate = instance.services[s].rate
        for p in instance.mechanism.sizes:
            best = max((c for b in instance.batches for k in instance.procs_options()
                        if (c := point_capacity(instance, names[s], b, p, k, optimistic=True)) is not None),
                       default=0.0)
            if best > 0:
                master.add_config(Config(p, 1, ((s, 0),), (best,), 0.0), {s: best / rate})
    if deadline is not None:
        poll(stop, "the layout LP")
        master.limit(deadline, clock, wall)
    out = master.solve()
    if out is None and master.timed_out():
        raise OutOfTime("the layout LP's solve")
    if out is None:  # min-gpus: some service has no configuration at all (caught before by `unservable`)
        return (math.inf if objective is Objective.MIN_GPUS else 0.0), None, None
    value, dual, mu = out
    return value, master.service_duals(dual, len(instance.services)), mu


__all__ = ["_Master", "layout_lp", "layout_lp_duals"]
