"""Plans that hold up under random arrivals: per-service head-room found by simulation in the loop.

A checker-valid plan may run a tenant at 100 % of its cycle capacity; under Poisson arrivals such a tenant is a
queue at utilisation 1 and misses its SLO (docs/SIMULATOR.md).  A uniform head-room (`stsched solve --headroom`)
pays for every service the slack that only a few need: those with small batches and an SLO close to two
execution times, where one extra arrival in a cycle already makes a request late.

`plan_for_attainment` asks a solver (`solve(instance) -> Judged`, e.g. `registry_solver("heuristic")`) for a plan
at `factor_s x rate_s` for every service s (factors start at `start`), simulates it at the offered rates under the
chosen arrival process, and raises the factor of every service whose simulated SLO attainment (its lower
confidence bound by batch means) is below the target by `1 + clip(target - attainment, min_step, max_step)`; until
the attainment over all requests (`scope` "overall") or that of every service ("service") reaches the target
(again its lower bound), or `rounds` plans were made.  Factors only grow, so the loop ends.  Every plan goes
through the checker against the offered instance (the result keeps that report); the simulation of each round
uses its own seed (`seed + round`), and the caller should judge the result on arrivals it never planned with (a
fresh seed).  Memory: a loop whose rounds cannot fit whatever the plan is refused before its first solve
(`check_rounds_fit`, RoundsTooLarge); a round that no longer fits (MemoryShort from `simulate_spans`) ends the loop
as the time limit does, with the best round simulated so far.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from stsched.checker import Report, check
from stsched.errors import InputError
from stsched.plan import Plan
from stsched.problem import Instance
from stsched.simulation import arrivals as arrivals_mod
from stsched.simulation.arrivals import (SPAN_BYTES_PER_REQUEST, ArrivalSpec, MemoryShort, check_fits,
                                        check_holds_a_request)
from stsched.simulation.simulator import SimOptions
from stsched.simulation.span_counts import simulate_spans, span_counts, span_need
from stsched.registry import Judged, SolveOptions, Status, run_solver

log = logging.getLogger(__name__)

SCOPES = ("overall", "service")


@dataclass(frozen=True)
class AttainmentOptions:
    """`target`: SLO attainment every service must reach in simulation; `arrivals`: the process to plan against;
    `duration_s`: simulated seconds per round; `start`: first factor of every service (a uniform head-room);
    `min_step`/`max_step`: bounds of a factor's relative raise per round; `max_factor`: no factor beyond it;
    `scope`: "overall" (the attainment over all requests must reach the target) or "service" (every service's);
    `batches`, `z`: the target is judged on the lower confidence bound of the attainment by batch means (the
    simulated window cut into `batches` equal spans, mean - z x standard error of the spans' attainments; z 1.645:
    one-sided 95 %; z 0: the point estimate), so that a plan just at the target in its planning run is not
    taken for one that meets it on other arrivals.  `time_limit_s`: wall seconds for the whole loop, every round's
    solve and simulation (None: none; each solve keeps its own limit): the first round's solver gets half of it,
    each later one the time left less the last simulation's; a round starts only when the time left covers what
    the last round took, and a simulation still running at the deadline is stopped and its round dropped."""

    target: float = 0.99
    scope: str = "overall"
    arrivals: str = "poisson"
    duration_s: float = 120.0
    rounds: int = 8
    start: float = 1.0
    min_step: float = 0.05
    max_step: float = 0.5
    max_factor: float = 8.0
    seed: int = 0
    batches: int = 10
    z: float = 1.645
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0:
            raise InputError(f"attainment target must lie in (0, 1), got {self.target!r}")
        ArrivalSpec.parse(self.arrivals)
        if not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise InputError(f"simulated seconds per round must be a finite number > 0, got {self.duration_s!r}")
        if self.scope not in SCOPES:
            raise InputError(f"attainment scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.rounds < 1:
            raise InputError(f"rounds must be >= 1, got {self.rounds!r}")
        if not (1.0 <= self.start <= self.max_factor and math.isfinite(self.max_factor)):
            raise InputError(f"start factor must lie in [1, max_factor={self.max_factor:g}], got {self.start!r}")
        if self.batches < 2 or not (self.z >= 0 and math.isfinite(self.z)):
            raise InputError(f"batch means need batches >= 2 and a finite z >= 0, got {self.batches!r}, {self.z!r}")
        if self.time_limit_s is not None:
            from stsched.validate import check_time_limit

            check_time_limit(self.time_limit_s, "attainment loop time limit")
        if not 0.0 < self.min_step <= self.max_step:
            raise InputError(f"steps must satisfy 0 < min_step <= max_step, got {self.min_step!r}, {self.max_step!r}")


@dataclass(frozen=True)
class Round:
    """One plan of the loop: its GPUs, the simulated attainment (overall: point estimate and lower bound; the worst
    service's lower bound) and the services whose lower bound is below the target, which the next round plans
    for more."""

    index: int
    gpus: int | None
    attainment: float | None  # point estimate over all requests
    lower: float | None  # its lower confidence bound (batch means)
    worst_service: str
    worst_attainment: float | None
    short: tuple[str, ...]
    message: str = ""


@dataclass(frozen=True)
class AttainmentResult:
    """`plan`: the first plan whose simulation met the target, else the valid plan of highest simulated attainment
    (overall, or fewest services short for scope "service"; `met` False); `judged`: the solver's judged result
    behind it (for the planned rates), or that of the failed first round when there is no plan; `report`: the
    checker's report of `plan` against the offered rates; `factors`: the rate factor each service was planned at in
    that plan's round."""

    plan: Plan | None
    judged: Judged | None
    met: bool
    factors: tuple[tuple[str, float], ...]
    rounds: tuple[Round, ...] = field(default_factory=tuple)
    message: str = ""
    report: Report | None = None

    def factor(self, service: str) -> float:
        return dict(self.factors)[service]


def lower_bounds(records, slo_ms: np.ndarray, duration_s: float, batches: int, z: float
                 ) -> tuple[float, np.ndarray]:
    """Lower confidence bounds of the SLO attainment of full records, over all requests and per service, by batch
    means: the requests, by arrival, in `batches` equal spans of the window (`SpanCounts.lower_bounds`; the loop
    itself counts its simulations without keeping records, `simulate_spans`)."""
    return span_counts(records, slo_ms, duration_s, batches).lower_bounds(z)


class RoundsTooLarge(InputError):
    """A round's simulation would not fit in memory whatever the plan (`check_rounds_fit`): `longest_s`, the
    longest simulated window per round that would (0 when none would)."""

    def __init__(self, message: str, longest_s: float):
        super().__init__(message)
        self.longest_s = longest_s


class WindowTooShort(InputError):
    """A round's simulated window too short to hold one request at the offered rates (`check_rounds_fit`)."""


def check_rounds_fit(instance: Instance, opts: AttainmentOptions) -> None:
    """WindowTooShort when one round's window holds no request; RoundsTooLarge when one round's simulation (`opts.duration_s` of arrivals at the offered rates) would not fit
    in the memory available whatever the plan: the busiest service's requests alone, the least a group of
    `simulate_spans` holds (`span_need` without a plan).  The loop checks this before its first solve, so that no
    round's work is lost to it; not when that service cannot be served on the instance's GPUs at all (a rate of
    1e308 req/s): then no plan exists and the solver's verdict (infeasible) is the answer."""
    busiest = max((s for s in instance.services), key=lambda s: s.rate)
    try:  # a window too short to hold one request: refused here, not after the first solve
        check_holds_a_request([s.rate for s in instance.services], opts.duration_s)
    except InputError as e:
        raise WindowTooShort(f"the attainment loop's simulations: {e}") from None
    try:
        check_fits(ArrivalSpec.parse(opts.arrivals), [busiest.rate], opts.duration_s,
                   span_need(instance, None, opts.duration_s))
    except MemoryShort as e:
        from stsched.bounds import infeasible_services

        if busiest.name in infeasible_services(instance):  # the bounds' own screen (rates and memory)
            return  # no plan serves it: the solver says so (infeasible, naming it) and no round is simulated
        longest = math.floor(e.limit / busiest.rate * 10) / 10 if busiest.rate > 0 else math.inf
        raise RoundsTooLarge(f"the attainment loop's simulations would not fit in memory: each round simulates "
                             f"{opts.duration_s:g} s of arrivals, {e.requests:.3g} requests of service "
                             f"{busiest.name!r} ({busiest.rate:,.6g} req/s) alone, at most {e.limit:,} fit "
                             f"({arrivals_mod.available_bytes() / 2 ** 30:.1f} GiB available at "
                             f"{SPAN_BYTES_PER_REQUEST} bytes a request)", longest) from None


def _raise(factor: float, attainment: float, opts: AttainmentOptions) -> float:
    step = min(opts.max_step, max(opts.min_step, opts.target - attainment))
    return min(opts.max_factor, factor * (1.0 + step))


#: under a time limit, the first round's solver gets at most this share of it: the rest is left for its
#: simulation and later rounds (a solver that uses all the time it is given would leave no round simulated)
FIRST_SOLVE_SHARE = 0.5

Solve = Callable[[Instance, "float | None"], Judged]


def registry_solver(name: str, options: SolveOptions | None = None) -> Solve:
    """The `solve` of `plan_for_attainment` for a registered solver: `run_solver`, which judges its plan, within
    `options.time_limit_s` or the loop's time left when that is shorter."""
    options = options if options is not None else SolveOptions()

    def solve(planned: Instance, time_limit_s: float | None = None) -> Judged:  # None: options.time_limit_s
        limit = options.time_limit_s if time_limit_s is None else min(options.time_limit_s, time_limit_s)
        return run_solver(name, planned, replace(options, time_limit_s=limit))
    return solve


@dataclass(frozen=True)
class _Best:
    judged: Judged
    factors: dict[str, float]
    score: tuple
    report: Report


class _Clock:
    """The loop's deadline (`time_limit_s` None: none) and what its rounds took, to decide whether the next fits."""

    def __init__(self, time_limit_s: float | None):
        self.limit = time_limit_s
        self.deadline = None if time_limit_s is None else time.perf_counter() + time_limit_s
        self.solve_s = self.sim_s = 0.0

    def left(self) -> float:
        return math.inf if self.deadline is None else self.deadline - time.perf_counter()

    def solver_limit(self, k: int) -> float | None:
        """Seconds for round k's solver: the first gets FIRST_SOLVE_SHARE of the limit, a later one the time left
        less what the last simulation took; None: no limit of the loop's."""
        if self.deadline is None:
            return None
        if k == 0:
            return self.limit * FIRST_SOLVE_SHARE
        return max(1e-6, self.left() - self.sim_s)

    def refuses(self, k: int) -> str:
        """Why round k > 0 is not started ("" when it is): the time left is shorter than the last round's solve and
        simulation took."""
        left = self.left()
        if k == 0 or left >= self.solve_s + self.sim_s:
            return ""
        return (f"round {k} not started: {max(0.0, left):.1f} s left, round {k - 1} took {self.solve_s:.1f} s to "
                f"solve and {self.sim_s:.1f} s to simulate")


def plan_for_attainment(instance: Instance, solve: Solve,
                        opts: AttainmentOptions = AttainmentOptions()) -> AttainmentResult:
    """Plan with `solve(instance, time_limit_s) -> Judged` (e.g. `registry_solver("heuristic")`: a registered solver
    judged by the checker on the instance it is given, within `time_limit_s` seconds when that is not None) until
    the plan's simulation at the offered rates reaches `opts.target` over all requests or for every service
    (`opts.scope`; module docstring), or `opts.time_limit_s` passes."""
    spec = ArrivalSpec.parse(opts.arrivals)
    check_rounds_fit(instance, opts)
    clock = _Clock(opts.time_limit_s)
    factors = {s.name: opts.start for s in instance.services}
    rounds: list[Round] = []
    best: _Best | None = None
    first: _Best | None = None  # the first round's valid plan, returned when the time limit stopped its simulation
    judged: Judged | None = None
    stop = timed_out = ""  # timed_out: why the time limit, or the memory left (by_memory), cut the loop short
    by_memory = False
    for k in range(opts.rounds):
        timed_out = clock.refuses(k)
        if timed_out:
            break
        planned = instance.with_rates({s.name: s.rate * factors[s.name] for s in instance.services})
        t = time.perf_counter()
        limit = clock.solver_limit(k)
        judged = solve(planned, limit)
        clock.solve_s = time.perf_counter() - t
        plan, message = judged.result.plan, judged.result.message
        report = check(instance, plan) if plan is not None and judged.valid else None
        if report is None or not report.valid:
            rounds.append(Round(k, None if plan is None else plan.gpus_used, None, None, "", None, (),
                                message or "no valid plan"))
            log.info("round %d: no valid plan (%s)", k, message)
            if (k > 0 and plan is None and limit is not None and clock.solve_s >= limit
                    and judged.result.status is not Status.INFEASIBLE):  # the loop's clock, not
                # the raised factors, ended it (said "no valid plan at the raised factors" at 4,096 services)
                timed_out = f"round {k}'s solve used the {limit:.1f} s left to it and returned no plan"
            break
        if k == 0:
            first = _Best(judged, dict(factors), (), report)
        t = time.perf_counter()
        try:
            counts = simulate_spans(instance, plan, spec, SimOptions(duration_s=opts.duration_s, seed=opts.seed + k),
                                    opts.batches, clock.deadline)
        except MemoryShort as e:  # (memory fell since the check, or this plan's largest partition needs more):
            # the rounds simulated so far are kept, as a time limit keeps them
            rounds.append(Round(k, plan.gpus_used, None, None, "", None, (), "simulation would not fit in memory"))
            timed_out = (f"the simulation of round {k} would not fit in memory: {e.requests:.3g} requests, at most "
                         f"{e.limit:,} with this plan")
            log.info("round %d: %d GPUs, %s", k, plan.gpus_used, timed_out)
            by_memory = True
            break
        clock.sim_s = time.perf_counter() - t
        if counts is None:
            rounds.append(Round(k, plan.gpus_used, None, None, "", None, (), "simulation not ended by the time limit"))
            timed_out = f"the simulation of round {k} did not end by the time limit"
            log.info("round %d: %d GPUs, %s", k, plan.gpus_used, timed_out)
            break
        overall, per_lower = counts.lower_bounds(opts.z)
        per = dict(zip(counts.services, per_lower))
        worst = min(per, key=per.get)
        short = tuple(n for n in instance.service_names if per[n] < opts.target)
        rounds.append(Round(k, plan.gpus_used, counts.attainment, overall, worst, per[worst], short))
        log.info("round %d: %d GPUs, attainment %.4f (lower bound %.4f), worst %s %.4f, %d services short "
                 "(%.1f s solve, %.1f s simulation)", k, plan.gpus_used, counts.attainment, overall, worst,
                 per[worst], len(short), clock.solve_s, clock.sim_s)
        log.debug("round %d: short %s", k, ", ".join(f"{n} {per[n]:.4f} (factor {factors[n]:.2f})" for n in short))
        score = (overall if opts.scope == "overall" else -len(short), per[worst], -plan.gpus_used)
        if best is None or score > best.score:
            best = _Best(judged, dict(factors), score, report)
        if not short or (opts.scope == "overall" and overall >= opts.target):
            what, value = (("every service", per[worst]) if opts.scope == "service"
                           else ("the attainment over all requests", overall))
            return AttainmentResult(plan, judged, True, tuple(factors.items()), tuple(rounds),
                                    f"{what} reached {value:.2%} (lower confidence bound; target {opts.target:.2%}) "
                                    f"in round {k} ({plan.gpus_used} GPUs)", report)
        capped = [n for n in short if factors[n] >= opts.max_factor]
        if capped:
            stop = f"{', '.join(capped)} below {opts.target:.2%} at the largest factor {opts.max_factor:g}"
            break
        for n in short:
            factors[n] = _raise(factors[n], per[n], opts)
    simulated = sum(1 for r in rounds if r.attainment is not None)
    if timed_out:
        by = "the memory available" if by_memory else f"the time limit ({opts.time_limit_s:g} s, the whole loop's)"
        why = (f"{by} stopped the loop after {simulated} simulated round{'s' if simulated != 1 else ''} "
               f"({timed_out})")
        if best is None and first is not None:
            return AttainmentResult(first.judged.result.plan, first.judged, False, tuple(first.factors.items()),
                                    tuple(rounds), f"{why}; returned the first round's plan, valid for the checker, "
                                    "its attainment not simulated", first.report)
    if best is None:
        last = rounds[-1].message if rounds else ""
        return AttainmentResult(None, judged, False, tuple(factors.items()), tuple(rounds), f"no valid plan: {last}")
    if not timed_out:
        last = rounds[-1]
        why = stop or (f"no valid plan at the raised factors ({last.message})" if last.attainment is None
                       else f"{len(last.short)} services below {opts.target:.2%} in the last of {len(rounds)} "
                            f"rounds (overall {last.attainment:.2%})")
    why += "; returned the round with the highest attainment"
    return AttainmentResult(best.judged.result.plan, best.judged, False, tuple(best.factors.items()), tuple(rounds),
                            why, best.report)
