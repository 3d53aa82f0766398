"""The heuristic's working state (mutable GPUs and partitions), its evaluation with interference, and the
conversion to and from the frozen `Plan`.

Interference is evaluated with the checker's own function (`stsched.timing.slowdown`) on a superset of what will
run: every tenant of every other partition at every batch it may legally use (`Context.slowdowns`).  The slowdown a
plan meets in the checker is therefore never larger than the one it was fitted with, whatever batches the
neighbours end up with, and the duty cycle is written into the plan explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stsched.checker import find_mig_starts
from stsched.heuristic.fit import EPS, Fit, fit_partition, headroom
from stsched.heuristic.model import Context
from stsched.layouts import fits
from stsched.plan import GpuLayout, Partition, Plan, Tenant


@dataclass
class WPart:
    """A partition under construction: size, processes, tenants [[service index, rate]], its fit."""

    size: float
    procs: int = 1
    tenants: list[list] = field(default_factory=list)
    start: int | None = None
    fit: Fit | None = None
    slows: list | None = None
    given: tuple | None = None  # (duty, batches, rates) kept from a plan in force (adapt), valid while unchanged

    def members(self) -> tuple[tuple[int, float, int], ...]:
        return tuple(sorted((t[0], self.size, self.procs) for t in self.tenants))

    def pairs(self) -> list[tuple[int, float]]:
        return [(t[0], t[1]) for t in self.tenants]

    def has(self, i: int) -> int:
        for pos, t in enumerate(self.tenants):
            if t[0] == i:
                return pos
        return -1


@dataclass
class WGpu:
    parts: list[WPart] = field(default_factory=list)

    @property
    def used(self) -> bool:
        return any(p.tenants for p in self.parts)

    def sizes(self) -> tuple[float, ...]:
        return tuple(sorted((p.size for p in self.parts if p.tenants), reverse=True))

    def load(self, ctx: Context) -> float:
        """Served work in capacity units at every service's best efficiency (the LP's measure)."""
        return sum(t[1] / ctx.eff[t[0]] for p in self.parts for t in p.tenants if ctx.eff[t[0]] > 0)

    def served(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for p in self.parts:
            for i, r in p.tenants:
                out[i] = out.get(i, 0.0) + r
        return out


def clone_part(p: WPart) -> WPart:
    """A copy whose tenant list can be changed (fits, slowdowns and kept points are immutable and shared)."""
    return WPart(p.size, p.procs, [[i, r] for i, r in p.tenants], p.start, p.fit, p.slows, p.given)


def clone(gpus: list[WGpu]) -> list[WGpu]:
    return [WGpu([clone_part(p) for p in g.parts]) for g in gpus]


def neighbours_of(gpu: WGpu, q: int) -> tuple:
    return tuple(sorted(p.members() for k, p in enumerate(gpu.parts) if k != q and p.tenants))


def part_slows(ctx: Context, gpu: WGpu, q: int) -> list:
    p = gpu.parts[q]
    if not ctx.interference:
        return [None] * len(p.tenants)
    nb = neighbours_of(gpu, q)
    return [ctx.slowdowns(t[0], p.size, p.procs, nb) for t in p.tenants]


def gpu_memory_ok(ctx: Context, gpu: WGpu) -> bool:
    if ctx.mig:
        return True  # per slice, checked in every fit
    need = 0.0
    for p in gpu.parts:
        if not p.tenants:
            continue
        if p.given is not None:  # a kept operating point: its batches as given
            svc = ctx.instance.service
            need += ctx.instance.device.context_mb * p.procs + sum(
                p.procs * svc(ctx.names[i]).memory_for(b) for (i, _), b in zip(p.tenants, p.given[1]))
            continue
        if p.fit is None:
            return False
        need += ctx.partition_memory(p.size, p.procs, list(zip((t[0] for t in p.tenants), p.fit.batch_idx)))
    return fits(need, ctx.gpu_memory())  # (the checker's memory rule)


def refit_part(ctx: Context, gpu: WGpu, q: int) -> bool:
    p = gpu.parts[q]
    if p.given is not None and _given_holds(p):
        return True
    p.given = None
    p.slows = part_slows(ctx, gpu, q)
    p.fit = fit_partition(ctx, p.size, p.procs, p.pairs(), p.slows)
    return p.fit is not None


def _given_holds(p: WPart) -> bool:
    duty, batches, rates = p.given
    return (len(rates) == len(p.tenants)
            and all(t[0] == i and t[1] <= r * (1 + EPS) for t, (i, r) in zip(p.tenants, rates)))


def refit_gpu(ctx: Context, gpu: WGpu) -> bool:
    """Fit every partition of a GPU at its current rates; False when one cannot be fitted."""
    if any(p.given is not None and not _given_holds(p) for p in gpu.parts):
        for p in gpu.parts:  # a neighbour's batches move: kept operating points no longer hold
            p.given = None
    for q in range(len(gpu.parts)):
        if gpu.parts[q].tenants and not refit_part(ctx, gpu, q):
            return False
    return gpu_memory_ok(ctx, gpu)


def scale_down(ctx: Context, gpus: list[WGpu], demand: np.ndarray) -> dict[int, float]:
    """Scale every service's tenants down to its new demand; returns the demand still unserved per service."""
    served: dict[int, float] = {}
    for g in gpus:
        for i, r in g.served().items():
            served[i] = served.get(i, 0.0) + r
    for g in gpus:
        for p in g.parts:
            for t in p.tenants:
                s = served.get(t[0], 0.0)
                if s > demand[t[0]]:
                    t[1] *= demand[t[0]] / s
    return {i: float(demand[i] - served.get(i, 0.0)) for i in range(len(demand))
            if demand[i] - served.get(i, 0.0) > EPS * max(1.0, demand[i])}


def tenant_headroom(ctx: Context, gpu: WGpu, q: int, pos: int) -> float:
    """Largest rate of tenant `pos` of partition q with the GPU's tenant sets and the other rates unchanged."""
    p = gpu.parts[q]
    if p.given is not None and _given_holds(p):
        return max(p.tenants[pos][1], p.given[2][pos][1])
    p.given = None
    if p.slows is None or len(p.slows) != len(p.tenants):
        p.slows = part_slows(ctx, gpu, q)
    return headroom(ctx, p.size, p.procs, p.pairs(), p.slows, pos)


def realize_gpu(ctx: Context, gpu: WGpu) -> bool:
    """Fit a GPU whose rates were chosen without interference, lowering rates where a partition cannot hold
    them (each tenant in turn gets at most its headroom).  Drops tenants left at rate 0."""
    if refit_gpu(ctx, gpu):
        return True
    for q, p in enumerate(gpu.parts):
        if not p.tenants:
            continue
        p.slows = part_slows(ctx, gpu, q)
        if fit_partition(ctx, p.size, p.procs, p.pairs(), p.slows) is not None:
            continue
        want = [t[1] for t in p.tenants]
        for t in p.tenants:
            t[1] = 0.0
        for pos, w in enumerate(want):
            p.tenants[pos][1] = min(w, headroom(ctx, p.size, p.procs, p.pairs(), p.slows, pos))
    for p in gpu.parts:
        p.tenants = [t for t in p.tenants if t[1] > 0]
    gpu.parts = [p for p in gpu.parts if p.tenants]
    while not refit_gpu(ctx, gpu):  # memory: drop the smallest tenant until the GPU fits
        smallest = min(((q, pos) for q, p in enumerate(gpu.parts) for pos in range(len(p.tenants))),
                       key=lambda qp: gpu.parts[qp[0]].tenants[qp[1]][1], default=None)
        if smallest is None:
            return False
        del gpu.parts[smallest[0]].tenants[smallest[1]]
        gpu.parts = [p for p in gpu.parts if p.tenants]
    return True


def to_plan(ctx: Context, gpus: list[WGpu], scale: float = 1.0, solver: str = "heuristic", notes: str = "",
            keep_empty: bool = False) -> Plan:
    """The frozen plan of a fitted state (every partition's duty cycle written explicitly)."""
    out = []
    for g in gpus:
        parts = []
        for p in g.parts:
            if not p.tenants:
                continue
            if p.given is not None:
                duty, batches, _ = p.given
                tenants = tuple(Tenant(ctx.names[i], b, r) for (i, r), b in zip(p.tenants, batches))
            else:
                duty = p.fit.duty
                tenants = tuple(Tenant(ctx.names[i], ctx.batches[bi], r) for (i, r), bi in zip(p.tenants,
                                                                                             p.fit.batch_idx))
            parts.append(Partition(p.size, tenants, duty if duty and duty > 0 else None, p.procs, p.start))
        if ctx.mig and parts and any(p.start is None for p in parts):
            starts = find_mig_starts(ctx.instance.mechanism.placements, tuple(parts))
            if starts is not None:
                parts = [Partition(p.size, p.tenants, p.duty_ms, p.procs, s) for p, s in zip(parts, starts)]
        if parts or keep_empty:
            out.append(GpuLayout(tuple(parts)))
    return Plan(tuple(out), scale=scale, solver=solver, notes=notes)


def from_plan(ctx: Context, plan: Plan) -> list[WGpu]:
    """Working state of a plan in force; tenants of unknown services are dropped, operating points are kept."""
    gpus = []
    for g in plan.gpus:
        parts = []
        for p in g.partitions:
            tenants = [[ctx.index[t.service], float(t.rate)] for t in p.tenants if t.service in ctx.index]
            batches = [t.batch for t in p.tenants if t.service in ctx.index]
            wp = WPart(float(p.size), p.procs, tenants, p.start)
            if tenants and len(tenants) == len(p.tenants):
                wp.given = (p.duty_ms, tuple(batches), tuple((t[0], t[1]) for t in tenants))
            parts.append(wp)
        gpus.append(WGpu(parts))
    return gpus
