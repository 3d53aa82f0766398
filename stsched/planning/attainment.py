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
fresh seed).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from stsched.checker import Report, check
from stsched.errors import InputError
from stsched.plan import Plan
from stsched.problem import Instance
from stsched.simulation.arrivals import ArrivalSpec
from stsched.simulation.simulator import SimOptions, simulate
from stsched.simulation.summary import within_slo
from stsched.registry import Judged, SolveOptions, run_solver

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
    taken for one that meets it on other arrivals."""

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
    """Lower confidence bounds of the SLO attainment, over all requests and per service, by batch means: the
    requests, by arrival, in `batches` equal spans of the window; mean of the spans' attainments - z x its
    standard error (spans without requests left out; the point estimate where fewer than two spans remain)."""
    ok = within_slo(records, slo_ms)
    span = np.minimum((records.arrival / duration_s * batches).astype(int), batches - 1)
    keys = [np.ones(len(ok), dtype=bool)] + [records.service == i for i in range(len(records.services))]
    out = []
    for sel in keys:
        n = np.bincount(span[sel], minlength=batches)
        good = np.bincount(span[sel], weights=ok[sel], minlength=batches)
        have = n > 0
        if have.sum() < 2:
            out.append(float(good.sum() / n.sum()) if n.sum() else 1.0)
            continue
        frac = good[have] / n[have]
        out.append(float(frac.mean() - z * frac.std(ddof=1) / math.sqrt(len(frac))))
    return out[0], np.array(out[1:])


def _raise(factor: float, attainment: float, opts: AttainmentOptions) -> float:
    step = min(opts.max_step, max(opts.min_step, opts.target - attainment))
    return min(opts.max_factor, factor * (1.0 + step))


def registry_solver(name: str, options: SolveOptions | None = None) -> Callable[[Instance], Judged]:
    """The `solve` of `plan_for_attainment` for a registered solver: `run_solver`, which judges its plan."""
    return lambda planned: run_solver(name, planned, options if options is not None else SolveOptions())


def plan_for_attainment(instance: Instance, solve: Callable[[Instance], Judged],
                        opts: AttainmentOptions = AttainmentOptions()) -> AttainmentResult:
    """Plan with `solve(instance) -> Judged` (e.g. `registry_solver("heuristic")`: a registered solver judged by
    the checker on the instance it is given) until the plan's simulation at the offered rates reaches
    `opts.target` over all requests or for every service (`opts.scope`; module docstring)."""
    spec = ArrivalSpec.parse(opts.arrivals)
    slo_ms = np.array([s.slo_ms for s in instance.services], dtype=float)
    factors = {s.name: opts.start for s in instance.services}
    rounds: list[Round] = []
    best: tuple[Judged, dict[str, float], tuple, Report] | None = None
    judged: Judged | None = None
    stop = ""
    for k in range(opts.rounds):
        planned = instance.with_rates({s.name: s.rate * factors[s.name] for s in instance.services})
        judged = solve(planned)
        plan, message = judged.result.plan, judged.result.message
        report = check(instance, plan) if plan is not None and judged.valid else None
        if report is None or not report.valid:
            rounds.append(Round(k, None if plan is None else plan.gpus_used, None, None, "", None, (),
                                message or "no valid plan"))
            log.info("round %d: no valid plan (%s)", k, message)
            break
        sim = simulate(instance, plan, spec, SimOptions(duration_s=opts.duration_s, seed=opts.seed + k))
        overall, per_lower = lower_bounds(sim.records, slo_ms, opts.duration_s, opts.batches, opts.z)
        per = dict(zip(sim.records.services, per_lower))
        worst = min(per, key=per.get)
        short = tuple(n for n in instance.service_names if per[n] < opts.target)
        rounds.append(Round(k, plan.gpus_used, sim.summary.slo_attainment, overall, worst, per[worst], short))
        log.info("round %d: %d GPUs, attainment %.4f (lower bound %.4f), worst %s %.4f, %d services short", k,
                 plan.gpus_used, sim.summary.slo_attainment, overall, worst, per[worst], len(short))
        log.debug("round %d: short %s", k, ", ".join(f"{n} {per[n]:.4f} (factor {factors[n]:.2f})" for n in short))
        score = (overall if opts.scope == "overall" else -len(short), per[worst], -plan.gpus_used)
        if best is None or score > best[2]:
            best = (judged, dict(factors), score, report)
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
    if best is None:
        last = rounds[-1].message if rounds else ""
        return AttainmentResult(None, judged, False, tuple(factors.items()), tuple(rounds), f"no valid plan: {last}")
    last = rounds[-1]
    why = stop or (f"no valid plan at the raised factors ({last.message})" if last.attainment is None
                   else f"{len(last.short)} services below {opts.target:.2%} in the last of {len(rounds)} rounds "
                        f"(overall {last.attainment:.2%})")
    why += "; returned the round with the highest attainment"
    return AttainmentResult(best[0].result.plan, best[0], False, tuple(best[1].items()), tuple(rounds), why, best[3])
