"""One entry point for "solve this instance as a user means it", shared by `stsched solve` and `stsched.solve`:
plan for H x the rates (`headroom`), and, for an instance planned for Poisson arrivals, re-plan until a
simulation meets an SLO-attainment target (`attainment`; the Poisson default below).

The Poisson default: a min-gpus plan of an instance planned for Poisson arrivals, by a solver that models its
margin, is re-planned until every service reaches 99 % in simulation (a plan valid for the margin alone leaves its
worst services at 91-96 % on 12-service instances: `python -m experiments.arrivals_default`), raising a short
service's rate factor by at most `POISSON_MAX_STEP` per round.
`attainment=0` turns it off.

When the loop runs, the solve's time limit (`SolveOptions.time_limit_s`, `stsched solve --time-limit`) is the whole
loop's: every round's solve and simulation end by it (`AttainmentOptions.time_limit_s`); a loop stopped by it
returns the best round simulated so far (or the first round's checker-valid plan, unsimulated) with the target not
met and a message that says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from stsched.errors import InputError
from stsched.planning.attainment import (AttainmentOptions, RoundsTooLarge, WindowTooShort, plan_for_attainment,
                                        registry_solver)
from stsched.planning.headroom import solve_with_headroom, validate_headroom
from stsched.problem import Arrivals, Instance
from stsched.registry import Judged, Objective, SolveOptions, Status, available_solvers

POISSON_TARGET = 0.99
#: the Poisson default raises a short service's rate factor by at most 10 % per round (the loop's own default is
#: 50 %): large raises re-pack the services that fall short onto more GPUs than they need (found with the margin
#: 0.1 on 12 services, seeds 1 and 2: +4 GPUs at 0.5, +2 at 0.1; docs/RESULTS.md "Safe default arrivals")
POISSON_MAX_STEP = 0.1


@dataclass(frozen=True)
class PlanOptions:
    """`headroom`: plan for H x every rate (>= 1); `attainment`: SLO-attainment target of the simulation loop (None:
    the Poisson default; 0: off); `attainment_scope`: "overall" or "service" (None: "service" for the Poisson
    default, else "overall"); `attainment_arrivals`, `attainment_rounds`: the loop's arrival process and rounds."""

    headroom: float = 1.0
    attainment: float | None = None
    attainment_scope: str | None = None
    attainment_arrivals: str = "poisson"
    attainment_rounds: int = 12
    attainment_max_step: float | None = None  # None: the loop's own (AttainmentOptions), POISSON_MAX_STEP by default
    attainment_duration_s: float = AttainmentOptions.duration_s  # simulated seconds per round


@dataclass(frozen=True)
class Planned:
    """A judged result, and whether the attainment target was met (None: no attainment loop ran)."""

    judged: Judged
    attainment_met: bool | None = None
    attainment_note: str = ""  # how the loop ended (`AttainmentResult.message`)


def effective(instance: Instance, solver: str, objective: Objective, how: PlanOptions) -> PlanOptions:
    """`how` with the Poisson default resolved (the target and scope that will run, or attainment None: off)."""
    target, scope, step = how.attainment, how.attainment_scope, how.attainment_max_step
    if target == 0:
        target = None
    elif target is None:
        info = available_solvers().get(solver)
        if (instance.arrivals is Arrivals.POISSON and objective is Objective.MIN_GPUS
                and info is not None and info.late_share):
            target, scope, step = POISSON_TARGET, scope or "service", step or POISSON_MAX_STEP
    return replace(how, attainment=target, attainment_scope=scope or "overall", attainment_max_step=step)


LOOP_OPTIONS = ("attainment_scope", "attainment_arrivals", "attainment_rounds", "attainment_duration_s")  # read
# by the attainment loop alone


def check_scope(offered: Instance, solver: str, objective: Objective, how: PlanOptions,
                name: Callable[[str], str] = str, target_name: str = "attainment") -> None:
    """InputError when an option of the attainment loop (`LOOP_OPTIONS`, set to other than its default) is given
    where no attainment loop runs (it would be ignored: `st.solve(..., attainment_scope="zz")` ran without a word
    where `stsched solve --attainment-scope` is refused, and `--attainment-rounds` / `--attainment-arrivals` /
    `--attainment-duration` on a deterministic instance did); `name` and `target_name`: what the caller calls the
    options (the CLI's flags, the API's arguments)."""
    given = [f for f in LOOP_OPTIONS if getattr(how, f) != getattr(PlanOptions, f)]
    if given and effective(offered, solver, objective, how).attainment is None:
        target = "unset" if how.attainment is None else f"{how.attainment:g}"
        raise InputError(", ".join(f"{name(f)} {getattr(how, f)}" for f in given) + ": no attainment loop runs here "
                         f"(instance {offered.name!r} is planned for {offered.arrivals.value} arrivals, objective "
                         f"{objective.value}, {target_name} {target}): give {target_name} T > 0")


def plan(solver: str, offered: Instance, options: SolveOptions, how: PlanOptions = PlanOptions(), *,
         duration_name: str | None = None, off_name: str = "attainment=0") -> Planned:
    """Solve as `how` says.  A loop whose simulations would not fit in memory whatever the plan is refused before
    its first solve (InputError) in the caller's terms: `duration_name` (the option of the simulated seconds per
    round, None: the caller has none) and `off_name` (how the loop is turned off)."""
    validate_headroom(how.headroom, options.objective)
    how = effective(offered, solver, options.objective, how)
    if how.attainment is None:
        return Planned(solve_with_headroom(solver, offered, options, how.headroom))
    if options.objective is not Objective.MIN_GPUS:
        raise InputError("attainment applies to the min-gpus objective")
    steps = {} if how.attainment_max_step is None else {
        "max_step": how.attainment_max_step,
        "min_step": min(AttainmentOptions.min_step, how.attainment_max_step)}
    opts = AttainmentOptions(target=how.attainment, scope=how.attainment_scope, arrivals=how.attainment_arrivals,
                             rounds=how.attainment_rounds, start=how.headroom, seed=options.seed,
                             time_limit_s=options.time_limit_s, duration_s=how.attainment_duration_s, **steps)
    try:
        res = plan_for_attainment(offered, registry_solver(solver, options), opts)
    except WindowTooShort as e:
        raise InputError(f"{duration_name or 'attainment_duration_s'}: {e}") from None
    except RoundsTooLarge as e:
        shorter = (f"{duration_name} below {e.longest_s:g} (the busiest service alone would fill the memory there; "
                   f"a round needs more), or " if duration_name and e.longest_s >= 0.1 else "")
        raise InputError(f"{e}; give {shorter}{off_name} (no simulation)") from None
    r = res.judged.result
    if res.plan is None:  # the first round had no valid plan: the solver's own verdict, said once (the loop's
        # message repeated it: "X; no valid plan: X", and the warning a third time as a missed target)
        message = r.message or "no valid plan"
        return Planned(replace(res.judged, result=replace(r, message=message)), False,
                       f"{r.solver} returned no valid plan: no plan to simulate")
    raised = sum(1 for _, f in res.factors if f > how.headroom)
    message = (f"{r.message + '; ' if r.message else ''}{res.message}; {raised} services planned above "
               f"{float(how.headroom)!r} x their rate, the largest factor {max(f for _, f in res.factors):.2f}")
    # objective and bound speak of the inflated rates, not of the attainment problem: no optimality claimed
    status = Status.FEASIBLE if r.status is Status.OPTIMAL else r.status
    return Planned(Judged(replace(r, status=status, bound=None, message=message), res.report), res.met,
                   res.message)
