"""Round-aware convergence of the column generation (min-gpus, `CgOptions.round_aware`, issue 17).

The generation stops, converged, once its Lagrangian bound is within `gap` (relative, 1e-4) of the restricted
master's value.  Where the whole number of GPUs lies inside that gap (a master at 80.0052, a bound at 79.9972),
the whole-GPU bound is one below what the LP gives rounded up (80 where the LP, above 80, says 81).  Round-aware, the
generation then goes on with its tolerances narrowed to the rounding's: the exact pricing at the master's duals is
asked to prove no column worth more than (1 + `rounding_eps`) times its dual, which puts the Lagrangian bound above
the least bound that rounds up like the master (`threshold`), half way between it and the master.  It stops when
the rounded bound meets the rounded master, when that proof holds, when the room left is below the pricing's
precision (`MIN_ROOM`), or on the limits that stop every generation (time, rounds, no new column); `CgBound.rounding`
says which.  The bound stays the Lagrangian bound: valid whichever stop it was.
"""

from __future__ import annotations

import math

from solvers.exact.cg_pricing import TOL
from stsched.checker import whole_gpus

MIN_ROOM = 10 * TOL  # the room (relative to the master's value) below which the rounding is not chased: the
# pricing's own tolerances (TOL on a column's value, 1e-9 on the proof) would decide it, not the LP

# what ended a chase (CgBound.rounding; "" when the rounding never straddled a converged bound)
REACHED = "reached: the bound rounds up like the master"
PROVEN = "proven: no column improves the master at the rounding's tolerance, the bound still rounds below it"
NARROW = "not chased: the master lies within the pricing's precision of the whole number"
STOPPED = "stopped by the limits (time, rounds or no new column) before the bound rounded up like the master"


def threshold(value: float) -> float:
    """The least bound x (to 1e-12 relative) with whole_gpus(x) = whole_gpus(value): found by bisection on the one
    rounding (stsched.checker.whole_gpus), not a copy of its tolerance."""
    n = whole_gpus(value)
    lo, hi = max(0.0, n - 2.0), value  # whole_gpus(lo) < n <= whole_gpus(hi)
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        if whole_gpus(mid) >= n:
            hi = mid
        else:
            lo = mid
    return hi


def room(value: float) -> float:
    """How far (relative) the master's value lies above `threshold`: the gap the bound may keep and round up alike."""
    return (value - threshold(value)) / value if value > 0 and math.isfinite(value) else 0.0


def rounding_eps(value: float, eps: float) -> float:
    """The pricing's tolerance for the rounding's sake: half the room (the proof then puts the bound half way between
    the threshold and the master), never looser than `eps`."""
    return min(eps, 0.5 * room(value))


def straddles(bound: float, value: float) -> bool:
    """The whole-GPU bound is below the master's value rounded up (the rounding straddles the gap between them)."""
    return whole_gpus(bound) < whole_gpus(value)


def chase_end(rounding: bool, chased: bool, converged: bool, proven: bool, bound: float, value: float) -> str:
    """What ended the chase (`CgBound.rounding`) of a generation that stopped at `bound` and master `value`; "" where
    it never ran (`rounding`: round-aware; `chased`: a round chased; `proven`: the last pricing proved no column
    improves the master)."""
    if not rounding or not (chased or (converged and straddles(bound, value))):
        return ""
    if not straddles(bound, value):
        return REACHED
    if converged and room(value) < MIN_ROOM:  # never chased at this value: a proof was the ordinary one (at eps)
        return NARROW
    return PROVEN if proven else STOPPED
