"""What both exact models (solvers.exact.milp, solvers.exact.cpsat) are built from: partition configurations, GPU layouts and
GPU patterns, enumerated once per instance with their capacities precomputed.

A *configuration* is one partition: a size, a process count and a tenant set with a batch per tenant.  Its duty cycle
is the shortest legal one, d = sum of the tenants' execution times: for a fixed tenant set and batches that both
maximises every tenant's throughput (1000 b / d) and minimises every tenant's latency (d + e), so nothing is lost by
fixing it.  A configuration is kept when every tenant meets d + e <= budget (docs/RULES.md) and its memory fits;
its capacity per tenant follows the instance's throughput rule exactly as `stsched.checker` credits it.

A *layout* is a legal multiset of partition sizes on one GPU (MIG placements via the checker's `find_mig_starts`;
MPS/SM: sizes sum to at most the capacity, at most `max_partitions`).  A *GPU pattern* is a layout with one
configuration per slot, timed with `stsched.timing.gpu_timings` (the checker's own interference rule), so it is
exact under any interference form.

Two reductions are exact and always applied:
- clipping: a partition never needs to serve more of service s than the whole demand alpha_max * rate_s, so
  capacities are clipped there (min-gpus: alpha_max = 1; max-scale: an upper bound on alpha);
- dominance: rates split continuously over partitions, so only a configuration's clipped capacity vector matters;
  within one (size, tenant set) a configuration whose vector (and memory, when GPU memory can bind) is no better than
  another's is dropped.  GPU patterns are pruned the same way.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_right
from dataclasses import dataclass, field, fields
from itertools import combinations_with_replacement
from typing import Callable, Iterable, Sequence

import numpy as np

from stsched.checker import (cycle_rate, exceeds_memory, gpu_memory_limit_mb, least_covering, needs_serving,
                             partition_memory_mb, tenant_capacity, tolerant_limit)
from stsched.errors import InputError, TooLarge
from stsched.layouts import duty_room, enumerate_layouts, fits, mig_starts
from stsched.interference import get_form
from stsched.plan import GpuLayout, Partition, Tenant
from stsched.problem import Instance, MechanismKind
from stsched.registry import Objective, SolveOptions, parse_options
from stsched.timing import features, gpu_timings, slowdown
from stsched.validate import MAX_THREADS, check_int

log = logging.getLogger(__name__)

FORMULATIONS = ("auto", "slots", "patterns", "indexed")


@dataclass(frozen=True)
class ExactOptions:
    """Model options of the exact solvers, read from `SolveOptions.params` (`--param key=value`).

    formulation: "slots" (aggregated: count of each configuration and of each GPU layout, coupled by slot counts per
      size), "patterns" (count of each complete GPU pattern, exact under interference), "indexed" (one block of
      variables per GPU, with symmetry breaking) or "auto" (slots unless interference or GPU memory couples the
      partitions of a GPU, then patterns when they number at most `max_patterns`, else slots with the conservative
      bound).
    max_tenants: tenant sets of at most this many services per partition (the instance's own limit applies too);
      lowered automatically while the configurations exceed `max_enumerated` before dominance or `max_configs`
      after it (the result says so).
    max_configs: configurations in the model (after dominance).
    max_enumerated: configurations enumerated before dominance.
    max_patterns: complete GPU patterns enumerated (formulation patterns).
    max_layouts: GPU layouts enumerated.
    interference: "auto" (exact patterns when they fit), "conservative" (every tenant timed with the worst slowdown
      any legal neighbour could cause).
    pricing: add larger tenant sets by pricing when the enumeration stops below the instance's tenant limit.
    ladder: solve with 1, 2, ... tenants per partition first, each model warm-starting the next.
    greedy_start: start the engine from a greedy solution of the model when no warm start is given.
    """

    formulation: str = "auto"
    max_tenants: int = 3
    max_configs: int = 5_000
    max_enumerated: int = 100_000
    max_patterns: int = 60_000
    max_layouts: int = 20_000
    interference: str = "auto"
    pricing: bool = True
    ladder: bool = True
    greedy_start: bool = True

    def __post_init__(self) -> None:
        if self.formulation not in FORMULATIONS:
            raise InputError(f"formulation {self.formulation!r}: expected one of {', '.join(FORMULATIONS)}")
        if self.interference not in ("auto", "conservative"):
            raise InputError(f"interference {self.interference!r}: expected auto or conservative")
        for name in ("max_tenants", "max_configs", "max_enumerated", "max_patterns", "max_layouts"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_solve_options(cls, options: SolveOptions) -> "ExactOptions":
        """This class's options from `SolveOptions.params` (the keys of a subclass's own fields are left to it; the
        registry has refused unknown keys before the solver ran)."""
        own = {f.name for f in fields(cls)}
        return parse_options(cls, tuple((k, v) for k, v in options.params if k in own), "exact")


@dataclass(frozen=True)
class MilpOptions(ExactOptions):
    """Options of the milp solver: those of the exact solvers (`ExactOptions`) and

    highs_start: pass the warm start to HiGHS too (engine highs; off by default: HiGHS 1.16 may then report a stale
      bound).
    max_nodes: a work limit on the branch and bound: the engine stops after this many nodes (CBC's maxNodes, HiGHS's
      mip_max_nodes) with its best plan, whatever the clock says, so that a run cut by it is the same run at any
      machine load (the time limit stays as the safety net); 0: none.
    """

    highs_start: bool = False
    max_nodes: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_nodes < 0:
            raise InputError(f"max_nodes must be >= 0 (0: no node limit), got {self.max_nodes}")


@dataclass(frozen=True)
class CpsatOptions(ExactOptions):
    """Options of the cpsat solver: those of the exact solvers (`ExactOptions`) and

    coverage_units: demand is covered in 1/K units (integer capacity units, floored).
    workers: CP-SAT search workers (0: as many as --threads).
    linearization_level: CP-SAT's linearization level (2: all constraints; proves these covering models).
    """

    coverage_units: int = 10 ** 6
    workers: int = 0
    linearization_level: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.coverage_units < 1:
            raise InputError(f"coverage_units must be >= 1, got {self.coverage_units}")
        check_int(self.workers, "workers", minimum=0, maximum=MAX_THREADS)
        if self.linearization_level not in (0, 1, 2):
            raise InputError(f"linearization_level must be 0, 1 or 2, got {self.linearization_level}")


@dataclass(frozen=True)
class Config:
    """One partition configuration.  `cap` is req/s per tenant in this model (unclipped)."""

    size: float
    procs: int
    tenants: tuple[tuple[int, int], ...]  # (service index, batch)
    cap: tuple[float, ...]
    memory_mb: float

    def partition(self, names: Sequence[str], rates: Sequence[float], start: int | None = None) -> Partition:
        return Partition(self.size, tuple(Tenant(names[s], b, r) for (s, b), r in zip(self.tenants, rates)),
                         procs=self.procs, start=start)


@dataclass(frozen=True)
class GpuPattern:
    """A complete GPU: one configuration per slot, capacities timed in this exact company."""

    configs: tuple[Config, ...]
    total: tuple[float, ...]  # req/s per service over the whole GPU (unclipped)


def coverage(c: Config, rates, clip: float = 1.0) -> dict[int, float]:
    """Coverage coefficient of configuration `c` per service it serves: its capacity, counted up to `clip` x the
    service's rate, over that rate (`rates`, req/s; a service at 0 is left out)."""
    out: dict[int, float] = {}
    for (s, _), cap in zip(c.tenants, c.cap):
        r = rates[s]
        if r > 0:
            out[s] = out.get(s, 0.0) + min(cap, clip * r) / r
    return out


@dataclass(frozen=True)
class ModelData:
    """Everything an engine needs; symbols: services s, sizes p, layouts L, configs c, patterns P."""

    instance: Instance
    names: tuple[str, ...]
    rates: tuple[float, ...]
    clip_alpha: float
    formulation: str
    sizes: tuple[float, ...]
    layouts: tuple[tuple[float, ...], ...]
    configs: tuple[Config, ...]
    patterns: tuple[GpuPattern, ...]
    gpu_memory_mb: float | None  # indexed formulation: per-GPU memory row when memory can bind
    exact: bool  # the model's optimum is the true optimum (no restriction, no conservative bound)
    discretisation: str
    tenants: int = 1  # tenant sets of at most this many services
    conservative: bool = False  # tenants timed with the worst slowdown any legal neighbour could cause
    notes: tuple[str, ...] = field(default=())
    tenant_limited: bool = False  # sets of tenants + 1 services meet the latency rule but are not in the model
    tolerant: bool = False  # min-gpus: coverage rows as the checker's tolerance credits them (`row_coverage`)

    def coverage(self, s: int, caps: Iterable[tuple[int, float]]) -> float:
        """Clipped capacity for service s divided by its rate."""
        u = self.clip_alpha * self.rates[s]
        return sum(min(c, u) for si, c in caps if si == s) / self.rates[s]

    def config_coverage(self, c: Config) -> dict[int, float]:
        """Coverage coefficient (clipped capacity / rate) of configuration c per service it serves."""
        return coverage(c, self.rates, self.clip_alpha)

    def pattern_coverage(self, p: GpuPattern) -> dict[int, float]:
        out: dict[int, float] = {}
        for c in p.configs:
            for s, v in self.config_coverage(c).items():
                out[s] = out.get(s, 0.0) + v
        return {s: min(v, self.clip_alpha) for s, v in out.items()}

    def tolerant_rows(self, objective: Objective) -> bool:
        """Whether a model of `objective` writes its coverage rows as the checker's tolerance credits them: for
        min-gpus when `tolerant` (the exact solvers' models; max-scale needs no such rows, its bound is widened by
        the same tolerance, `stsched.checker.tolerant_scale`)."""
        return self.tolerant and objective is Objective.MIN_GPUS

    def relaxed(self, objective: Objective) -> bool:
        """Whether a model of `objective` relaxes some row by the checker's tolerance (its coverage rows,
        `tolerant_rows`, or the indexed per-GPU memory row, `gpu_memory_row`, for either objective: memory does not
        scale with alpha, so `tolerant_scale` does not cover it), so that an incumbent may need the model at exact
        capacities for a plan (`solvers.exact.driver._attempt`).  Only the indexed formulation writes that row
        (`gpu_memory_mb` is set whenever memory can bind: the slots formulation limits each configuration instead,
        patterns check each GPU pattern exactly; for them the fallback re-solved the identical model)."""
        return self.tolerant_rows(objective) or (self.tolerant and self.gpu_memory_mb is not None
                                                 and self.formulation == "indexed")

    def row_coverage(self, item: Config | GpuPattern, tolerant: bool) -> dict[int, float]:
        """The coefficients of a configuration or GPU pattern in a model's coverage rows, per service: exact
        (`config_coverage`, `pattern_coverage`) or, `tolerant`, each tenant's clipped capacity widened by the rule
        the checker compares its rate with (`stsched.checker.tolerant_limit`, the absolute 1e-9 req/s included).
        With `row_need`, a relaxation of the checker's problem: every plan the checker calls valid meets those
        rows, so the model's bound is the problem's (the layout, latency and memory rules are already the
        checker's, `stsched.layouts.fits`)."""
        pattern = isinstance(item, GpuPattern)
        if not tolerant:
            return self.pattern_coverage(item) if pattern else self.config_coverage(item)
        out: dict[int, float] = {}
        for c in item.configs if pattern else (item,):
            for s, a in self.config_coverage(c).items():
                r = self.rates[s]
                out[s] = out.get(s, 0.0) + tolerant_limit(a * r) / r
        return out

    def row_need(self, s: int, tolerant: bool) -> float:
        """The right-hand side of service s's min-gpus coverage row: 1 (its rate), or, `tolerant`, the least share
        of it the checker lets a plan serve (`stsched.checker.least_covering`, the absolute 1e-9 req/s included)."""
        r = self.rates[s]
        return least_covering(r) / r if tolerant else 1.0

    def gpu_memory_row(self) -> float | None:
        """The right-hand side (MB) of the indexed formulation's per-GPU memory row (None: no row): the GPU's limit
        (`gpu_memory_mb`), or, `tolerant` (either objective), that limit widened by the checker's memory rule
        (`tolerant_limit`, as `stsched.checker.exceeds_memory`): every plan the checker calls valid meets it (at
        the exact limit a GPU whose partitions need up to REL_TOL more, valid, was cut off: min-gpus 3 GPUs
        "optimal" where 2 are valid, max-scale 0.526 "optimal" below a valid 1.0; tests/core/test_edge_mends_s19e.py)."""
        if self.gpu_memory_mb is None:
            return None
        return tolerant_limit(self.gpu_memory_mb) if self.tolerant else self.gpu_memory_mb

    def slots(self, layout: tuple[float, ...], size: float) -> int:
        return sum(1 for x in layout if x == size)


# ------------------------------------------------------------------------------------------------- timing
Stop = Callable[[], bool] | None  # a model's preparation polls it (True: the time limit has passed)


class OutOfTime(Exception):
    """The time limit passed while a model was being prepared (the solver returns what a time limit returns)."""


def poll(stop: Stop, what: str) -> None:
    """Raise OutOfTime (naming `what` was under way) when `stop` says the time limit has passed."""
    if stop is not None and stop():
        raise OutOfTime(what)


POLL_EVERY = 64  # work items (services, sets, groups, patterns) between two polls of the clock


def neighbour_interference(instance: Instance) -> bool:
    """True when a tenant's slowdown depends on what the other partitions of its GPU run."""
    form = get_form(instance.interference.form)
    if not form.needs_features or instance.interference.form == "none":
        return False
    if not form.reads_util:  # a counter-free form reads what every table has (fraction, latency, elasticity)
        return True
    return any(e.l2_util is not None and e.dram_util is not None for t in instance.tables for e in t.entries)


class _Timer:
    """Execution times (margin and slowdown applied) of single tenants in a partition, solo or worst case."""

    def __init__(self, instance: Instance, conservative: bool, layouts: Sequence[tuple[float, ...]]):
        self.instance = instance
        self.conservative = conservative
        self.neighbours: dict[float, list] = {}
        if conservative:
            active = [s for s in instance.services if needs_serving(s.rate)]
            procs = instance.procs_options()
            for p in instance.mechanism.sizes:
                with_p = [L for L in layouts if p in L]
                others = {q for L in with_p for i, q in enumerate(L) if i != L.index(p)}
                count = max((len(L) - 1 for L in with_p), default=0)
                feats = [f for q in others for s in active for b in instance.batches for k in procs
                         if (f := features(instance, s.name, b, q, k)) is not None]
                self.neighbours[p] = [feats] * count if feats else []
        self._cache: dict[tuple, float | None] = {}

    def exec_ms(self, service: str, batch: int, size: float, procs: int) -> float | None:
        key = (service, batch, size, procs)
        if key not in self._cache:
            solo = self.instance.solo_ms(service, batch, size, procs)
            if solo is None:
                self._cache[key] = None
            else:
                victim = features(self.instance, service, batch, size, procs)
                near = self.neighbours.get(size, []) if self.conservative else []
                self._cache[key] = solo * slowdown(self.instance, victim, near)
        return self._cache[key]


def single_capacity(instance: Instance, service: str, batch: int, size: float, procs: int, exec_ms: float) -> float:
    """Req/s of a one-tenant partition, as `stsched.checker` credits it."""
    return tenant_capacity(instance, service, batch, size, procs, exec_ms, exec_ms, 1)


_memory = partition_memory_mb  # (the checker's sum; the names solvers.exact use)


def _memory_ok(instance: Instance, size: float, mem: float) -> bool:
    return not exceeds_memory(instance, size, mem)


# ------------------------------------------------------------------------------------------------- configurations
def tenant_points(instance: Instance, timer: _Timer, stop: Stop = None):
    """One-tenant configurations (all process counts) and, for growing tenant sets, the one-process points: `pts`
    maps (size, service) to (batch, exec) sorted by time; `layer` holds one-service sets (size, services, batches,
    duty, room = min over tenants of `stsched.layouts.duty_room`: the longest duty the checker lets them all run at).
    `stop` is polled every POLL_EVERY services (OutOfTime)."""
    names = instance.service_names
    budgets = [instance.slo_budget_ms(n) for n in names]
    singles: list[Config] = []
    layer: list[tuple[float, tuple[int, ...], tuple[int, ...], float, float]] = []
    pts: dict[tuple[float, int], list[tuple[int, float]]] = {}
    for p in instance.mechanism.sizes:
        for n, s in enumerate(i for i, sv in enumerate(instance.services) if needs_serving(sv.rate)):
            if n % POLL_EVERY == 0:
                poll(stop, f"the operating points of size {p:g}")
            for b in instance.batches:
                for k in instance.procs_options():
                    e = timer.exec_ms(names[s], b, p, k)
                    if e is None or not fits(2 * e, budgets[s]):
                        continue
                    mem = _memory(instance, k, [(names[s], b)])
                    if not _memory_ok(instance, p, mem):
                        continue
                    singles.append(Config(p, k, ((s, b),), (single_capacity(instance, names[s], b, p, k, e),), mem))
                    if k == 1:
                        pts.setdefault((p, s), []).append((b, e))
                        layer.append((p, (s,), (b,), e, duty_room(e, budgets[s])))
    for v in pts.values():
        v.sort(key=lambda x: x[1])
    return singles, layer, pts


def grow(instance: Instance, layer: list, pts: dict, limit: int, stop: Stop = None) -> list:
    """Tenant sets one service larger than those of `layer` that still meet d + e <= budget for every tenant
    (TooLarge past `limit` sets; `stop` polled every POLL_EVERY sets of `layer`)."""
    budgets = [instance.slo_budget_ms(n) for n in instance.service_names]
    active = sorted({s for _, s in pts})
    grown = []
    for n, (p, ss, bs, d, room) in enumerate(layer):
        if n % POLL_EVERY == 0:
            poll(stop, f"tenant sets of {len(ss) + 1}")
        for j in active[bisect_right(active, ss[-1]):]:  # services above the set's last, in order
            for b, e in pts.get((p, j), ()):
                d2, room2 = d + e, min(room, duty_room(e, budgets[j]))
                if d2 > room2:  # the checker's rule for every tenant (fits(d2, budget - e) was stricter by e 1e-6)
                    break  # times grow with the batch: larger ones fail too
                grown.append((p, ss + (j,), bs + (b,), d2, room2))
                if len(grown) > limit:
                    raise TooLarge(f"tenant sets of {len(ss) + 1}: more than {limit} configurations enumerated")
    return grown


def shared_config(instance: Instance, p: float, ss: tuple[int, ...], bs: tuple[int, ...], d: float) -> Config | None:
    """A one-process configuration of several tenants (cycle rule), or None when its memory does not fit."""
    mem = _memory(instance, 1, [(instance.services[x].name, y) for x, y in zip(ss, bs)])
    if not _memory_ok(instance, p, mem):
        return None
    return Config(p, 1, tuple(zip(ss, bs)), tuple(cycle_rate(instance.margin.credit(y), d) for y in bs), mem)


def enumerate_configs(instance: Instance, timer: _Timer, max_tenants: int, clip: Sequence[float], prune: bool,
                      memory_matters: bool, limit: int, stop: Stop = None) -> tuple[list[list[Config]], str]:
    """Every feasible configuration, by tenant count: `levels[k - 1]` holds those with k tenants (Pareto-pruned per
    (size, tenant set) when `prune`).  Sets grow one service at a time; a level whose enumeration passes `limit`
    raw configurations is dropped with the levels above it, and the second value says so ("" when complete).
    `stop` is polled on the way (OutOfTime)."""
    cap = min(max_tenants, instance.mechanism.max_tenants or max_tenants)
    singles, layer, pts = tenant_points(instance, timer, stop)
    levels = [_prune(singles, clip, prune, memory_matters, stop)]
    count = 0
    for _ in range(2, cap + 1):
        try:
            layer = grow(instance, layer, pts, limit - count, stop)
        except TooLarge as e:
            return levels, str(e)
        if not layer:
            break
        count += len(layer)
        configs = [c for p, ss, bs, d, _ in layer if (c := shared_config(instance, p, ss, bs, d)) is not None]
        levels.append(_prune(configs, clip, prune, memory_matters, stop))
    return levels, ""


def _prune(configs: list[Config], clip: Sequence[float], prune: bool, memory_matters: bool,
           stop: Stop = None) -> list[Config]:
    if not prune:
        return configs
    groups: dict[tuple, list[Config]] = {}
    for c in configs:
        groups.setdefault((c.size, tuple(s for s, _ in c.tenants)), []).append(c)
    out: list[Config] = []
    for n, g in enumerate(groups.values()):
        if n % POLL_EVERY == 0:
            poll(stop, "the dominance pruning of the configurations")
        out += _pareto_configs(g, clip, memory_matters)
    return out


def _pareto_configs(group: list[Config], clip: Sequence[float], memory_matters: bool) -> list[Config]:
    vecs = np.array([[min(c, clip[s]) for (s, _), c in zip(cfg.tenants, cfg.cap)]
                     + ([-cfg.memory_mb] if memory_matters else []) for cfg in group])
    keep = pareto_mask(vecs)
    return [cfg for cfg, k in zip(group, keep) if k]


def pareto_mask(vecs: np.ndarray) -> np.ndarray:
    """Rows not weakly dominated by another kept row (of equal rows the first is kept).  Compared with no
    tolerance: a pruned row is never above the row that prunes it in any entry, so the pruning is sound at exact
    capacities (with the 1e-9 (1 + max) tolerance before, session 19 review, a pruned row could carry that much more
    capacity).  Not counted: the min-gpus rows' absolute 1e-9 req/s per tenant (`ModelData.row_coverage`), so a GPU
    pattern of more tenants pruned by one of fewer (50 + 50 by 100) is credited up to 1e-9 req/s per extra tenant
    more by the rows than the one kept (docs/RULES.md)."""
    n = len(vecs)
    if n <= 1:
        return np.ones(n, dtype=bool)
    if n <= 1500:  # all pairs at once: geq[i, j] = row j >= row i everywhere
        geq = np.all(vecs[None, :, :] >= vecs[:, None, :], axis=2)
        strict = geq & ~geq.T  # j strictly better than i
        tie = geq & geq.T & (np.arange(n)[None, :] < np.arange(n)[:, None])  # j equal to i and earlier
        np.fill_diagonal(strict, False)
        return ~(strict | tie).any(axis=1)
    # blocks in order of decreasing sum: a row can only be dominated by rows of larger or equal sum, so each block
    # is judged against the rows kept before it and (pairwise, as above) against itself
    order = np.argsort(-vecs.sum(axis=1), kind="stable")
    kept = np.zeros((0, vecs.shape[1]))
    mask = np.zeros(n, dtype=bool)
    for start in range(0, n, 1000):
        idx = order[start:start + 1000]
        block = vecs[idx]
        alive = pareto_mask(block) if len(block) > 1 else np.ones(len(block), dtype=bool)
        if len(kept):
            for i in np.where(alive)[0]:
                if np.any(np.all(kept >= block[i], axis=1)):
                    alive[i] = False
        mask[idx[alive]] = True
        kept = np.vstack([kept, block[alive]])
    return mask


# ------------------------------------------------------------------------------------------------- GPU patterns
def enumerate_patterns(instance: Instance, configs: Sequence[Config], layouts: Sequence[tuple[float, ...]],
                       clip: Sequence[float], limit: int, stop: Stop = None) -> list[GpuPattern]:
    """Every GPU pattern over `layouts` whose tenants all meet the rules in exactly that company; Pareto-pruned
    (`stop` polled every POLL_EVERY patterns tried)."""
    by_size: dict[float, list[Config]] = {}
    for c in configs:
        by_size.setdefault(c.size, []).append(c)
    total = 0
    for L in layouts:
        n = 1
        for p in set(L):
            n *= math.comb(len(by_size.get(p, [])) + L.count(p) - 1, L.count(p))
        total += n
    if total > limit:
        raise TooLarge(f"{total} GPU patterns > limit {limit}")
    names = instance.service_names
    n_serv = len(names)
    pats: list[GpuPattern] = []
    coupled = neighbour_interference(instance)  # else a configuration's timing does not depend on its company
    mem_cap = gpu_memory_limit_mb(instance)
    for L in layouts:
        choices = [list(combinations_with_replacement(by_size.get(p, []), L.count(p))) for p in sorted(set(L), reverse=True)]
        for n, combo in enumerate(_product(choices)):
            if n % POLL_EVERY == 0:
                poll(stop, "the GPU patterns")
            cfgs = tuple(c for part in combo for c in part)
            if instance.mechanism.kind is not MechanismKind.MIG and not fits(sum(c.memory_mb for c in cfgs), mem_cap):
                continue
            totals = _pattern_capacity(instance, cfgs, n_serv) if coupled else _solo_totals(cfgs, n_serv)
            if totals is not None:
                pats.append(GpuPattern(totals[1], totals[0]))
    if not pats:
        return []
    vecs = np.array([[min(t, clip[s]) for s, t in enumerate(p.total)] for p in pats])
    keep = pareto_mask(vecs)
    return [p for p, k in zip(pats, keep) if k and any(x > 0 for x in p.total)]


def _product(choices: list[list]) -> Iterable[tuple]:
    if not choices:
        yield ()
        return
    for head in choices[0]:
        for rest in _product(choices[1:]):
            yield (head,) + rest


def _solo_totals(cfgs: tuple[Config, ...], n_serv: int):
    totals = [0.0] * n_serv
    for c in cfgs:
        for (s, _), cap in zip(c.tenants, c.cap):
            totals[s] += cap
    return tuple(totals), cfgs


def _pattern_capacity(instance: Instance, cfgs: tuple[Config, ...], n_serv: int):
    """Exact (checker) timing of a GPU of these configurations: (totals, configs with contextual caps) or None."""
    names = instance.service_names
    layout = GpuLayout(tuple(c.partition(names, [0.0] * len(c.tenants)) for c in cfgs))
    timings = gpu_timings(instance, layout)
    totals = [0.0] * n_serv
    out = []
    for c, times in zip(cfgs, timings):
        if any(t.exec_ms is None for t in times):
            return None
        d = sum(t.exec_ms for t in times)
        caps = []
        for (s, b), t in zip(c.tenants, times):
            if not fits(d + t.exec_ms, instance.slo_budget_ms(names[s])):
                return None
            cap = tenant_capacity(instance, names[s], b, c.size, c.procs, t.exec_ms, d, len(c.tenants))
            caps.append(cap)
            totals[s] += cap
        out.append(Config(c.size, c.procs, c.tenants, tuple(caps), c.memory_mb))
    return tuple(totals), tuple(out)


__all__ = ["Config", "CpsatOptions", "ExactOptions", "MilpOptions", "GpuPattern", "ModelData", "TooLarge", "enumerate_configs",
           "enumerate_layouts", "enumerate_patterns", "fits", "mig_starts", "neighbour_interference",
           "pareto_mask", "single_capacity"]
