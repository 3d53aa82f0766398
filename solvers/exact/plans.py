"""Between the exact models' counts and Plans: the `Counts` an engine returns, the warm start mapped into a model,
a greedy start, and the extraction of a Plan (configurations per GPU, MIG starts, rate split).  Used by
solvers.exact; no engine code here.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from solvers.exact.patterns import Config, ModelData, _Timer
from stsched.layouts import enumerate_layouts, mig_starts
from stsched.checker import tenant_capacity
from stsched.plan import GpuLayout, Partition, Plan
from stsched.problem import Instance, MechanismKind
from stsched.registry import Objective
from stsched.timing import gpu_timings


@dataclass(frozen=True)
class Counts:
    """An incumbent in model terms (which fields are set depends on the formulation)."""

    layouts: dict[int, int] = field(default_factory=dict)  # slots: GPUs per layout
    configs: dict[int, int] = field(default_factory=dict)  # slots: partitions per configuration
    patterns: dict[int, int] = field(default_factory=dict)  # patterns: GPUs per pattern
    per_gpu: tuple[tuple[int | None, dict[int, int]], ...] = ()  # indexed: (layout, configuration counts) per GPU
    alpha: float | None = None  # max-scale


# ------------------------------------------------------------------------------------------------- warm start
def _gpu_caps(instance: Instance, gpu: GpuLayout) -> list[list[float]] | None:
    """Capacity of every tenant of a GPU of a plan, with the checker's timing."""
    out = []
    for p, times in zip(gpu.partitions, gpu_timings(instance, gpu)):
        if any(t.exec_ms is None for t in times):
            return None
        d = sum(t.exec_ms for t in times)
        out.append([tenant_capacity(instance, t.service, tn.batch, p.size, p.procs, t.exec_ms, d, len(times))
                    for tn, t in zip(p.tenants, times)])
    return out


def _match_config(data: ModelData, p: Partition, caps: list[float]) -> int | None:
    index = {n: i for i, n in enumerate(data.names)}
    want = {index[t.service]: min(c, data.clip_alpha * data.rates[index[t.service]]) for t, c in zip(p.tenants, caps)}
    best = None
    for ci, c in enumerate(data.configs):
        if c.size != p.size or {s for s, _ in c.tenants} != set(want):
            continue
        cov = {s: min(cap, data.clip_alpha * data.rates[s]) for (s, _), cap in zip(c.tenants, c.cap)}
        if all(cov[s] >= want[s] * (1 - 1e-9) for s in want):
            best = ci
            break
    return best


def warm_counts(data: ModelData, plan: Plan) -> Counts | None:
    """The warm plan in model terms (a configuration at least as good for every partition), or None."""
    inst = data.instance
    gpus = [g for g in plan.gpus if g.used]
    if data.formulation == "patterns":
        pats = np.array([[min(t, data.clip_alpha * r) for t, r in zip(p.total, data.rates)] for p in data.patterns])
        counts: dict[int, int] = {}
        for g in gpus:
            caps = _gpu_caps(inst, g)
            if caps is None:
                return None
            vec = np.zeros(len(data.names))
            for p, cs in zip(g.partitions, caps):
                for t, c in zip(p.tenants, cs):
                    vec[data.names.index(t.service)] += c
            vec = np.minimum(vec, data.clip_alpha * np.array(data.rates))
            ok = np.where(np.all(pats >= vec * (1 - 1e-9), axis=1))[0]
            if len(ok) == 0:
                return None
            counts[int(ok[0])] = counts.get(int(ok[0]), 0) + 1
        return Counts(patterns=counts, alpha=_alpha_of(data, [data.patterns[i].configs for i, n in counts.items()
                                                               for _ in range(n)]))
    per_gpu = []
    for g in gpus:
        # the checker's timing: no slowdown is larger than the model's (solo exact, or worst case)
        caps = [[c for c in row] for row in (_solo_caps(data, g) or [])]
        if not caps and g.partitions:
            return None
        cfgs: dict[int, int] = {}
        for p, cs in zip(g.partitions, caps):
            if not p.tenants:
                continue
            ci = _match_config(data, p, cs)
            if ci is None:
                return None
            cfgs[ci] = cfgs.get(ci, 0) + 1
        sizes = sorted((data.configs[ci].size for ci, n in cfgs.items() for _ in range(n)), reverse=True)
        li = next((i for i, L in enumerate(data.layouts) if _contains(L, sizes)), None)
        if li is None:
            return None
        per_gpu.append((li, cfgs))
    return _counts_of(data, per_gpu)


def _counts_of(data: ModelData, per_gpu: list[tuple[int, dict[int, int]]]) -> Counts:
    """Counts (layouts, configurations, per GPU, alpha) of GPUs given as (layout, configuration counts)."""
    lay: dict[int, int] = {}
    cfg: dict[int, int] = {}
    for li, cs in per_gpu:
        lay[li] = lay.get(li, 0) + 1
        for ci, n in cs.items():
            cfg[ci] = cfg.get(ci, 0) + n
    alpha = _alpha_of(data, [[data.configs[ci] for ci, n in cs.items() for _ in range(n)] for _, cs in per_gpu])
    return Counts(layouts=lay, configs=cfg, per_gpu=tuple(per_gpu), alpha=alpha)


def _solo_caps(data: ModelData, g: GpuLayout) -> list[list[float]] | None:
    """Capacities of a plan's GPU as the model would time it (solo or conservative, no company)."""
    inst = data.instance
    timer = _Timer(inst, conservative=data.conservative, layouts=enumerate_layouts(inst, False, 10 ** 6))
    out = []
    for p in g.partitions:
        es = [timer.exec_ms(t.service, t.batch, p.size, p.procs) for t in p.tenants]
        if any(e is None for e in es):
            return None
        d = sum(es)
        out.append([tenant_capacity(inst, t.service, t.batch, p.size, p.procs, e, d, len(es))
                    for t, e in zip(p.tenants, es)])
    return out


def _contains(big: tuple[float, ...], small: list[float]) -> bool:
    rest = list(big)
    for s in small:
        if s not in rest:
            return False
        rest.remove(s)
    return True


def _alpha_of(data: ModelData, gpus: list) -> float:
    cov = [0.0] * len(data.names)
    for cfgs in gpus:
        for c in cfgs:
            for s, v in data.config_coverage(c).items():
                cov[s] += v
    vals = [min(cov[s], data.clip_alpha) for s, r in enumerate(data.rates) if r > 0]
    return min(vals) if vals else data.clip_alpha


def greedy_counts(data: ModelData, objective: Objective) -> Counts:
    """A cheap start in model terms, so that no engine starts empty-handed.  min-gpus: each service covered by copies
    of its most capacity-efficient one-tenant configuration; max-scale: each service once, in its smallest
    configuration.  Configurations are packed into layouts greedily (patterns: the most useful pattern is taken
    repeatedly).  An empty `Counts` when that fails; it may use more than G GPUs (then it is not used)."""
    active = [s for s, r in enumerate(data.rates) if r > 0]
    maxi = objective is Objective.MAX_SCALE
    if data.formulation == "patterns":
        rem = {s: 1.0 for s in active}
        counts: dict[int, int] = {}
        covs = [data.pattern_coverage(p) for p in data.patterns]
        while any(v > 1e-9 for v in rem.values()):
            gains = [sum(min(rem[s], 1e-6 if maxi else c) for s, c in cov.items() if s in rem) for cov in covs]
            best = int(np.argmax(gains)) if gains else -1
            if best < 0 or gains[best] <= 1e-12:
                return Counts()
            counts[best] = counts.get(best, 0) + 1
            for s, c in covs[best].items():
                rem[s] = rem.get(s, 0.0) - (1.0 if maxi else c)
        gpus = [data.patterns[i].configs for i, n in counts.items() for _ in range(n)]
        return Counts(patterns=counts, alpha=_alpha_of(data, gpus) if maxi else None)
    own_of: dict[int, list[tuple[float, float, int]]] = {}  # each one-tenant configuration's coverage computed once
    for ci, c in enumerate(data.configs):  # (per service it cost services x configurations: 10 s at 1,024 services)
        if len(c.tenants) == 1:
            for s, cov in data.config_coverage(c).items():
                if cov > 0:
                    own_of.setdefault(s, []).append((-c.size if maxi else cov / c.size, cov, ci))
    pending: list[int] = []
    for s in active:
        own = own_of.get(s)
        if not own:
            return Counts()
        _, cov, ci = max(own)
        pending += [ci] * (1 if maxi else math.ceil(1.0 / cov - 1e-9))
    per_gpu = _pack(data, pending)
    if per_gpu is None:
        return Counts()
    counts = _counts_of(data, per_gpu)
    return counts if maxi else replace(counts, alpha=None)


def _pack(data: ModelData, pending: list[int]) -> list[tuple[int, dict[int, int]]] | None:
    """Configurations into GPUs: repeatedly the layout that hosts the most capacity of what is left."""
    pending = list(pending)
    per_gpu = []
    while pending:
        best, best_fill = None, 0.0
        largest_first = sorted(pending, key=lambda i: -data.configs[i].size)  # once per GPU, not per layout
        for li, L in enumerate(data.layouts):
            free, taken = list(L), []
            for ci in largest_first:
                if data.configs[ci].size in free:
                    free.remove(data.configs[ci].size)
                    taken.append(ci)
            fill = sum(data.configs[ci].size for ci in taken)
            if fill > best_fill:
                best, best_fill = (li, taken), fill
        if best is None:
            return None
        li, taken = best
        cs: dict[int, int] = {}
        for ci in taken:
            pending.remove(ci)
            cs[ci] = cs.get(ci, 0) + 1
        per_gpu.append((li, cs))
    return per_gpu


def _gpus_in(data: ModelData, c: Counts) -> int:
    if data.formulation == "patterns":
        return sum(c.patterns.values())
    return len(c.per_gpu) if data.formulation == "indexed" else sum(c.layouts.values())


# ------------------------------------------------------------------------------------------------- extraction
def gpus_of(data: ModelData, counts: Counts) -> list[list[Config]]:
    """The configurations on each GPU of an incumbent."""
    if data.formulation == "patterns":
        return [list(data.patterns[i].configs) for i, n in sorted(counts.patterns.items()) for _ in range(n)]
    if data.formulation == "indexed":
        return [[data.configs[ci] for ci, n in sorted(cs.items()) for _ in range(n)] for _, cs in counts.per_gpu]
    free: dict[float, deque[int]] = {}  # per size, the GPUs with a free slot of it, first come first served
    gpus: list[list[Config]] = []
    for li, n in sorted(counts.layouts.items()):
        for _ in range(n):
            gpus.append([])
            for s in data.layouts[li]:
                free.setdefault(s, deque()).append(len(gpus) - 1)
    for ci, n in sorted(counts.configs.items()):
        c = data.configs[ci]
        for _ in range(n):
            slots = free.get(c.size)
            if not slots:
                raise RuntimeError(f"model inconsistency: no free slot of size {c.size:g}")
            gpus[slots.popleft()].append(c)
    return gpus


def to_plan(data: ModelData, gpus: list[list[Config]], objective: Objective, solver: str) -> Plan:
    """A Plan from configurations per GPU: every service's demand split over its partitions in proportion to their
    capacity (so no partition exceeds its own); max-scale alpha is what the capacities actually cover."""
    gpus = [g for g in gpus if g]
    total = [0.0] * len(data.names)
    for g in gpus:
        for c in g:
            for (s, _), cap in zip(c.tenants, c.cap):
                total[s] += cap
    if objective is Objective.MAX_SCALE:
        alpha = min((total[s] / r for s, r in enumerate(data.rates) if r > 0), default=1.0)
    else:
        alpha = 1.0
    layouts = []
    for g in gpus:
        starts = mig_starts(data.instance, [c.size for c in g]) if data.instance.mechanism.kind is MechanismKind.MIG \
            else [None] * len(g)
        parts = []
        for c, st in zip(g, starts):
            rates = [alpha * data.rates[s] * cap / total[s] if total[s] > 0 else 0.0
                     for (s, _), cap in zip(c.tenants, c.cap)]
            parts.append(c.partition(data.names, rates, st))
        layouts.append(GpuLayout(tuple(parts)))
    return Plan(tuple(layouts), scale=alpha, solver=solver)


def counts_from(data: ModelData, v, val: Callable[[object], int], alpha: float | None) -> Counts:
    """The counts of a solved model of either engine: `v` holds its variables (`y`, `x` of the patterns and slots
    formulations; `u`, `xg` of the indexed one) and `val` reads one as an integer."""
    if data.formulation == "patterns":
        return Counts(patterns={i: val(x) for i, x in v.y.items() if val(x) > 0}, alpha=alpha)
    if data.formulation == "slots":
        return Counts(layouts={i: val(x) for i, x in v.y.items() if val(x) > 0},
                      configs={i: val(x) for i, x in v.x.items() if val(x) > 0}, alpha=alpha)
    per_gpu = []
    for g in range(data.instance.gpus):
        li = next((li for li in range(len(data.layouts)) if val(v.u[g, li]) == 1), None)
        cs = {ci: val(v.xg[g, ci]) for ci in range(len(data.configs)) if val(v.xg[g, ci]) > 0}
        if li is not None or cs:
            per_gpu.append((li, cs))
    return Counts(per_gpu=tuple(per_gpu), alpha=alpha)
