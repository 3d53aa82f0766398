"""What a solver claims, judged: `run_solver` trusts no solver, ours or a third party's plugin (entry points).

A solver returns a `SolveResult`: a plan, a status, an objective and a bound.  The checker judges the plan
(`stsched.checker`); this module judges the rest against it and against the instance, and corrects what a plan
disproves, each correction a warning and a note in the result's message:

- the objective of a valid plan is its own: min-gpus its GPUs in use, max-scale its `scale` (a solver that said 0
  GPUs for a plan on 1, or alpha 50 for a plan at scale 1, was reported as it said);
- a bound that a valid plan contradicts (a lower bound on GPUs above the plan's, an upper bound on alpha below its
  scale) or that is not a finite number is dropped, and an `optimal` status resting on it becomes `feasible`;
- `optimal` or `feasible` with a plan the checker rejects becomes `unknown`: nothing valid was found;
- `infeasible` with a valid plan becomes `feasible` (the plan is the proof); services named as unservable that the
  instance does not have are dropped;
- a solver that ran past its time limit by more than the promised 10 % + 1 s (`SolveOptions.time_limit_s`) is
  named (its result is kept: a Python solver cannot be stopped from outside without a process of its own).

A solver that raises (other than bad input, infeasibility or an interrupt) or returns something other than a
`SolveResult` is a `SolverFailed`: one line naming the solver and the error (its traceback with `-vv`), exit 1.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import Any, Callable, TypeVar

from stsched.checker import REL_TOL, Report
from stsched.errors import (FieldError, InfeasibleError, InputError, SolverFailed, interrupts, machine_limit,
                            raise_noted_interrupt, reraise_interrupt)
from stsched.plan import Plan
from stsched.problem import Instance

log = logging.getLogger(__name__)

OVERRUN_SHARE, OVERRUN_S = 0.10, 1.0  # every solver stops within 10 % + 1 s of its time limit (SolveOptions)


def failed(name: str, error: BaseException) -> SolverFailed:
    """The one line for a solver that raised: its name, the error's type and message (a file it could not write
    for a limit of the machine, e.g. CBC's model file under `ulimit -f`, is said to be that, not its fault)."""
    log.debug("solver %s raised", name, exc_info=error)
    limit = machine_limit(error)
    if limit:
        return SolverFailed(f"solver {name!r} could not write a file: {error.strerror or error} "
                            f"({limit}: a limit of this machine, not a fault of the solver)")
    text = str(error).strip().splitlines()
    return SolverFailed(f"solver {name!r} failed: {type(error).__name__}"
                        + (f": {text[0][:300]}" if text else "") + " (a fault of the solver; -vv shows its traceback)")


T = TypeVar("T")


def guarded(name: str, call: Callable[..., T], *args: Any) -> T:
    """`call(*args)` of solver or bound provider `name`: bad input, infeasibility and SolverFailed pass through;
    any other error is the solver's fault, one line (`failed`), or the interrupt it came of."""
    signals = interrupts()
    try:
        return call(*args)
    except FieldError as e:  # a Plan, an Instance or a part of one the solver built badly: its fault, not the input's
        raise failed(name, e) from e
    except (InputError, InfeasibleError, SolverFailed):
        raise
    except Exception as e:  # noqa: BLE001 - a solver's fault, ours or a plugin's: one line, not a traceback
        reraise_interrupt(e)
        raise_noted_interrupt(signals, e)  # an engine that died of the interrupt (PuLP: 'HiGHS: Not Available')
        raise failed(name, e) from e


def check_shape(name: str, result: Any) -> None:
    """A `SolveResult` whose plan is a Plan (or None), else SolverFailed."""
    from stsched.registry import SolveResult, Status

    if not isinstance(result, SolveResult):
        raise SolverFailed(f"solver {name!r} returned {type(result).__name__}, not a SolveResult")
    if result.plan is not None and not isinstance(result.plan, Plan):
        raise SolverFailed(f"solver {name!r} returned a plan of type {type(result.plan).__name__}, not a Plan")
    if not isinstance(result.status, Status):
        raise SolverFailed(f"solver {name!r} returned status {result.status!r}, not a Status")
    for what in ("objective", "bound"):
        v = getattr(result, what)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise SolverFailed(f"solver {name!r} returned {what} {v!r:.60}, not a number")


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b))


def _meets(objective_kind: Any, objective: float, bound: float, scale_tol: float) -> bool:
    """Whether `bound` proves `objective` optimal: whole GPUs (a solver's bound is already one on valid plans, the
    checker's tolerance counted (`whole_gpus`): a fractional one rounds up), alpha within
    the max-scale search's relative precision.  (Before, whole_gpus was applied again: not idempotent from about
    500,000 GPUs on, it took a whole bound n to n - 1 and called an optimal plan feasible.)"""
    from stsched.registry import Objective

    if objective_kind is Objective.MIN_GPUS:
        return math.ceil(bound - 1e-6) >= objective  # (1e-6: the floating point of a whole bound's sum)
    return bound <= objective * (1 + scale_tol) + REL_TOL


def contradicts(objective_kind: Any, bound: float, plan_value: float) -> bool:
    """Whether a valid plan of value `plan_value` (GPUs, alpha) disproves `bound` (a lower bound on GPUs, an upper
    bound on alpha); a bound that is not a finite number is no bound either."""
    from stsched.registry import Objective

    if not math.isfinite(bound):
        return True
    if objective_kind is Objective.MIN_GPUS:
        return bound > plan_value * (1 + REL_TOL)
    return bound < plan_value * (1 - REL_TOL)


def judge_result(name: str, instance: Instance, options: Any, result: Any, report: Report | None) -> Any:
    """`result` with every claim that its plan (judged: `report`) or the instance disproves corrected."""
    from stsched.registry import Objective, Status

    notes: list[str] = []
    status, objective, bound = result.status, result.objective, result.bound
    unservable = result.infeasible_services
    valid = report is not None and report.valid
    obj = options.objective
    if result.plan is not None and valid and obj is not Objective.ADAPT:
        own = float(result.plan.gpus_used) if obj is Objective.MIN_GPUS else float(result.plan.scale)
        if objective is None or not math.isfinite(objective) or not _same(objective, own):
            notes.append(f"objective {objective!r} is not its plan's ({own:g}): the plan's")
            objective = own
    if bound is not None and not math.isfinite(bound):
        notes.append(f"bound {bound!r} is not a finite number: dropped")
        bound = None
    if bound is not None and valid and objective is not None and obj is not Objective.ADAPT:
        if contradicts(obj, bound, objective):
            side = "above its valid plan's" if obj is Objective.MIN_GPUS else "below its valid plan's"
            notes.append(f"bound {bound:g} is {side} {objective:g}: not a bound, dropped")
            bound = None
            if status is Status.OPTIMAL:
                status = Status.FEASIBLE
    if status is Status.OPTIMAL and bound is not None and objective is not None and obj is not Objective.ADAPT \
            and not _meets(obj, objective, bound, options.max_scale_tol):
        notes.append(f"optimal, yet its own bound {bound:g} leaves a gap to {objective:g}: feasible")
        status = Status.FEASIBLE
    if status in (Status.OPTIMAL, Status.FEASIBLE) and result.plan is not None and not valid:
        notes.append(f"status {status.value} with a plan the checker rejects: unknown")
        status = Status.UNKNOWN
    if status is Status.INFEASIBLE and result.plan is not None and valid:
        notes.append("infeasible with a valid plan: feasible")
        status, unservable = Status.FEASIBLE, ()
    strangers = [s for s in unservable if not instance.has_service(s)]
    if strangers:
        notes.append(f"named {', '.join(map(repr, strangers))} unservable: not services of the instance, dropped")
        unservable = tuple(s for s in unservable if instance.has_service(s))
    limit = options.time_limit_s
    if result.wall_s > limit * (1 + OVERRUN_SHARE) + OVERRUN_S:
        notes.append(f"ran {result.wall_s:.1f} s, past its time limit of {limit:g} s")
    if not notes:
        return result
    for n in notes:
        log.warning("solver %s: %s", name, n)
    message = "; ".join([result.message] * bool(result.message) + [f"registry: {n}" for n in notes])
    return replace(result, status=status, objective=objective, bound=bound, infeasible_services=unservable,
                   message=message)
