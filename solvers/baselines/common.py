"""Helpers shared by the re-implemented baselines: operating points, per-GPU validity, results, max-scale search.

Every baseline builds its plan with its own published algorithm, but asks the same questions of the instance:
how long a batch runs (`stsched.timing`, margin and interference included), what one partition can serve (the
throughput rule of docs/RULES.md, measured or cycle), and whether one GPU's layout obeys every per-GPU rule.  The
last question is answered by the checker itself (`gpu_violations`), so a baseline never accepts a placement that the
judge would reject, and the final plan is checked once more before it is returned (`finish`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Sequence

from stsched.checker import tenant_capacity
from stsched.bounds import infeasible_services, lp_bound_gpus, lp_bound_scale
from stsched.checker import Rule, Violation, check
from stsched.layouts import legal_layout
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Instance, MechanismKind
from stsched.registry import Objective, SolveOptions, SolveResult, Status

log = logging.getLogger(__name__)

TOL = 1e-9  # floating-point slack of comparisons (the checker allows 1e-6 relative)


# ----------------------------------------------------------------------------------------------- timing
def solo_exec(instance: Instance, service: str, batch: int, size: float, procs: int = 1) -> float | None:
    """Solo execution time of one batch (margin's latency factor included), None where the table has no entry."""
    return instance.solo_ms(service, batch, size, procs)


def budget(instance: Instance, service: str) -> float:
    """The SLO the latency rule compares with (margin's slo factor applied)."""
    return instance.slo_budget_ms(service)


def alone_capacity(instance: Instance, service: str, batch: int, size: float, procs: int, exec_ms: float) -> float:
    """Req/s of a partition whose only tenant runs back to back (duty cycle = its execution time).

    Mirrors the checker's throughput rule: measured per-process throughput (slowed down like the latency) where the
    instance credits measured throughput, else `procs * 1000 * b / e`."""
    return tenant_capacity(instance, service, batch, size, procs, exec_ms, exec_ms, 1)


@dataclass(frozen=True)
class Point:
    """A single-tenant operating point: batch, process count, execution time and the req/s it serves."""

    size: float
    batch: int
    exec_ms: float
    capacity: float
    procs: int = 1


def saturated_points(instance: Instance, service: str, size: float, procs: int = 1,
                     slowdown: float = 1.0) -> list[Point]:
    """Every batch at which one saturated tenant meets its SLO (2 e <= budget), ascending in batch."""
    out = []
    limit = budget(instance, service)
    for b in sorted(instance.batches):
        solo = solo_exec(instance, service, b, size, procs)
        if solo is None:
            continue
        e = solo * slowdown
        if 2 * e <= limit * (1 + TOL):
            out.append(Point(size, b, e, alone_capacity(instance, service, b, size, procs, e), procs))
    return out


def largest_batch_point(instance: Instance, service: str, size: float, procs: int = 1,
                        slowdown: float = 1.0) -> Point | None:
    """The largest batch meeting 2 e <= SLO (the rule of Nexus and gpulet's `getMaxBatch`)."""
    pts = saturated_points(instance, service, size, procs, slowdown)
    return pts[-1] if pts else None


def best_point(instance: Instance, service: str, size: float, procs: int = 1, slowdown: float = 1.0) -> Point | None:
    """The batch of highest throughput meeting 2 e <= SLO (smallest batch on ties)."""
    pts = saturated_points(instance, service, size, procs, slowdown)
    return max(pts, key=lambda p: (p.capacity, -p.batch)) if pts else None


def smallest_covering_batch(instance: Instance, service: str, size: float, rate: float, procs: int = 1,
                            slowdown: float = 1.0) -> Point | None:
    """The smallest batch whose saturated capacity covers `rate` within the SLO (adaptive batching)."""
    for p in saturated_points(instance, service, size, procs, slowdown):
        if p.capacity >= rate * (1 - TOL):
            return p
    return None


@dataclass(frozen=True)
class Residual:
    """A residual-load operating point: batch b collected over duty cycle d = max(1000 b / rate, e)."""

    size: float
    batch: int
    exec_ms: float
    duty_ms: float


def residual_point(instance: Instance, service: str, size: float, rate: float, slowdown: float = 1.0,
                   procs: int = 1) -> Residual | None:
    """The largest batch whose collection time plus execution meets the SLO at `rate` (Nexus, gpulet residue).

    The duty cycle is the time to collect the batch at `rate` (never shorter than the execution itself), and the
    partition must still be credited with at least `rate` under the instance's throughput rule.  When the rate is
    so low that even one request takes longer than SLO - l(b) to arrive, the smallest batch runs at most once per
    SLO - l(b) (gpulet's getMaxBatch special case; Nexus's duty cycle is likewise bounded by the SLO)."""
    limit = budget(instance, service)
    best = None
    for b in sorted(instance.batches):
        solo = solo_exec(instance, service, b, size, procs)
        if solo is None:
            continue
        e = solo * slowdown
        duty = max(1000.0 * b / rate, e)
        if e + duty > limit * (1 + TOL):
            continue
        if tenant_capacity(instance, service, b, size, procs, e, duty, 1) < rate * (1 - TOL):
            continue
        best = Residual(size, b, e, duty)
    if best is not None:
        return best
    for b in sorted(instance.batches):
        solo = solo_exec(instance, service, b, size, procs)
        if solo is None:
            continue
        e = solo * slowdown
        duty = limit - e
        if duty >= e * (1 - TOL) and 1000.0 * b / duty >= rate and \
                tenant_capacity(instance, service, b, size, procs, e, duty, 1) >= rate * (1 - TOL):
            return Residual(size, b, e, max(duty, e))
        return None
    return None


def covering_batch(instance: Instance, rate: float, duty_ms: float, procs: int = 1) -> int | None:
    """Smallest allowed batch b with procs * 1000 b / d >= rate (time-shared tenants are credited per cycle)."""
    need = rate * duty_ms / (1000.0 * procs)
    for b in sorted(instance.batches):
        if b >= need * (1 - TOL):
            return b
    return None


# ----------------------------------------------------------------------------------------------- layouts
def gpu_violations(instance: Instance, layout: GpuLayout) -> tuple[Violation, ...]:
    """The checker's verdict on one GPU's layout alone: every per-GPU rule, coverage excluded."""
    report = check(instance, Plan((layout,), scale=0.0))
    return tuple(v for v in report.violations if v.rule not in (Rule.COVERAGE, Rule.GPUS))


def gpu_ok(instance: Instance, layout: GpuLayout) -> bool:
    return not gpu_violations(instance, layout)


def sizes_legal(instance: Instance, sizes: Sequence[float]) -> bool:
    """Whether partitions of these sizes can share one GPU (capacity, partition count, MIG placement)."""
    return legal_layout(instance, [float(x) for x in sizes])


def full_size(instance: Instance) -> float:
    """The whole-GPU partition (the largest allowed size)."""
    return max(instance.mechanism.sizes)


def split_rate(rate: float, capacities: Sequence[float]) -> list[float]:
    """Split `rate` over segments in proportion to their capacities (never above a capacity when they cover it)."""
    total = sum(capacities)
    if total <= 0:
        return [0.0 for _ in capacities]
    return [rate * c / total for c in capacities]


def make_plan(layouts: Iterable[Iterable[Partition]], solver: str, scale: float = 1.0, notes: str = "") -> Plan:
    return Plan(tuple(GpuLayout(tuple(ps)) for ps in layouts), scale=scale, solver=solver, notes=notes).compact()


# ----------------------------------------------------------------------------------------------- results
def finish(name: str, instance: Instance, plan: Plan | None, options: SolveOptions, message: str = "") -> SolveResult:
    """Check `plan` and wrap it: FEASIBLE with the objective and the LP bound, or no plan with the reason."""
    disarm()  # the search is over: checking the plan is not interrupted by the time limit's alarm
    objective = options.objective
    if plan is None:
        bad = infeasible_services(instance.scaled(1.0))
        status = Status.INFEASIBLE if bad and objective is Objective.MIN_GPUS else Status.UNKNOWN
        return SolveResult(name, status, message=message or "no plan found",
                           infeasible_services=tuple(sorted(bad)))
    plan = replace(plan, solver=name)
    if plan.gpus_used > instance.gpus:
        return SolveResult(name, Status.UNKNOWN, message=f"needs {plan.gpus_used} GPUs, the instance has "
                                                         f"{instance.gpus}" + (f"; {message}" if message else ""))
    report = check(instance, plan)
    if not report.valid:
        first = "; ".join(str(v) for v in report.violations[:3])
        log.warning("%s: plan rejected by the checker: %s", name, first)
        return SolveResult(name, Status.UNKNOWN, message=f"checker rejects the plan ({len(report.violations)} "
                                                         f"violations: {first})")
    if objective is Objective.MAX_SCALE:
        value, bound = plan.scale, lp_bound_scale(instance)
    else:
        value, bound = float(plan.gpus_used), lp_bound_gpus(instance)
    bound = None if bound is None or math.isinf(bound) else float(bound)
    return SolveResult(name, Status.FEASIBLE, float(value), bound, plan=plan, message=message)


def valid_for(instance: Instance, plan: Plan | None, scale: float) -> Plan | None:
    """`plan` with scale `scale` if the checker accepts it on `instance`, else None."""
    if plan is None:
        return None
    plan = replace(plan, scale=scale)
    return plan if check(instance, plan).valid else None


# ----------------------------------------------------------------------------------------------- time limit
# wall seconds per GPU kept back from the packers for checking the plan (the checker's 63 us of CPU per GPU on a
# 9,617-GPU plan, times about 3 for a loaded machine), at most half the limit
FINALIZE_S_PER_GPU = 2e-4


class TimeUp(Exception):
    """The time limit passed inside a packer."""


@contextlib.contextmanager
def alarm(seconds: float) -> Iterator[None]:
    """Raise TimeUp after `seconds` of wall time (SIGALRM, in the main thread; elsewhere nothing is interrupted
    and the bisection still stops between packer calls).  The published packers have no time limit of their own."""
    usable = (threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
              and seconds > 0 and math.isfinite(seconds))
    if not usable:
        yield
        return

    def ring(signum, frame):
        raise TimeUp

    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def disarm() -> None:
    """Cancel a pending `alarm` (main thread only; nothing elsewhere)."""
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, 0)


def search_seconds(instance: Instance, options: SolveOptions) -> float:
    """The part of the time limit the packers may use: the rest is kept for checking the plan."""
    gpus = instance.gpus if options.objective is Objective.MAX_SCALE else min(
        instance.gpus, lp_bound_gpus(instance) if math.isfinite(lp_bound_gpus(instance)) else instance.gpus)
    return options.time_limit_s - min(0.5 * options.time_limit_s, FINALIZE_S_PER_GPU * gpus)


def within_time_limit(solve: Callable) -> Callable:
    """Decorate a baseline's `solve`: its packers stop at the time limit (max-scale keeps the best alpha found so
    far, `max_scale_search`; otherwise the result is `unknown`, saying so)."""

    @functools.wraps(solve)
    def bounded(self, instance: Instance, options: SolveOptions) -> SolveResult:
        try:
            with alarm(search_seconds(instance, options)):
                return solve(self, instance, options)
        except TimeUp:
            return finish(self.name, instance, None, options, f"stopped at the time limit "
                                                              f"({options.time_limit_s:g} s) before a plan was complete")

    return bounded


def max_scale_search(instance: Instance, pack: Callable[[Instance], Plan | None], tol: float,
                     max_iter: int = 60, deadline: float = math.inf) -> tuple[float, Plan | None, int]:
    """The largest alpha (bisection) at which `pack(instance.scaled(alpha))` gives a valid plan on the instance's GPUs.

    `pack` is the baseline's min-gpus packer; it must return None when it needs more than `instance.gpus` GPUs.
    The search starts from the LP bound (no plan can exceed it) and keeps the best plan found; a packer that is not
    monotone in alpha may have valid plans above the returned alpha (bisection only sees one boundary).
    Returns (alpha, plan, packer calls)."""
    hi = lp_bound_scale(instance)
    if math.isinf(hi) or hi <= 0:
        return 0.0, None, 0
    lo, best, calls = 0.0, None, 0
    try:
        plan = valid_for(instance, pack(instance.scaled(hi)), hi)
        calls += 1
        if plan is not None:
            return hi, plan, calls
        for _ in range(max_iter):
            if hi - lo <= tol * max(hi, 1e-12) or time.perf_counter() > deadline:
                break
            mid = 0.5 * (lo + hi)
            plan = valid_for(instance, pack(instance.scaled(mid)), mid)
            calls += 1
            if plan is not None:
                lo, best = mid, plan
            else:
                hi = mid
    except TimeUp:  # the time limit passed inside a packer call: the best alpha so far stands
        pass
    return lo, best, calls


def scale_result(name: str, instance: Instance, pack: Callable[[Instance], Plan | None],
                 options: SolveOptions) -> SolveResult:
    """max-scale by bisection on alpha with the baseline's own packer on instance.gpus GPUs."""
    alpha, plan, calls = max_scale_search(instance, pack, options.max_scale_tol,
                                          deadline=time.perf_counter() + search_seconds(instance, options))
    msg = f"bisection on alpha with the min-gpus packer on {instance.gpus} GPUs ({calls} packer calls)"
    if plan is None:
        return finish(name, instance, None, options, msg + ": no alpha > 0 found")
    return finish(name, instance, plan, options, msg)


def single(service: str, batch: int, rate: float) -> tuple[Tenant, ...]:
    return (Tenant(service, batch, rate),)
