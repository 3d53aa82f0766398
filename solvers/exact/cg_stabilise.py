"""Automatic dual smoothing for the column generation (solvers.exact.colgen): the Wentges weight adapted each round
from the direction of a subgradient of the Lagrangian bound (Pessoa, Sadykov, Uchoa and Vanderbeck, "Automation and
combination of linear-programming based stabilization techniques in column generation", INFORMS J. Computing 2018).

The pricing point is pi_sep = a * pi_in + (1 - a) * pi_out (pi_in: the duals of the best Lagrangian bound so far,
pi_out: the restricted master's).  After pricing at pi_sep, a subgradient g of the Lagrangian function there says
whether the bound grows towards pi_out: if g . (pi_out - pi_sep) > 0 (an ascent direction) the weight falls by
`step` (price nearer the master's duals), else it rises by `step` (1 - a) (stay nearer the centre).  The weight only
chooses where to price: every Lagrangian bound is valid at any duals, so this changes speed, never validity.

The Lagrangian function (colgen's module docstring) with the best configuration c*_p of each size at pi_sep and the
layout L* of the greatest sum_p n_L(p) V_p: for min-gpus, with K an estimate of the optimum (the master's value),
L(pi) = sum_s pi_s - K (sum_p n_L*(p) pi . a_c*_p - 1), so g_s = 1 - K sum_p n_L*(p) a_{c*_p, s}; for max-scale
(sum_s pi_s = 1 in the master, the bound G sum_p n_L*(p) pi . a_c*_p is minimised) -g is the descent direction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from solvers.exact.cg_common import layout_weights
from solvers.exact.patterns import Config


@dataclass(frozen=True)
class AutoSmoothing:
    """The adaptation rule: weights stay within [low, high]."""

    step: float = 0.1
    low: float = 0.05
    high: float = 0.95

    def update(self, a: float, ascent: bool) -> float:
        """The next weight after a pricing at weight `a` whose subgradient did (ascent) or did not point towards
        the master's duals."""
        nxt = a - self.step if ascent else a + self.step * (1.0 - a)
        return float(min(self.high, max(self.low, nxt)))


def ascent_towards_master(pi_out: np.ndarray, pi_sep: np.ndarray, best: dict[float, Config],
                          ub: dict[float, float], layouts, value: Callable[[Config, np.ndarray], float],
                          minimise_gpus: bool, k_estimate: float) -> bool:
    """Whether the Lagrangian bound grows from pi_sep towards pi_out (the sign of g . (pi_out - pi_sep)), with the
    best configuration found per size (`best`) standing for the pricing's argmax and the proven bounds `ub` choosing
    the layout.  `value(c, x)` is x . a_c (linear in x)."""
    d = pi_out - pi_sep
    wl = layout_weights(layouts, ub)
    star = layouts[int(np.argmax(wl))]
    s = sum(star.count(p) * value(best[p], d) for p in set(star) if p in best)
    if minimise_gpus:
        return float(d.sum()) - k_estimate * s > 0.0
    return s < 0.0


__all__ = ["AutoSmoothing", "ascent_towards_master"]
