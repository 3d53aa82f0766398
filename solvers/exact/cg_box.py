"""Box-step stabilisation of the column generation's duals (solvers.exact.colgen).

The restricted master's duals are an extreme point of a large optimal face when the master is degenerate (at
1,024 services the Lagrangian bound at the master's own duals was 237 GPUs against a master of 326 and a layout LP
of 307), so the points priced wander.  Box-step (Marsten, Hogan and Blankenship 1975; du Merle, Villeneuve,
Desrosiers and Hansen 1999 for the soft box used here) keeps them near a stability centre: per service s, two
penalty columns in its coverage row,

    buy_s  (+1, cost hi_s, at most `cap`)   ->   pi_s <= hi_s unless the master pays for more
    sell_s (-1, cost -lo_s, at most `cap`)  ->   pi_s >= lo_s likewise

with [lo_s, hi_s] = centre_s -/+ width * (centre_s + floor).  The stabilised master's duals are optimal for the
restricted master with those penalties: inside the box where the box binds, the master's own duals where it does
not.  Its value is not the restricted master's (the penalty columns serve coverage), so the column generation
solves the master without them (`off`) for its value, its convergence test and its mis-price fallback, and with
them (`on`) for the point it prices.  Which duals are priced never affects the bound's validity: the Lagrangian
bound holds for any pi >= 0.  The box grows (`grow`) when the Lagrangian bound stalls; max-scale's coverage duals
sum to one, which the box admits (sum lo <= 1 <= sum hi around a centre that sums to one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BoxStep:
    """The penalty columns of one restricted master (a `_Master` of cg_master: `h`, `row_serv`, `_add`)."""

    width: float  # relative half-width of the box around the centre
    cap: float = 1.0  # penalty columns' upper bound (coverage units): the box is soft, the master stays bounded
    floor: float = 1e-3  # absolute part of the width, relative to the centre's mean dual (zero duals get a box)
    grow_by: float = 2.0
    max_width: float = 8.0
    stalls: int = 0  # Lagrangian rounds in a row without a better bound

    def __post_init__(self) -> None:
        self._cols: np.ndarray | None = None
        self._services: list[int] = []

    def _install(self, master) -> None:
        self._services = sorted(master.row_serv)
        first = master.h.getNumCol()
        for s in self._services:
            master._add(0.0, [master.row_serv[s]], [1.0])  # buy
            master._add(0.0, [master.row_serv[s]], [-1.0])  # sell
        self._cols = np.arange(first, first + 2 * len(self._services), dtype=np.int32)
        self.off(master)

    def on(self, master, centre: np.ndarray) -> None:
        """Penalty columns priced around `centre` (duals per service of the instance)."""
        if self._cols is None:
            self._install(master)
        c = np.array([max(float(centre[s]), 0.0) for s in self._services])
        half = self.width * (c + self.floor * max(float(c.mean()), 1e-12))
        hi, lo = c + half, np.maximum(c - half, 0.0)
        cost = np.empty(2 * len(c))
        cost[0::2], cost[1::2] = hi, -lo
        upper = np.full(2 * len(c), self.cap)
        upper[1::2][lo <= 0] = 0.0  # no lower box at zero: pi >= 0 already
        master.h.changeColsCost(len(self._cols), self._cols, cost)
        master.h.changeColsBounds(len(self._cols), self._cols, np.zeros(len(self._cols)), upper)

    def off(self, master) -> None:
        """The restricted master itself (penalty columns fixed at zero)."""
        if self._cols is not None:
            z = np.zeros(len(self._cols))
            master.h.changeColsBounds(len(self._cols), self._cols, z, z)

    def used(self, master) -> float:
        """Coverage the penalty columns serve in the last stabilised solution (0: the box did not bind)."""
        if self._cols is None:
            return 0.0
        return float(np.abs(np.asarray(master.h.getSolution().col_value)[self._cols]).sum())

    def stalled(self, improved: bool) -> bool:
        """Record a Lagrangian round; widen the box after two in a row without a better bound (True if widened)."""
        self.stalls = 0 if improved else self.stalls + 1
        if self.stalls >= 2 and self.width < self.max_width:
            self.width = min(self.width * self.grow_by, self.max_width)
            self.stalls = 0
            return True
        return False
