"""Plan for H x the rates, judge at 1 x: a uniform head-room that leaves every tenant at <= 1/H of its capacity.

A checker-valid plan may run a tenant at 100 % of its cycle capacity, which Poisson arrivals cannot sustain
(docs/SIMULATOR.md).  `solve_with_headroom` asks a registered solver for a plan at H x every rate and has the
checker judge that plan against the offered rates, so the result speaks of the instance the user gave.  The CLI's
`stsched solve --headroom` and the Python API's `stsched.solve(..., headroom=H)` both call it.
"""

from __future__ import annotations

from dataclasses import replace

from stsched.checker import check
from stsched.errors import InputError
from stsched.validate import check_real
from stsched.problem import Instance
from stsched.registry import Judged, Objective, SolveOptions, run_solver


def validate_headroom(headroom: float, objective: Objective) -> None:
    check_real(headroom, "headroom", minimum=1.0)
    if headroom != 1.0 and objective is Objective.MAX_SCALE:
        raise InputError("headroom applies to min-gpus and adapt (max-scale already finds the largest rates)")


def solve_with_headroom(solver: str, offered: Instance, options: SolveOptions, headroom: float = 1.0) -> Judged:
    """`run_solver` on `offered.scaled(headroom)`, its plan judged against `offered` (headroom 1: plain)."""
    validate_headroom(headroom, options.objective)
    if headroom == 1.0:
        return run_solver(solver, offered, options)
    judged = run_solver(solver, offered.scaled(headroom), options)
    r = judged.result
    if r.plan is None:
        return judged
    note = f"planned for {float(headroom)!r} x every rate (tenants at <= {100 / headroom:.0f} % of their capacity)"
    r = replace(r, message=f"{r.message + '; ' if r.message else ''}{note}")
    return Judged(r, check(offered, r.plan))
