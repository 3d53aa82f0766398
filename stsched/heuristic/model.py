"""Per-instance precomputation: every service's operating points, its knee, the candidate GPU layouts.

Everything the heuristic evaluates millions of times is looked up here in plain Python lists (scalar access to
numpy arrays is slower than to lists); the per-size best capacities are numpy arrays for the vectorised choices
of the fill step.  Execution times carry the margin's latency factor exactly as `Instance.solo_ms` does, so the
numbers agree with `stsched.timing` and the checker.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from stsched.checker import cycle_rate, gpu_memory_limit_mb, memory_limit_mb, tolerant_limit
from stsched.queueing import max_rate, slack_cycles
from stsched import layouts
from stsched.heuristic.options import HeuristicOptions
from stsched.interference import Features, get_form
from stsched.problem import Instance, MechanismKind, ThroughputRule
from stsched.timing import features as timing_features
from stsched.timing import slowdown as timing_slowdown

class TimeUp(Exception):
    """The time limit passed inside a construction (the solver keeps the best plan it had, if any)."""


PointKey = tuple[int, float, int]  # (service index, partition size, processes)
MEMO_LIMIT = 200_000  # entries of `Context.memo` (a few tens of MB at most)


@dataclass
class Context:
    """What the heuristic knows about one instance (rates excluded: they change under max-scale and adapt)."""

    instance: Instance
    opts: HeuristicOptions
    names: list[str]
    index: dict[str, int]
    budget: list[float]  # latency budget (slo * slo_factor) per service
    #: per service, the latency the checker accepts (`stsched.checker.tolerant_limit` of its budget): every latency
    #: test of the heuristic compares with it (a stricter 1e-12 / 1e-9 called services on that edge infeasible)
    limit: list[float]
    batches: list[int]
    credit: list[float]  # per batch index: requests per cycle a tenant is credited with (`Margin.credit`)
    sizes: list[float]  # allowed partition sizes, ascending
    procs: list[int]
    measured: bool  # measured throughput rule
    mig: bool
    capacity: float
    exec_ms: dict[PointKey, list[float | None]]  # solo execution time per batch index (latency factor applied)
    mlat: dict[PointKey, list[float | None]]  # measured throughput x measured latency per batch index (or None)
    mem: dict[PointKey, list[float]]  # memory of one tenant per batch index (processes x weights+activations)
    feasible_batches: dict[PointKey, list[int]]  # batch indices with 2 x solo <= limit
    cap1: np.ndarray  # [service, size index] best single-tenant saturated capacity (req/s), 0 if none
    best_point: dict[tuple[int, int], tuple[int, int]]  # (service, size index) -> (batch index, procs) of cap1
    eff: np.ndarray  # [service] best capacity per unit of partition size (0: cannot be served)
    knee: list[float]  # per service: the largest size within knee_tolerance of its best efficiency
    layouts: list[tuple[float, ...]]  # candidate layouts (sizes descending), legal for the mechanism
    interference: bool  # False when the form can never slow anything down
    form_needs_features: bool
    capc: np.ndarray | None = None  # [service, size index] one process, cycle rule: a time-shared tenant's rate
    #: per service, the rate its tenants' shares are taken of under the Poisson margin (None: every tenant is
    #: credited as if it received the whole stream, share 1: max-scale and adapt, whose rates differ)
    share_of: list[float] | None = None
    servable: np.ndarray | None = None  # ascending indices of the services with eff > 0 (what constructions place)
    suffix_cache: dict = field(default_factory=dict)
    deadline: float = math.inf  # the solve's time limit (perf_counter); constructions stop there (`TimeUp`)
    memo: dict = field(default_factory=dict)  # pure evaluations keyed by their exact inputs (`remember`)
    _feat: dict = field(default_factory=dict)
    _slow: dict = field(default_factory=dict)

    def tick(self) -> None:
        """Raise `TimeUp` once the solve's time limit has passed (checked once per GPU or partition placed)."""
        if time.perf_counter() > self.deadline:
            raise TimeUp

    # ------------------------------------------------------------------------------------------- lookups
    def size_index(self, size: float) -> int:
        for j, s in enumerate(self.sizes):
            if abs(s - size) <= 1e-9:
                return j
        raise KeyError(size)

    def slice_memory(self, size: float) -> float | None:
        """A MIG slice's memory limit (`stsched.checker.memory_limit_mb`); None elsewhere (the GPU's is shared)."""
        return memory_limit_mb(self.instance, size) if self.instance.mechanism.kind is MechanismKind.MIG else None

    def gpu_memory(self) -> float:
        return gpu_memory_limit_mb(self.instance)

    def partition_memory(self, size: float, procs: int, tenants: list[tuple[int, int]]) -> float:
        """Memory of a partition: processes x context, plus every tenant (service, batch index)."""
        need = self.instance.device.context_mb * procs
        for i, bi in tenants:
            need += self.mem[(i, size, procs)][bi]
        return need

    def suffix_min(self, i: int, size: float, procs: int) -> float:
        """The shortest solo execution time of service i at this size (inf when unprofiled)."""
        key = ("min", i, size, procs)
        hit = self.suffix_cache.get(key)
        if hit is None:
            ex = [e for e in self.exec_ms.get((i, size, procs), ()) if e is not None]
            hit = self.suffix_cache[key] = min(ex) if ex else float("inf")
        return hit

    def solo_row(self, i: int) -> np.ndarray:
        """Service i's shortest one-process execution time per size index (inf where it has no point; cached,
        read only)."""
        key = ("solo-row", i)
        hit = self.suffix_cache.get(key)
        if hit is None:
            hit = self.suffix_cache[key] = np.array([self.suffix_min(i, s, 1) for s in self.sizes])
        return hit

    def remember(self, key, value):
        """Store a pure evaluation in `memo` (emptied when it reaches MEMO_LIMIT entries) and return it."""
        if len(self.memo) >= MEMO_LIMIT:
            self.memo.clear()
        self.memo[key] = value
        return value

    # ------------------------------------------------------------------------------------------- interference
    def features(self, i: int, size: float, procs: int, bi: int) -> Features | None:
        """The checker's interference features of a tenant (`stsched.timing.features`), cached."""
        key = (i, size, procs, bi)
        if key not in self._feat:
            self._feat[key] = timing_features(self.instance, self.names[i], self.batches[bi], size, procs)
        return self._feat[key]

    def neighbour_features(self, members: tuple[tuple[int, float, int], ...]) -> list[Features]:
        """Features of every tenant of a partition at every batch it may run (the conservative superset)."""
        out = []
        for i, size, procs in members:
            for bi in self.feasible_batches.get((i, size, procs), ()):
                f = self.features(i, size, procs, bi)
                if f is not None:
                    out.append(f)
        return out

    def slowdowns(self, i: int, size: float, procs: int,
                  neighbours: tuple[tuple[tuple[int, float, int], ...], ...]) -> list[float] | None:
        """Worst-case slowdown of service i per batch index, given the tenants of the other partitions.

        The neighbours' batches are not fixed yet, so every batch they may legally run is assumed: the slowdown is
        the checker's (`stsched.timing.slowdown`) over a superset of what will run, an upper bound on the checker's
        value whatever batches are chosen later.  None means no slowdown at all.
        """
        if not self.interference:
            return None
        key = (i, size, procs, neighbours)
        hit = self._slow.get(key)
        if hit is not None or key in self._slow:
            return hit
        groups = [self.neighbour_features(m) for m in neighbours]
        groups = [g for g in groups if g]
        out: list[float] | None = None
        if groups or not self.form_needs_features:
            vals = [timing_slowdown(self.instance, self.features(i, size, procs, bi), groups)
                    for bi in range(len(self.batches))]
            if any(v > 1.0 for v in vals):
                out = vals
        self._slow[key] = out
        return out


def build_context(instance: Instance, opts: HeuristicOptions, share_of: list[float] | None = None) -> Context:
    """Precompute operating points, capacities, knees and candidate layouts of `instance` (`share_of`: see
    `Context.share_of`)."""
    opts = opts.effective(len(instance.services))
    mech = instance.mechanism
    names = list(instance.service_names)
    index = {n: i for i, n in enumerate(names)}
    batches = sorted(set(instance.batches))
    credit = [instance.margin.credit(b) for b in batches]
    sizes = sorted(float(s) for s in mech.sizes)
    procs = list(instance.procs_options())
    measured = instance.throughput_rule is ThroughputRule.MEASURED
    mig = mech.kind is MechanismKind.MIG
    lf = instance.margin.latency_factor
    budget = [instance.slo_budget_ms(n) for n in names]
    slo_limit = [float(tolerant_limit(b)) for b in budget]
    dev = instance.device
    exec_ms: dict[PointKey, list[float | None]] = {}
    mlat: dict[PointKey, list[float | None]] = {}
    mem: dict[PointKey, list[float]] = {}
    feas: dict[PointKey, list[int]] = {}
    n, m = len(names), len(sizes)
    cap1 = np.zeros((n, m))
    capc = np.zeros((n, m))
    best_point: dict[tuple[int, int], tuple[int, int]] = {}
    points: dict[tuple[str, float, int], tuple[list[float | None], list[float | None]]] = {}
    # (a MIG slice without a memory in its table: limited to the GPU's, a restriction of the checker's no limit)
    limits = [gpu_memory_limit_mb(instance) if (lim := memory_limit_mb(instance, size)) is None else lim
              for size in sizes]
    rates: dict[tuple[str, float, int], list[float | None]] = {}  # per point: cycle_rate(credit, e), no service
    for i, name in enumerate(names):
        svc = instance.service(name)
        table = instance.table(svc.model)
        mms = {k: [k * svc.memory_for(b) for b in batches] for k in procs}  # the same at every size
        for j, size in enumerate(sizes):
            limit = limits[j]
            for k in procs:
                # the table's points depend on the model only: looked up once per (model, size, procs)
                hit = points.get((svc.model, size, k))
                if hit is None:
                    hit = points[(svc.model, size, k)] = _table_points(table, batches, credit, size, k, lf, measured)
                    rates[(svc.model, size, k)] = [None if e is None else cycle_rate(credit[bi], e)
                                                   for bi, e in enumerate(hit[0])]
                ex = list(hit[0])
                ml = list(hit[1])
                rate1 = rates[(svc.model, size, k)]
                mm = list(mms[k])
                ok: list[int] = []
                for bi, b in enumerate(batches):
                    e = ex[bi]
                    if e is not None and 2 * e <= slo_limit[i]:
                        ok.append(bi)
                        if not layouts.fits(dev.context_mb * k + mm[bi], limit):  # (the checker's memory rule)
                            continue
                        one = rate1[bi]
                        if k == 1 and instance.margin.late_share:  # the Poisson margin's per-tenant credit, d = e
                            # at share 1 (valid for every share): a capacity per unit of partition, never below the
                            # per-batch credit's; with a known service rate also the share-aware cap, which never
                            # exceeds that rate (so alone it would make a light service's points look inefficient)
                            cycles = slack_cycles(budget[i], e, e)
                            one = max_rate(b, instance.margin.late_share, cycles, e, 0.0)
                            if share_of is not None and share_of[i] > 0:
                                one = max(one, max_rate(b, instance.margin.late_share, cycles, e, share_of[i]))
                        if k == 1:
                            capc[i, j] = max(capc[i, j], one)
                        c = k * ml[bi] / e if ml[bi] is not None else (
                            one if k == 1 else cycle_rate(credit[bi], e, k))
                        if c > cap1[i, j]:
                            cap1[i, j] = c
                            best_point[(i, j)] = (bi, k)
                exec_ms[(i, size, k)] = ex
                mlat[(i, size, k)] = ml
                mem[(i, size, k)] = mm
                feas[(i, size, k)] = ok
    per_unit = cap1 / np.array(sizes)[None, :]
    eff = per_unit.max(axis=1) if m else np.zeros(n)
    knee = []
    for i in range(n):
        good = [sizes[j] for j in range(m) if eff[i] > 0 and per_unit[i, j] >= (1 - opts.knee_tolerance) * eff[i]]
        knee.append(max(good) if good else sizes[-1])
    form = get_form(instance.interference.form)
    ctx = Context(instance, opts, names, index, budget, slo_limit, batches, credit, sizes, procs, measured, mig,
                  mech.capacity, exec_ms, mlat, mem, feas, cap1, best_point, eff, knee, [],
                  instance.interference.form != "none", form.needs_features)
    ctx.capc = capc
    ctx.share_of = share_of
    ctx.servable = np.flatnonzero(eff > 0)
    ctx.layouts = enumerate_layouts(ctx)
    return ctx


def _table_points(table, batches: list[int], credit: list[float], size: float, k: int, lf: float,
                  measured: bool) -> tuple[list[float | None], list[float | None]]:
    """Per batch index: the solo execution time (latency factor applied) and, under the measured rule, measured
    throughput x latency x credit / batch (None where unprofiled or not measured)."""
    ex: list[float | None] = []
    ml: list[float | None] = []
    for bi, b in enumerate(batches):
        e = table.get(b, size, k)
        if e is None:
            ex.append(None)
            ml.append(None)
        else:
            ex.append(e.latency_ms * lf)
            ml.append(e.latency_ms * e.throughput_rps * credit[bi] / b if measured and e.throughput_rps else None)
    return ex, ml


def candidate_sizes(ctx: Context) -> list[float]:
    """All sizes, or for mechanisms with many sizes: the knees, their complements and the whole GPU."""
    sizes = ctx.sizes
    if len(sizes) <= ctx.opts.max_sizes:
        return list(sizes)
    cap = ctx.capacity
    chosen: list[float] = [max(sizes)]
    counts: dict[float, int] = {}
    for k in ctx.knee:
        counts[k] = counts.get(k, 0) + 1
    for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], -kv[0])):
        for s in (k, _largest_at_most(sizes, cap - k)):
            if s is not None and s not in chosen and len(chosen) < ctx.opts.max_sizes:
                chosen.append(s)
    return sorted(chosen)


def _largest_at_most(sizes: list[float], x: float) -> float | None:
    fit = [s for s in sizes if s <= x + 1e-9]
    return max(fit) if fit else None


_LAYOUT_CACHE: dict[tuple, list[tuple[float, ...]]] = {}


def enumerate_layouts(ctx: Context) -> list[tuple[float, ...]]:
    key = (ctx.instance.mechanism, tuple(candidate_sizes(ctx)), ctx.opts.max_layout_partitions, ctx.interference)
    if key not in _LAYOUT_CACHE:
        _LAYOUT_CACHE[key] = _enumerate_layouts(ctx)
    return list(_LAYOUT_CACHE[key])


def _enumerate_layouts(ctx: Context) -> list[tuple[float, ...]]:
    """Legal layouts (multisets of sizes, descending) built from the candidate sizes.

    A partition left empty is dropped from the plan, so only maximal layouts are needed when nothing slows its
    neighbours down; with interference the smaller layouts are kept too (an extra partition can cost more than it
    serves).
    """
    mech = ctx.instance.mechanism
    sizes = sorted(candidate_sizes(ctx), reverse=True)
    limit = min(ctx.opts.max_layout_partitions, mech.max_partitions or ctx.opts.max_layout_partitions)
    out: list[tuple[float, ...]] = []
    for count in range(1, limit + 1):
        for combo in itertools.combinations_with_replacement(sizes, count):
            if legal_layout(ctx, combo):
                out.append(tuple(combo))
    if not ctx.interference:
        out = [l for l in out if not any(legal_layout(ctx, tuple(sorted(l + (s,), reverse=True)))
                                         for s in sizes if len(l) < limit)]
    return sorted(out, key=lambda l: (len(l), tuple(-s for s in l)))


def legal_layout(ctx: Context, sizes: tuple[float, ...]) -> bool:
    return layouts.legal_layout(ctx.instance, sizes)