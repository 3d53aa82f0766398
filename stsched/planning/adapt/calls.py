"""The solver calls of the re-planning policies (`stsched.planning.adapt.policies`, `stsched.planning.adapt.baselines`,
the needs of `stsched.planning.adapt.offline`): one call judged by the checker (`_solve`, `min_gpus`), its parameters
(`_params`: the node limit `adapt_nodes`), and the context that bounds or watches every call of a decision: the
decision's time budget (`decision_deadline`), more time for the initial deployment (`patience`) and the calls the
wall clock may have cut (`clock_watch`).  No dependency on the policies: they, and the baselines that they import,
import this module."""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import fields
from typing import TYPE_CHECKING, Iterator

from stsched.errors import InfeasibleError
from stsched.plan import Plan
from stsched.problem import Instance
from stsched.registry import Objective, SolveOptions, Status, available_solvers, run_solver

if TYPE_CHECKING:
    from stsched.planning.adapt.policies import PolicyOptions

_DEADLINE: ContextVar[float | None] = ContextVar("stsched_adapt_decision_deadline", default=None)
MIN_CALL_S = 0.05  # a solver call is not started with less time than this left in the decision's budget
# a solver call that ran at least this share of its wall-clock limit may have been cut by the clock (`clock_watch`)
CLOCK_SHARE = 0.5


@contextmanager
def decision_deadline(seconds: float | None) -> Iterator[None]:
    """Within the block every solver call of a policy gets at most what is left of `seconds` (wall clock, from
    entering the block) as its time limit, and none is started with less than `MIN_CALL_S` left: it fails as
    infeasible, which the policies treat as a candidate not found (the plan in force is kept when no plan at all is
    found).  None: no budget, each call has its own `time_limit_s`."""
    token = _DEADLINE.set(None if seconds is None else time.perf_counter() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


_PATIENCE: ContextVar[float] = ContextVar("stsched_adapt_patience", default=1.0)


@contextmanager
def patience(factor: float) -> Iterator[None]:
    """Within the block every solver call of a policy gets `factor` times its time limit (the initial deployment
    retries with more time when the first call stopped before a plan was complete: on a loaded machine a wall-clock
    limit can run out before a large instance has any plan)."""
    token = _PATIENCE.set(factor)
    try:
        yield
    finally:
        _PATIENCE.reset(token)


_CLOCK: ContextVar[list[str] | None] = ContextVar("stsched_adapt_clock_calls", default=None)


@contextmanager
def clock_watch() -> Iterator[list[str]]:
    """The solver calls within the block that the wall clock may have cut, listed as "solver (objective, wall s of
    limit s)": those that ran at least `CLOCK_SHARE` (half) of their time limit.  A shorter call was not cut: the
    heuristic keeps at most half its limit back to check its plan, the exact adapt's engine gets what its model
    preparation left.  A call not started because the decision's budget (`decision_deadline`) was spent is listed
    too ("not started").  Every other call stopped on its work limits (the heuristic's counts, `adapt_nodes`), so a
    decision without such a call is the same at any machine load (`run_adapt` counts the decisions with one:
    `AdaptResult.clock_cut`).  A listed call may still have finished on its work limits (it was slow, not cut)."""
    calls: list[str] = []
    token = _CLOCK.set(calls)
    try:
        yield calls
    finally:
        _CLOCK.reset(token)


def takes_nodes(solver: str) -> bool:
    """Whether the registered `solver` has a node limit (`max_nodes` among its options), which `adapt_nodes` sets."""
    info = available_solvers().get(solver)
    return info is not None and "max_nodes" in {f.name for f in fields(info.options)}


def _params(opts: PolicyOptions, solver: str, objective: Objective) -> tuple[tuple[str, str], ...]:
    """The parameters of a call to `solver`: the policy's `params` for its own solver; for another (the exact
    `adapt_solver`) none.  The node limit `adapt_nodes` is added (as `max_nodes`, where the solver takes it) to every
    call of another solver and to every adapt call of the policy's own (milp as both the policy's solver and its
    `adapt_solver` included; its min-gpus calls keep the clock alone), unless the policy's `params` set `max_nodes`."""
    own = opts.params if solver == opts.solver else ()
    if opts.adapt_nodes is None or any(k == "max_nodes" for k, _ in own):
        return own
    if (solver != opts.solver or objective == Objective.ADAPT) and takes_nodes(solver):
        return own + (("max_nodes", str(opts.adapt_nodes)),)
    return own


class ProvedInfeasible(InfeasibleError):
    """The solver proved that no plan exists (status infeasible, `stsched.claims`): more time would find none."""


def _solve(instance: Instance, opts: PolicyOptions, objective: Objective, current: Plan | None = None,
           solver: str | None = None) -> Plan:
    """One solver call of a policy (`solver`, default the policy's own), judged by the checker; raises
    `InfeasibleError` when it found no valid plan (`ProvedInfeasible` when it proved that none exists)."""
    solver = solver or opts.solver
    limit, end = opts.time_limit_s * _PATIENCE.get(), _DEADLINE.get()
    if end is not None:
        left = end - time.perf_counter()
        if left < MIN_CALL_S:  # skipped by the clock: the decision depends on the machine's load as a cut call does
            watch = _CLOCK.get()
            if watch is not None:
                watch.append(f"{solver} ({objective.value}, not started: {left:.3g} s left of the decision's budget)")
            raise InfeasibleError(f"{solver} ({objective.value}) not started: the decision's time budget is spent")
        limit = min(limit, left)
    options = SolveOptions(objective=objective, time_limit_s=limit, seed=opts.seed,
                           current_plan=current, params=_params(opts, solver, objective))
    t0 = time.perf_counter()
    judged = run_solver(solver, instance, options)
    watch, wall = _CLOCK.get(), time.perf_counter() - t0
    if watch is not None and wall >= CLOCK_SHARE * limit:
        watch.append(f"{solver} ({objective.value}, {wall:.3g} s of {limit:.3g} s)")
    plan = judged.result.plan
    if plan is None or not judged.valid:
        why = judged.result.message or judged.result.status.value
        if judged.report is not None and not judged.report.valid:
            why += "; " + "; ".join(str(v) for v in judged.report.violations[:2])
        proved = judged.result.status is Status.INFEASIBLE and plan is None
        raise (ProvedInfeasible if proved else InfeasibleError)(f"{solver} ({objective.value}) found no valid plan: "
                                                                f"{why}")
    return plan


def min_gpus(instance: Instance, opts: PolicyOptions) -> Plan:
    return _solve(instance, opts, Objective.MIN_GPUS).compact()
