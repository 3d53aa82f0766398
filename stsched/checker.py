"""THE checker: `check(instance, plan) -> Report` applies every rule of docs/RULES.md to a plan.

It is the judge of every solver, written from the rules alone: it never asks a solver how a plan was built.
Each violation names its rule, the GPU and partition (0-based) and the service it concerns.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import Enum

from stsched.plan import GpuLayout, Partition, Plan, PlanStats
from stsched.problem import Instance, MechanismKind, Placement, ThroughputRule
from stsched.timing import TenantTiming, TimingMemo, cycle_ms, gpu_timings

REL_TOL = 1e-6  # relative tolerance of every comparison (floating point, not a margin)
ABS_TOL = 1e-9  # absolute tolerance beside it (req/s, capacity units: `tolerant_limit`, `least_covering`)


class Rule(str, Enum):
    GPUS = "gpus"
    LAYOUT = "layout"
    SERVICE = "service"
    BATCH = "batch"
    PROFILE = "profile"
    DUTY = "duty"
    THROUGHPUT = "throughput"
    LATENCY = "latency"
    COVERAGE = "coverage"
    MEMORY = "memory"


@dataclass(frozen=True)
class Violation:
    rule: Rule
    message: str
    gpu: int | None = None
    partition: int | None = None
    service: str | None = None

    def __str__(self) -> str:
        where = []
        if self.gpu is not None:
            where.append(f"gpu {self.gpu}")
        if self.partition is not None:
            where.append(f"partition {self.partition}")
        if self.service is not None:
            where.append(f"service {self.service}")
        return f"[{self.rule.value}] {' '.join(where)}: {self.message}" if where else f"[{self.rule.value}] {self.message}"


@dataclass(frozen=True)
class Report:
    """The checker's verdict and the plan's metrics."""

    valid: bool
    violations: tuple[Violation, ...]
    stats: PlanStats
    mig_starts: tuple[tuple[int | None, ...], ...] = ()  # the legal MIG start per partition that was found

    def to_dict(self) -> dict:
        return {
            "valid": self.valid,
            "violations": [dict(rule=v.rule.value, message=v.message, gpu=v.gpu, partition=v.partition,
                                service=v.service) for v in self.violations],
            "stats": asdict(self.stats),
        }


def tolerant_limit(limit):
    """`limit` widened by the checker's tolerance (floating point, not a margin): every rule's comparison; numpy
    arrays too."""
    return limit * (1 + REL_TOL) + ABS_TOL


def _exceeds(value: float, limit: float) -> bool:
    return value > tolerant_limit(limit)


def least_covering(want):
    """The least value the checker's tolerance lets stand for `want` (`tolerant_limit`'s inverse: `want` does not
    exceed `tolerant_limit(v)` for any v at least this; below 0 for a `want` below 1e-9, which anything covers):
    what a valid plan must serve of a rate `want`, counted at exact capacities once each tenant's capacity is
    widened by `tolerant_limit` (the exact solvers' min-gpus relaxation, solvers.exact.patterns.ModelData.row_need);
    numpy arrays too."""
    return (want - ABS_TOL) / (1 + REL_TOL)


def needs_serving(rate: float) -> bool:
    """Whether a rate needs any capacity at all by the coverage rule (a rate within the tolerance of 0, 1e-9 req/s,
    is covered by no tenant: a bound counts no GPU for it)."""
    return _exceeds(rate, 0.0)


def served_rates(instance: Instance) -> tuple[float, ...]:
    """Each service's rate as the bounds and exact models count it: 0 where it needs no serving (`needs_serving`)."""
    return tuple(s.rate if needs_serving(s.rate) else 0.0 for s in instance.services)


# What the tolerance lets a valid plan carry beyond the exact need, as a factor: every tenant may run up to REL_TOL
# above its capacity (the throughput rule), every rate be covered up to REL_TOL short (coverage), and on mps/sm a
# GPU's partition sizes sum up to REL_TOL above its capacity (layout).  The duty rule's tolerance adds nothing: a
# duty_ms up to REL_TOL short of the needed cycle is accepted but credited as the needed cycle (`duty_of`).  Not
# counted here: the absolute 1e-9 (req/s per tenant and per service, capacity units per GPU) beside each relative
# part.  n valid GPUs carry at most A = n (P t 1e-9 / g_min + 1e-9 / C) + 1e-9 sum_s 1 / g_s GPUs of exact need
# beyond n _CARRIED (P partitions a GPU, t tenants a partition, g_s a service's best req/s per GPU, C the GPU's
# capacity units), which `whole_gpus`'s 1e-6 guard covers while A / _CARRIED <= 1e-6: on the shipped and random
# instances up to about 4,400-18,000 GPUs (docs/RESULTS.md, session 19; experiments/dev/edge19/absolute_slack.py).
# The exact solvers' min-gpus models count it (`least_covering`, `tolerant_limit` per tenant).
_CARRIED = (1 + REL_TOL) ** 3


def whole_gpus(x: float) -> float:
    """THE rounding of a fractional lower bound `x` on GPUs (computed with exact capacities and rates) to whole GPUs,
    consistent with this checker's tolerance: n GPUs may carry a need of n (1 + REL_TOL)^3 (`_CARRIED`); the bound
    is the fewest n that do (less 1e-6 for the floating point of the sum).  0 for no need, inf for inf.  Before
    (session 18), `lp_bound_gpus` rounded up x - 1e-9 and colgen x - 1e-6: a need 9e-7 above 2 GPUs, which a valid
    plan serves on 2, gave a bound of 3 (tests/core/test_bound_rounding_edge.py).  For a fractional need only: not
    idempotent from about 300,000 GPUs on (n rounds to n - 1), so never applied to a bound already whole."""
    if not x > 0:
        return 0
    if math.isinf(x):
        return math.inf
    return max(1, math.ceil(x / _CARRIED - 1e-6))


def tolerant_scale(alpha: float) -> float:
    """THE widening of an upper bound `alpha` on the scale (max-scale; computed with exact capacities and rates) by
    this checker's tolerance, as `whole_gpus` rounds a bound on GPUs: a valid plan may reach alpha (1 + REL_TOL)^3
    (`_CARRIED`).  inf and 0 stay."""
    return alpha * _CARRIED if math.isfinite(alpha) else alpha


def find_mig_starts(placements: tuple[Placement, ...], partitions: tuple[Partition, ...]) -> tuple[int, ...] | None:
    """A legal start for every MIG partition (given starts are kept), or None when no legal placement exists."""
    order = sorted(range(len(partitions)), key=lambda i: -partitions[i].size)
    chosen: dict[int, int] = {}

    def options(p: Partition) -> list[Placement]:
        return [pl for pl in placements if pl.size == p.size and (p.start is None or pl.start == p.start)]

    def place(k: int, used: frozenset[int]) -> bool:
        if k == len(order):
            return True
        i = order[k]
        for pl in options(partitions[i]):
            if used.isdisjoint(pl.slots):
                chosen[i] = pl.start
                if place(k + 1, used | frozenset(pl.slots)):
                    return True
        return False

    if not place(0, frozenset()):
        return None
    return tuple(chosen[i] for i in range(len(partitions)))


def _check_layout(instance: Instance, gi: int, gpu: GpuLayout, out: list[Violation]) -> tuple[int | None, ...]:
    mech = instance.mechanism
    parts = gpu.partitions
    for qi, p in enumerate(parts):
        if not any(abs(p.size - s) <= 1e-9 for s in mech.sizes):
            out.append(Violation(Rule.LAYOUT, f"size {p.size:g} is not an allowed size {list(mech.sizes)}", gi, qi))
        if p.procs > mech.max_procs:
            out.append(Violation(Rule.LAYOUT, f"{p.procs} processes, at most {mech.max_procs} allowed", gi, qi))
        if p.procs > 1 and len(p.tenants) != 1:
            out.append(Violation(Rule.LAYOUT, f"{p.procs} processes need exactly one tenant, "
                                              f"found {len(p.tenants)}", gi, qi))
        if mech.max_tenants is not None and len(p.tenants) > mech.max_tenants:
            out.append(Violation(Rule.LAYOUT, f"{len(p.tenants)} tenants, at most {mech.max_tenants}", gi, qi))
        names = [t.service for t in p.tenants]
        for name in sorted({n for n in names if names.count(n) > 1}):
            out.append(Violation(Rule.LAYOUT, "service appears twice as a tenant of one partition", gi, qi, name))
    if mech.max_partitions is not None and len(parts) > mech.max_partitions:
        out.append(Violation(Rule.LAYOUT, f"{len(parts)} partitions, at most {mech.max_partitions}", gi))
    if mech.kind is MechanismKind.MIG:
        starts = find_mig_starts(mech.placements, parts)
        if starts is None:
            out.append(Violation(Rule.LAYOUT, f"no legal MIG placement for slices {[p.size for p in parts]} "
                                              f"(starts {[p.start for p in parts]})", gi))
            return tuple(p.start for p in parts)
        return starts
    for qi, p in enumerate(parts):
        if p.start is not None:  # a start slot is MIG's; ignoring it would judge another plan than the one given
            out.append(Violation(Rule.LAYOUT, f"start slot {p.start} given, but {mech.kind.value} partitions have "
                                              f"no start slots", gi, qi))
    total = sum(p.size for p in parts)
    if _exceeds(total, mech.capacity):
        out.append(Violation(Rule.LAYOUT, f"partition sizes sum to {total:g} > capacity {mech.capacity:g}", gi))
    return tuple(None for _ in parts)


def cycle_rate(credit, duty_ms, procs=1):
    """The cycle rule (docs/RULES.md): `procs` processes each serving one batch credited with `credit` requests
    per duty cycle of `duty_ms` ms serve procs x 1000 x credit / duty_ms req/s.  Scalars or numpy arrays: the one
    spelling of the rule for the checker, the solvers, the heuristic's vectorised tables and the bounds."""
    return procs * 1000.0 * credit / duty_ms


def tenant_capacity(instance: Instance, service: str, batch: int, size: float, procs: int, exec_ms: float,
                    duty_ms: float, n_tenants: int, share: float = 1.0) -> float:
    """Requests/s a tenant is credited with (docs/RULES.md throughput rule): the one definition every solver uses.
    `share`: the tenant's share of its service's requests (its rate over the service's; 1, the default, is what a
    planner that does not know it may count on: the credit only grows as the share shrinks)."""
    entry = instance.entry(service, batch, size, procs)
    if (instance.throughput_rule is ThroughputRule.MEASURED and n_tenants == 1
            and entry is not None and entry.throughput_rps is not None):
        # measured per-process throughput, slowed down like the latency it was measured with (and, with a
        # late_share margin, credited for the same share of its batch as the cycle rule)
        return procs * entry.throughput_rps * entry.latency_ms / exec_ms * instance.margin.credit(batch) / batch
    if procs > 1:  # several servers of one queue: credited as before, per process at the least credit
        return cycle_rate(instance.margin.credit(batch), duty_ms, procs)
    credit = instance.margin.tenant_credit(batch, instance.slo_budget_ms(service), exec_ms, duty_ms, share)
    return cycle_rate(credit, duty_ms, procs)


def tenant_share(instance: Instance, plan: Plan, service: str, rate: float, planned: float) -> float:
    """A tenant's share of its service's requests: the simulator routes them in proportion to the tenants' rates,
    so its rate over the service's `planned` sum (at least the rate the plan must serve)."""
    total = max(planned, instance.service(service).rate * plan.scale)
    return min(1.0, rate / total) if total > 0 else 1.0


def _partition_capacities(instance: Instance, plan: Plan | None, p: Partition, times: list[TenantTiming], duty: float,
                          planned: dict[str, float]) -> list[float]:
    """Each tenant's capacity in one partition as `check` counts it: at its share of its service's requests in
    `plan` (`tenant_share`, from the `planned` rates) when the instance has a late_share margin, else at share 1
    (the credit does not depend on it then); 0 where the tenant has no timing or the partition no cycle."""
    out = []
    for t, tt in zip(p.tenants, times):
        if tt.exec_ms is None or not duty > 0 or not instance.has_service(t.service):
            out.append(0.0)
            continue
        share = tenant_share(instance, plan, t.service, t.rate, planned[t.service]) if planned else 1.0
        out.append(tenant_capacity(instance, t.service, t.batch, p.size, p.procs, tt.exec_ms, duty, len(p.tenants),
                                   share))
    return out


def share_one_capacities(instance: Instance, gpu: GpuLayout) -> dict[tuple[int, int], float]:
    """(partition, tenant) -> req/s the checker credits each tenant of one GPU with at share 1 (what a planner that
    does not know the tenants' shares may count on; without a late_share margin exactly what `capacities` gives,
    the credit not depending on the share then).  One GPU alone (interference stays inside a GPU), so that callers
    memoising per layout (the adaptive rebalance) time each layout once."""
    timings = gpu_timings(instance, gpu)
    out: dict[tuple[int, int], float] = {}
    for qi, (p, times) in enumerate(zip(gpu.partitions, timings)):
        caps = _partition_capacities(instance, None, p, times, duty_of(p, times), {})  # no planned rates: share 1
        out.update(((qi, ti), c) for ti, c in enumerate(caps))
    return out


def capacities(instance: Instance, plan: Plan, timings_of: TimingMemo | None = None,
               ) -> dict[tuple[int, int, int], float]:
    """(gpu, partition, tenant) -> req/s the checker credits that tenant of `plan` with (docs/RULES.md throughput
    rule; under a late_share margin at the tenant's actual share of its service's requests, `tenant_share`):
    exactly the capacity `check` compares each tenant's rate with (0 where the tenant has no timing: an unknown
    service, no profile entry).  `show`, the safety warning and the adaptive rebalance read it, so that no view of
    a plan counts a tenant's capacity otherwise than its judge.  `timings_of`: a `TimingMemo` to share."""
    timings_of = timings_of if timings_of is not None else TimingMemo(instance)
    planned = plan.served() if instance.margin.late_share else {}
    out: dict[tuple[int, int, int], float] = {}
    for gi, gpu in enumerate(plan.gpus):
        for qi, (p, times) in enumerate(zip(gpu.partitions, timings_of(gpu))):
            caps = _partition_capacities(instance, plan, p, times, duty_of(p, times), planned)
            out.update(((gi, qi, ti), c) for ti, c in enumerate(caps))
    return out


def duty_of(p: Partition, times: list[TenantTiming]) -> float:
    """A partition's duty cycle d_q (docs/RULES.md) as capacity and latency count it: the larger of its `duty_ms`
    and the needed cycle, or when unset the needed cycle.  The duty rule accepts a `duty_ms` up to REL_TOL short of
    the needed cycle (floating point), but the shortfall earns no capacity: before (session 18), a tenant was
    credited 1000 b c / duty_ms there, a third factor of the tolerance beyond what `whole_gpus` counted."""
    needed = cycle_ms(times)
    return needed if p.duty_ms is None else max(p.duty_ms, needed)


def gpu_memory_limit_mb(instance: Instance) -> float:
    """What the memory rule lets a whole GPU hold (MB): its usable share (`memory_cap`) of its memory, which an
    MPS or SM GPU's partitions share."""
    return instance.device.memory_mb * instance.device.memory_cap


def memory_limit_mb(instance: Instance, size: float) -> float | None:
    """What the memory rule lets a partition of `size` hold (MB): on MIG its slice's memory (None: the table gives
    none, no limit), on MPS the whole GPU's, which the GPU's partitions share (`gpu_memory_limit_mb`).  THE rule
    every solver's memory limit is written with (session 19: the heuristic, reconfig, the exact solvers and cg
    wrote `memory_mb * memory_cap` by hand)."""
    mech = instance.mechanism
    if mech.kind is MechanismKind.MIG:
        cap = mech.slice_memory(size)
        return None if cap is None else cap * instance.device.memory_cap
    return gpu_memory_limit_mb(instance)


def partition_memory_mb(instance: Instance, procs: int, tenants: Iterable[tuple[str, int]]) -> float:
    """The memory (MB) of one partition's `procs` processes, each holding every (service, batch) of `tenants`."""
    need = instance.device.context_mb * procs
    for n, b in tenants:
        need += procs * instance.service(n).memory_for(b)
    return need


def exceeds_memory(instance: Instance, size: float, need_mb: float) -> bool:
    """The memory rule for `need_mb` on a partition of `size` (MPS: on the GPU, all its partitions' needs summed)."""
    limit = memory_limit_mb(instance, size)
    return limit is not None and _exceeds(need_mb, limit)


def _memory(instance: Instance, gi: int, gpu: GpuLayout, out: list[Violation]) -> None:
    """The memory rule on one GPU (`memory_limit_mb`): on MIG each partition's processes in its slice, elsewhere
    all its partitions' in the GPU's memory, which they share."""
    usage = [partition_memory_mb(instance, p.procs, [(t.service, t.batch) for t in p.tenants
                                                    if instance.has_service(t.service)]) for p in gpu.partitions]
    mig = instance.mechanism.kind is MechanismKind.MIG
    held = [(qi, p.size, need) for qi, (p, need) in enumerate(zip(gpu.partitions, usage))] if mig \
        else [(None, instance.mechanism.capacity, sum(usage))]  # shared: any size's limit is the GPU's
    for qi, size, need in held:
        if exceeds_memory(instance, size, need):
            out.append(Violation(Rule.MEMORY, f"needs {need:.0f} MB, {'slice' if mig else 'GPU'} has "
                                              f"{memory_limit_mb(instance, size):.0f} MB", gi, qi))


def check(instance: Instance, plan: Plan) -> Report:
    """Apply every rule to `plan`; the report lists each violation and the plan's metrics."""
    out: list[Violation] = []
    served: dict[str, float] = {s.name: 0.0 for s in instance.services}
    worst: dict[str, float] = {}
    busy: list[tuple[int, int, float]] = []
    starts: list[tuple[int | None, ...]] = []
    used = plan.gpus_used
    if used > instance.gpus:
        out.append(Violation(Rule.GPUS, f"plan uses {used} GPUs, instance has {instance.gpus}"))
    planned = plan.served() if instance.margin.late_share else {}
    timings_of = TimingMemo(instance)
    for gi, gpu in enumerate(plan.gpus):
        starts.append(_check_layout(instance, gi, gpu, out))
        _memory(instance, gi, gpu, out)
        timings = timings_of(gpu)
        for qi, (p, times) in enumerate(zip(gpu.partitions, timings)):
            needed = cycle_ms(times)
            duty = duty_of(p, times)
            caps = _partition_capacities(instance, plan, p, times, duty, planned)
            if p.duty_ms is not None and _exceeds(needed, p.duty_ms):
                out.append(Violation(Rule.DUTY, f"duty cycle {p.duty_ms:.3f} ms < sum of execution times "
                                                f"{needed:.3f} ms", gi, qi))
            busy_frac = 0.0
            for t, tt, cap in zip(p.tenants, times, caps):
                if not instance.has_service(t.service):
                    out.append(Violation(Rule.SERVICE, "not a service of the instance", gi, qi, t.service))
                    continue
                if t.batch not in instance.batches:
                    out.append(Violation(Rule.BATCH, f"batch {t.batch} not allowed {list(instance.batches)}",
                                         gi, qi, t.service))
                if tt.exec_ms is None:
                    out.append(Violation(Rule.PROFILE, f"no latency for batch {t.batch}, size {p.size:g}, "
                                                       f"{p.procs} procs", gi, qi, t.service))
                    continue
                served[t.service] += t.rate
                if _exceeds(t.rate, cap):
                    out.append(Violation(Rule.THROUGHPUT, f"serves {t.rate:.6g} req/s > capacity {cap:.6g} req/s "
                                                          f"(batch {t.batch}, duty {duty:.3f} ms)", gi, qi, t.service))
                latency = duty + tt.exec_ms
                budget = instance.slo_budget_ms(t.service)
                worst[t.service] = float(max(worst.get(t.service, 0.0), latency))
                if _exceeds(latency, budget):
                    out.append(Violation(Rule.LATENCY, f"worst-case latency {latency:.3f} ms (cycle {duty:.3f} + "
                                                       f"exec {tt.exec_ms:.3f}, slowdown {tt.slowdown:.3f}) > SLO "
                                                       f"budget {budget:.3f} ms", gi, qi, t.service))
                if cap > 0:
                    busy_frac += min(1.0, t.rate / cap) * (tt.exec_ms / duty if len(p.tenants) > 1 else 1.0)
            busy.append((gi, qi, min(1.0, busy_frac)))
    for s in instance.services:
        want = s.rate * plan.scale
        if _exceeds(want, served[s.name]) and want > 0:
            out.append(Violation(Rule.COVERAGE, f"served {served[s.name]:.6g} req/s < required {want:.6g} req/s",
                                 service=s.name))
    stats = _stats(instance, plan, served, worst, busy)
    return Report(valid=not out, violations=tuple(out), stats=stats, mig_starts=tuple(starts))


def _stats(instance: Instance, plan: Plan, served: dict[str, float], worst: dict[str, float],
           busy: list[tuple[int, int, float]]) -> PlanStats:
    cap = instance.mechanism.capacity
    used = [gi for gi, g in enumerate(plan.gpus) if g.used]
    alloc = sum(p.size for gi in used for p in plan.gpus[gi].partitions)
    size = {(gi, qi): p.size for gi, g in enumerate(plan.gpus) for qi, p in enumerate(g.partitions)}
    in_use = set(used)  # a set: membership per busy partition stays O(1) on plans of thousands of GPUs
    busy_cap = sum(size[(gi, qi)] * b for gi, qi, b in busy if gi in in_use)
    n = max(1, len(used)) * cap
    return PlanStats(gpus_used=len(used), served=served, worst_latency_ms=worst, partition_busy=tuple(busy),
                     capacity_used=alloc / n, busy_capacity=busy_cap / n)


__all__ = ["Report", "Rule", "Violation", "capacities", "check", "cycle_rate", "duty_of", "find_mig_starts", "gpu_memory_limit_mb", "memory_limit_mb",
           "tenant_capacity", "tenant_share", "ABS_TOL", "REL_TOL", "least_covering", "needs_serving", "served_rates", "tolerant_scale", "whole_gpus"]
