"""Cheap bounds and feasibility facts every solver can be held against.

The LP relaxation of docs/RULES.md: capacity is divisible and every service is served at its best throughput per
unit of GPU capacity (over all batch sizes, partition sizes and process counts whose solo execution meets the
latency rule).  Time sharing never beats that efficiency (a tenant's cycle is at least its own execution time, and
interference only slows it down), so

    GPUs >= sum_s rate_s / (eff_s * capacity)          (min-gpus lower bound)
    alpha <= G * capacity / sum_s (rate_s / eff_s)      (max-scale upper bound)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from stsched.checker import (cycle_rate, exceeds_memory, needs_serving, partition_memory_mb, tolerant_limit,
                             tolerant_scale, whole_gpus)
from stsched.errors import TooLarge
from stsched.layouts import enumerate_layouts, fits
from stsched.problem import Instance, MechanismKind, ProfileEntry, ThroughputRule
from stsched.registry import Objective

#: max-scale: an alpha bound below this is not given to an LP or MIP engine (an alpha that small sits under the
#: engines' feasibility tolerances, about 1e-7, and their coefficients rate / capacity under the ones they drop: HiGHS
#: read 2.8e-26 as 0, a bound below a valid plan's alpha: the hostile user of session 19, one rate of 1e30 req/s);
#: the efficiency LP bound (`lp_bound_scale`, closed form) stands instead.  Chosen as a round margin above those
#: tolerances; tests/cli/test_hostile_s19.py checks every engine's bound just above it (alpha about 1e-5)
TINY_SCALE = 1e-6


@dataclass(frozen=True)
class Efficiency:
    """The best single-tenant operating point of a service: requests/s per unit of capacity."""

    service: str
    per_unit: float  # req/s per capacity unit (0: no point meets the SLO)
    batch: int | None = None
    size: float | None = None
    procs: int | None = None
    min_latency_ms: float | None = None  # the smallest 2*e over the whole table (what the SLO is compared to)


def point_capacity(instance: Instance, service: str, batch: int, size: float, procs: int, *,
                   optimistic: bool = False) -> float | None:
    """Req/s one saturated single-tenant partition serves at this point, or None when the SLO is missed (2 exec >
    budget by the checker's comparison, `stsched.layouts.fits`).  `optimistic` (the layout LP bound,
    `stsched.bounds`): under the measured rule, the better of the measured and the cycle rule at any process count."""
    e = instance.entry(service, batch, size, procs)
    if e is None:
        return None
    return entry_capacity(instance, e, instance.slo_budget_ms(service), optimistic=optimistic)


def entry_capacity(instance: Instance, e: ProfileEntry, budget_ms: float, *, optimistic: bool = False
                   ) -> float | None:
    """`point_capacity` of the table entry `e` (its batch, size and process count) for a service whose SLO budget
    is `budget_ms` (`Instance.slo_budget_ms`)."""
    batch, procs = e.batch, e.procs
    exec_ms = e.latency_ms * instance.margin.latency_factor
    if not fits(2 * exec_ms, budget_ms):  # (the checker's tolerance: a stricter one called servable points not)
        return None
    # the Poisson margin's credit of a one-tenant partition (d = e) with the least share: no tenant of this
    # point, alone or time-shared (d > e: fewer slack cycles), is credited with more per unit of busy time
    best = instance.margin.tenant_credit(batch, budget_ms, exec_ms, exec_ms, 0.0)
    cycle = cycle_rate(best, exec_ms, procs)
    if instance.throughput_rule is ThroughputRule.MEASURED and e.throughput_rps is not None:
        measured = procs * e.throughput_rps / instance.margin.latency_factor * instance.margin.credit(batch) / batch
        # a tenant sharing a partition (one process) is credited by the cycle rule, which may exceed the
        # measured throughput: the bound takes the better of the two so it stays a bound.  Several processes
        # hold exactly one tenant (the layout rule), which the checker (`tenant_capacity`) credits with this
        # measured throughput slowed down by interference (>= 1), never by the cycle rule: measured alone covers
        # it (tests/core/test_bound_credit_multiproc.py; crediting the cycle rule there too would lower the bound
        # below what checker-valid plans need: docs/SOLVERS.md, "Bounds")
        return max(measured, cycle) if procs == 1 or optimistic else measured
    return cycle


def usable_entries(instance: Instance, model: str) -> list[ProfileEntry]:
    """The entries of a model's table that a plan of the instance may use: its batches, the mechanism's sizes and
    at most its process count (the same for every service of the model: callers looping over services keep it
    per model)."""
    sizes, batches, max_procs = instance.mechanism.sizes, instance.batches, instance.mechanism.max_procs
    return [e for e in instance.table(model).entries
            if e.batch in batches and e.procs <= max_procs and any(abs(e.size - s) < 1e-9 for s in sizes)]


def _entries_of(instance: Instance, service: str, per_model: dict[str, list[ProfileEntry]] | None
                ) -> list[ProfileEntry]:
    model = instance.service(service).model
    if per_model is None:
        return usable_entries(instance, model)
    if model not in per_model:
        per_model[model] = usable_entries(instance, model)
    return per_model[model]


@dataclass(frozen=True)
class _Scan:
    """What one pass over a service's usable entries says: its `efficiency`, whether some point that meets its SLO
    fits the memory rule alone on its partition (`fits_alone`, when asked), and the most req/s one partition of each
    of the mechanism's sizes gives it alone (`size_caps`, in `mechanism.sizes` order, 0 where none meets its SLO;
    when asked: `gpu_reach` turns them into one GPU's)."""

    efficiency: Efficiency
    fits_alone: bool = False
    size_caps: tuple[float, ...] = ()


def _scan(instance: Instance, service: str, per_model: dict[str, list[ProfileEntry]] | None, memory: bool = False,
          gpu: bool = False) -> _Scan:
    """One pass over the service's entries, each point's capacity computed once (`entry_capacity`); `memory` and
    `gpu` ask for `fits_alone` and `size_caps` too (infeasible_services read the entries three times before)."""
    best = Efficiency(service, 0.0)
    min_lat = math.inf
    budget = instance.slo_budget_ms(service)
    factor = instance.margin.latency_factor
    fits_alone = False
    sizes = instance.mechanism.sizes
    size_caps = [0.0] * len(sizes) if gpu else []
    index: dict[float, int] = {}  # an entry's size -> its index in `sizes` (usable_entries: within 1e-9)
    for e in _entries_of(instance, service, per_model):
        min_lat = min(min_lat, 2 * e.latency_ms * factor)
        cap = entry_capacity(instance, e, budget)
        if cap is None:
            continue
        if cap / e.size > best.per_unit:
            best = Efficiency(service, cap / e.size, e.batch, e.size, e.procs)
        if memory and not fits_alone:  # (no plan holds a partition with less memory in use)
            fits_alone = not exceeds_memory(instance, e.size, partition_memory_mb(instance, e.procs,
                                                                                  [(service, e.batch)]))
        if gpu:
            if e.size not in index:
                index[e.size] = min(range(len(sizes)), key=lambda j: abs(sizes[j] - e.size))
            j = index[e.size]
            size_caps[j] = max(size_caps[j], cap)
    eff = Efficiency(best.service, best.per_unit, best.batch, best.size, best.procs,
                     None if math.isinf(min_lat) else min_lat)
    return _Scan(eff, fits_alone, tuple(size_caps))


def efficiency(instance: Instance, service: str, per_model: dict[str, list[ProfileEntry]] | None = None
               ) -> Efficiency:
    """A service's best req/s per capacity unit over the points of one saturated single-tenant partition, and its
    smallest latency; `per_model`: a dict that keeps `usable_entries` per model across calls."""
    return _scan(instance, service, per_model).efficiency


def max_count(instance: Instance, size: float) -> int:
    """How many partitions of `size` fit on one GPU."""
    mech = instance.mechanism
    if mech.kind is MechanismKind.MIG:
        used: set[int] = set()
        n = 0
        for p in sorted((p for p in mech.placements if p.size == size), key=lambda p: p.start):
            if used.isdisjoint(p.slots):
                used |= set(p.slots)
                n += 1
        return n
    n = int(mech.capacity // size + 1e-9)
    return min(n, mech.max_partitions) if mech.max_partitions else n


#: past this many legal layouts of one GPU (all of them, counted before the inclusion-maximal filter:
#: `enumerate_layouts`' limit; MPS at 1 % steps), `gpu_reach` takes the fractional bound
REACH_LAYOUTS = 20_000
_REACH_COUNTS: dict[object, np.ndarray | None] = {}  # mechanism -> its maximal layouts' counts (sizes x layouts)


def _layout_counts(instance: Instance) -> np.ndarray | None:
    """How many partitions of each of the mechanism's sizes every inclusion-maximal legal layout holds (rows: sizes,
    columns: layouts), or None past REACH_LAYOUTS legal layouts (counted before the maximal filter); once per
    mechanism."""
    mech = instance.mechanism
    if mech not in _REACH_COUNTS:
        try:
            layouts = enumerate_layouts(instance, maximal=True, limit=REACH_LAYOUTS)
        except TooLarge:
            layouts = []
        counts = np.array([[sum(1 for x in L if x == p) for L in layouts] for p in mech.sizes], dtype=float)
        _REACH_COUNTS[mech] = counts if layouts else None
    return _REACH_COUNTS[mech]


def gpu_reach(instance: Instance, size_caps: np.ndarray) -> np.ndarray:
    """The most req/s one GPU gives a service on its own, from `size_caps[..., j]`: the most one partition of
    `mechanism.sizes[j]` gives it (`_Scan.size_caps`; one row per service, or one service): the best over the
    mechanism's legal layouts (`stsched.layouts`: MIG's placements, the capacity, max_partitions) of the sum of their
    partitions' caps.  Layouts mixing sizes may carry more than the best single size repeated (ParvaGPU densenet121:
    2g + 2g + 3g serves 2476 req/s, 3g + 3g 2277: before session 19's review the screen took the latter and called
    2450 req/s on one GPU unservable).  Past REACH_LAYOUTS legal layouts: the best cap per unit of size times the
    capacity widened by the checker's tolerance (`tolerant_limit`), a weaker bound: deliberately loose, since
    `beyond_gpus` applies `whole_gpus`'s tolerance to the rate over this reach too (the tolerance counted twice: a
    reach only larger, so the screen stays valid, never calling a servable rate unservable, just weaker)."""
    caps = np.asarray(size_caps, dtype=float)
    counts = _layout_counts(instance)
    if counts is None:
        mech = instance.mechanism
        return (caps / np.array(mech.sizes)).max(axis=-1) * tolerant_limit(mech.capacity)
    return (caps @ counts).max(axis=-1)


def gpu_throughput(instance: Instance, service: str, per_model: dict[str, list[ProfileEntry]] | None = None
                   ) -> float:
    """The most req/s one GPU can give a service on its own (every partition saturated by it; `gpu_reach`)."""
    return float(gpu_reach(instance, np.array(_scan(instance, service, per_model, gpu=True).size_caps)))


POLL_SERVICES = 64  # the screen polls its `stop` once per this many services (about 8 ms of CPU at 100,000)


def _unservable_at_any_rate(instance: Instance, gpu: bool = False, stop: Callable[[], bool] | None = None
                            ) -> tuple[dict[str, str], dict[str, _Scan]]:
    """Services that no partition serves at all (no point meets the SLO, or none that does fits the memory rule),
    each with the reason; and the scan of every service scanned (`gpu`: with its one-GPU throughput).  `stop`
    (polled every POLL_SERVICES services): true ends the scan there, the services after it unscanned."""
    per_model: dict[str, list[ProfileEntry]] = {}
    out: dict[str, str] = {}
    scans: dict[str, _Scan] = {}
    for i, s in enumerate(instance.services):
        if stop is not None and i % POLL_SERVICES == 0 and stop():
            break
        scan = scans[s.name] = _scan(instance, s.name, per_model, memory=True, gpu=gpu)
        eff = scan.efficiency
        if eff.per_unit == 0.0:
            best = "no profiled point" if eff.min_latency_ms is None else f"best 2 x exec {eff.min_latency_ms:.2f} ms"
            out[s.name] = f"SLO budget {instance.slo_budget_ms(s.name):.2f} ms is below its smallest latency ({best})"
        elif not scan.fits_alone:
            out[s.name] = (f"no profiled point meets its SLO within the memory of one partition or GPU "
                           f"({s.memory_mb:.6g} MB + {s.activation_mb_per_sample:.6g} MB per request, per process)")
    return out, scans


def _infeasible(instance: Instance, stop: Callable[[], bool] | None = None
                ) -> tuple[dict[str, str], dict[str, _Scan]]:
    out, scans = _unservable_at_any_rate(instance, gpu=True, stop=stop)
    rest = [s for s in instance.services if s.name not in out and s.name in scans and needs_serving(s.rate)]
    if not rest:
        return out, scans
    per_gpu = gpu_reach(instance, np.array([scans[s.name].size_caps for s in rest]))  # (one product for all)
    for s, gpu_rps in zip(rest, per_gpu.tolist()):
        if beyond_gpus(s.rate, gpu_rps, instance.gpus):
            out[s.name] = (f"rate {s.rate:.6g} req/s exceeds {gpu_rps * instance.gpus:.6g} req/s, all "
                           f"{instance.gpus} GPUs serving it alone")
    return out, scans


def beyond_gpus(rate: float, gpu_rps: float, gpus: int) -> bool:
    """Whether `rate` exceeds what `gpus` GPUs serving it alone at `gpu_rps` req/s each (exact capacities) carry by
    the checker's tolerance: more GPUs than `gpus` by its rounding (`stsched.checker.whole_gpus`).  Before (session
    19 review) the rate was compared with the reach at 1e-9: a need 9e-7 above 2 GPUs, which a valid plan serves
    on 2, was unservable on 2 (tests/core/test_edge_mends_s19e.py)."""
    if not needs_serving(rate):
        return False
    return gpu_rps <= 0 or whole_gpus(rate / gpu_rps) > gpus


def infeasible_services(instance: Instance) -> dict[str, str]:
    """Services that no plan can serve on the instance's GPUs, each with the reason."""
    return _infeasible(instance)[0]


def _lp_gpus_of(instance: Instance, eff: dict[str, Efficiency]) -> float:
    """The efficiency LP's fractional GPUs from the services' efficiencies `eff`; a service missing from `eff` (a
    scan cut by its time limit holds only the services scanned so far) counts 0: a lower bound on the whole sum
    (every term is >= 0)."""
    total = 0.0
    for s in instance.services:
        if not needs_serving(s.rate) or s.name not in eff:  # (a rate within the checker's tolerance of 0 is
            continue  # covered with no tenant)
        if eff[s.name].per_unit == 0.0:
            return math.inf
        total += s.rate / eff[s.name].per_unit
    return total / instance.mechanism.capacity


def lp_gpus(instance: Instance) -> float:
    """Fractional GPUs of the LP relaxation (inf when some service cannot be served at all)."""
    per_model: dict[str, list[ProfileEntry]] = {}
    return _lp_gpus_of(instance, {s.name: efficiency(instance, s.name, per_model)
                                  for s in instance.services if needs_serving(s.rate)})


def lp_bound_gpus(instance: Instance, x: float | None = None) -> float:
    """A lower bound on the GPUs of any valid plan (min-gpus); `x`: `lp_gpus(instance)` when the caller has it
    already (`Screen.lp_gpus`: no second scan of every service)."""
    return whole_gpus(lp_gpus(instance) if x is None else x)  # (the checker's rounding; no demand: the empty plan)


def lp_bound_scale(instance: Instance, x: float | None = None) -> float:
    """An upper bound on alpha for max-scale on instance.gpus GPUs; `x` as in `lp_bound_gpus`."""
    x = lp_gpus(instance) if x is None else x
    if x == 0:
        return math.inf
    return tolerant_scale(instance.gpus / x)  # (the checker's tolerance, as `lp_bound_gpus` rounds)


# ---------------------------------------------------------------------------------------------------- layout LP
# The layout LP: Cheap bounds for reports: `stsched.bounds` (capacity divisible) and a stronger LP that keeps the GPU layouts.
#
# `lp_relaxation(instance, objective)` solves the LP relaxation of the slots model (solvers/exact/patterns.py) restricted
# to one-tenant configurations timed solo, with every layout's slots:
#
#     min  sum_L y_L                      (min-gpus)        max alpha  s.t. sum_L y_L <= G   (max-scale)
#     s.t. sum_{c of size p} x_c <= sum_L n_L(p) y_L        for every partition size p
#          sum_c cap_{c,s} x_c >= alpha * rate_s           for every service s (alpha = 1 for min-gpus)
#          x, y >= 0 (continuous)
#
# Why it bounds every valid plan: a partition time-shared by tenants i with cycle d = sum e_i credits tenant i with
# 1000 b_i / d = (e_i / d) * (1000 b_i / e_i), a convex combination (weights e_i / d summing to 1) of one-tenant
# configurations of the same size that each meet 2 e_i <= d + e_i <= budget; so one-tenant configurations credited with
# max(measured, 1000 b / e) cover it.  Interference only slows tenants down, memory is dropped, and every legal layout
# is contained in an inclusion-maximal one.  It is at least as strong as `lp_gpus` on MPS (same
# efficiency, plus slot granularity) and adds MIG's placement losses (e.g. 3g+3g leaves one compute slice unused).
#
# Note: `lp_gpus` (`entry_capacity`) credits one-process points under the measured rule with max(measured, cycle rule
# at the best Poisson credit), so it covers time-shared partitions too, and multi-process points with the measured
# throughput, which is what the checker credits their one tenant with; this LP adds the layouts but credits every
# process count optimistically (on Poisson MIG it can be the weaker of the two: tests/solvers/test_cg_setup_clock.py).


@dataclass(frozen=True)
class LpBound:
    """`value`: fractional GPUs (min-gpus, a lower bound; round up for an integer one) or alpha (max-scale, an upper
    bound); inf / 0 when some service has no configuration meeting its SLO."""

    value: float
    objective: Objective
    configs: int
    layouts: int

    @property
    def gpus(self) -> float:
        return whole_gpus(self.value)


def unservable(instance: Instance, objective: Objective) -> dict[str, str]:
    """Services no plan can serve, with the reason: `stsched.bounds.infeasible_services` for min-gpus; for max-scale
    only the SLO and memory reasons count (any rate can be scaled down)."""
    return screen(instance, objective).unservable


@dataclass(frozen=True)
class Screen:
    """`unservable` (service -> reason) and, from the same scan of every service's entries, the efficiency LP
    relaxation's fractional GPUs `lp_gpus` (`lp_gpus`; inf when a service with a rate has no point)."""

    unservable: dict[str, str]
    lp_gpus: float
    # how many services were scanned (all of them unless its `stop` ended the scan: then `unservable` names those
    # found among them only and `lp_gpus` sums them only, still a valid bound; `complete` says which)
    scanned: int = -1
    services: int = -1

    @property
    def complete(self) -> bool:
        """Whether every service was scanned (feasibility fully checked)."""
        return self.scanned == self.services

    def efficiency_bound(self, objective: Objective, gpus: int) -> float:
        """The efficiency LP's bound (module docstring): GPUs >= lp_gpus, alpha <= G / lp_gpus."""
        if objective is Objective.MAX_SCALE:
            return gpus / self.lp_gpus if self.lp_gpus > 0 else math.inf
        return self.lp_gpus


def screen(instance: Instance, objective: Objective, stop: Callable[[], bool] | None = None) -> Screen:
    """`unservable` and the efficiency LP bound in one pass over the services (the column generation's set-up
    keeps the bound for the case its own runs out of time: solvers.exact.colgen).  `stop` (a time limit's poll,
    every POLL_SERVICES services): once true the scan ends, and the Screen covers the services scanned so far
    (`Screen.complete` false): at 100,000 services the scan alone took 12 s of a 10 s limit."""
    out, scans = (_unservable_at_any_rate(instance, stop=stop) if objective is Objective.MAX_SCALE
                  else _infeasible(instance, stop))
    n = len(instance.services)
    return Screen(out, _lp_gpus_of(instance, {k: v.efficiency for k, v in scans.items()}), scanned=len(scans),
                  services=n)


def lp_relaxation(instance: Instance, objective: Objective = Objective.MIN_GPUS) -> LpBound:
    """The layout-aware LP bound (see module docstring)."""
    sizes = list(instance.mechanism.sizes)
    layouts = enumerate_layouts(instance, maximal=True, limit=10 ** 6)
    active = [s for s in instance.services if needs_serving(s.rate)]  # (as `lp_gpus`: the checker's rule)
    cols: list[tuple[int, int, float]] = []  # (service row, size index, capacity)
    for si, s in enumerate(active):
        best: dict[int, float] = {}
        for pi, p in enumerate(sizes):
            for b in instance.batches:
                for k in instance.procs_options():
                    c = point_capacity(instance, s.name, b, p, k, optimistic=True)
                    if c is not None and c > best.get(pi, 0.0):
                        best[pi] = c
        if not best:
            return LpBound(math.inf if objective is Objective.MIN_GPUS else 0.0, objective, 0, len(layouts))
        cols += [(si, pi, c) for pi, c in best.items()]
    if not active:
        return LpBound(0.0 if objective is Objective.MIN_GPUS else math.inf, objective, 0, len(layouts))
    if objective is Objective.MAX_SCALE and (eff := lp_bound_scale(instance)) < TINY_SCALE:
        return LpBound(eff, objective, len(cols), len(layouts))  # (TINY_SCALE: HiGHS would drop the coefficients)
    n_x, n_y = len(cols), len(layouts)
    n = n_x + n_y + 1  # x, y, alpha
    # sparse rows (a dense matrix of services x columns took 9 s and 2.9 GB at 4,096 services, O(n^2))
    entries: list[tuple[int, int, float]] = []  # (row, column, coefficient)
    n_slots = len(sizes)
    for j, (csi, cpi, c) in enumerate(cols):
        entries.append((cpi, j, 1.0))  # rows 0..: slots of size p, used by x minus held by y <= 0
        entries.append((n_slots + csi, j, -c / active[csi].rate))  # coverage: alpha * rate - sum cap x <= 0
    for li, L in enumerate(layouts):
        for pi, p in enumerate(sizes):
            held = sum(1 for x in L if x == p)
            if held:
                entries.append((pi, n_x + li, -float(held)))
    entries += [(n_slots + si, n - 1, 1.0) for si in range(len(active))]
    n_rows = n_slots + len(active)
    cost = np.zeros(n)
    bounds = [(0, None)] * (n_x + n_y)
    if objective is Objective.MIN_GPUS:
        cost[n_x:n_x + n_y] = 1.0
        bounds.append((1.0, 1.0))
    else:
        entries += [(n_rows, n_x + li, 1.0) for li in range(n_y)]  # GPUs used <= the instance's
        n_rows += 1
        cost[-1] = -1.0
        bounds.append((0, None))
    r, c, v = zip(*entries)
    a_ub = sparse.csr_matrix((v, (r, c)), shape=(n_rows, n))
    b_ub = np.zeros(n_rows)
    if objective is not Objective.MIN_GPUS:
        b_ub[-1] = float(instance.gpus)
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if res.status != 0:
        if unservable(instance, objective):  # a rate no GPU count serves (1e308 req/s): HiGHS calls the LP
            # infeasible; the LP's answer for a service it cannot serve (inf GPUs, alpha 0), as for the others
            return LpBound(math.inf if objective is Objective.MIN_GPUS else 0.0, objective, n_x, n_y)
        raise RuntimeError(f"LP relaxation failed: {res.message}")
    value = float(res.fun) if objective is Objective.MIN_GPUS else float(-res.fun)
    return LpBound(value, objective, n_x, n_y)
