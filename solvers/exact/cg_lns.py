"""A large-neighbourhood search around a min-gpus plan: free a few GPUs, re-solve what they served, keep the rest.

One move: `free` GPUs of the plan are chosen (at random, weighted by their idle capacity: the partition share their
tenants leave unused, max over tenants of planned rate / capacity, plus the capacity no partition holds); every
service with a tenant on them keeps what the other GPUs serve it (their tenants' planned rates) and the rest of its
rate, `rest_s`, forms a sub-instance (the same device and rules, those services at rates rest_s).  The freed GPUs,
tenants of services with nothing left removed, are a valid plan of it; `solve_sub(sub, warm, limit)` (the caller's:
the configuration LP of the sub-instance by column generation, then an integer master over its columns, warm-started)
may find one with fewer GPUs, which then replaces them.  Every GPU of a plan is judged alone (interference acts within
a GPU), so the merged plan is valid when both parts are; the checker judges it anyway before it is kept.

A sub-problem whose bound (the caller's, e.g. the rounded configuration LP) already needs as many GPUs as it frees is
skipped at once: no plan of it is better.  `pool_columns` gives a sub-problem the columns the whole instance's column
generation priced (those under the rounding cuts included) that touch its services, re-indexed, with the tenants
of other services dropped (`lns_pool`, issue 17 session 18; under the measured throughput rule not those cut to one
tenant from several).  Moves stop at the deadline, after `moves` moves, at a plan of the bound's
GPUs, or when two draws in a row give sets of GPUs already tried (a small plan: freeing all of it is one move).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from typing import Callable

from solvers.exact.plans import _gpu_caps
from stsched.checker import check
from stsched.plan import GpuLayout, Plan
from stsched.problem import Instance

log = logging.getLogger(__name__)

REST_TOL = 1e-9  # a rest below this share of the rate is nothing


@dataclass(frozen=True)
class LnsOptions:
    """`free`: GPUs freed per move; `moves`: moves at most (a work limit; 0: until the deadline); `seed` of the
    choice; `sub_s`: the most seconds (caller's clock) one sub-problem may take."""

    free: int = 8
    moves: int = 0
    seed: int = 0
    sub_s: float = 20.0


@dataclass(frozen=True)
class LnsResult:
    plan: Plan
    moves: int
    improved: int
    unimproved: int  # sub-problems with no better plan found (or proven: their bound needs every freed GPU)
    note: str


def idle(instance: Instance, gpu: GpuLayout) -> float:
    """The capacity of a GPU its tenants leave unused (in the mechanism's units): for each partition its size times
    one minus its busiest tenant's share of its capacity, plus what no partition holds."""
    caps = _gpu_caps(instance, gpu)
    total = float(instance.mechanism.capacity)
    if caps is None:
        return total
    used = 0.0
    for p, cs in zip(gpu.partitions, caps):
        load = max((t.rate / c if c > 0 else 1.0 for t, c in zip(p.tenants, cs)), default=0.0)
        used += p.size * min(1.0, load)
    return max(0.0, total - used)


def sub_problem(instance: Instance, plan: Plan, freed: list[int]) -> tuple[Instance, Plan] | None:
    """The sub-instance of what the GPUs `freed` (indices into `plan.gpus`) serve beyond the others, and those GPUs
    as its plan (tenants of services with nothing left removed); None when they serve nothing that is needed."""
    kept_rate: dict[str, float] = {}
    for g, gpu in enumerate(plan.gpus):
        if g in freed:
            continue
        for p in gpu.partitions:
            for t in p.tenants:
                kept_rate[t.service] = kept_rate.get(t.service, 0.0) + t.rate
    names = []
    for g in freed:
        for p in plan.gpus[g].partitions:
            names += [t.service for t in p.tenants if t.service not in names]
    rest = {n: instance.service(n).rate * plan.scale - kept_rate.get(n, 0.0) for n in names}
    keep = [n for n in names if rest[n] > REST_TOL * max(instance.service(n).rate, 1e-12)]
    if not keep:
        return None
    services = tuple(replace(instance.service(n), rate=rest[n]) for n in keep)
    sub = replace(instance, services=services)
    gpus = []
    for g in freed:
        parts = []
        for p in plan.gpus[g].partitions:
            ts = tuple(t for t in p.tenants if t.service in keep)
            if ts:
                parts.append(replace(p, tenants=ts))
        if parts:
            gpus.append(GpuLayout(tuple(parts)))
    return sub, Plan(tuple(gpus), scale=1.0, solver=plan.solver)


def pool_columns(instance: Instance, sub: Instance, configs) -> tuple:
    """The configurations `configs` (of `instance`) that hold at least one service of `sub`, as configurations of
    `sub`: service indices re-numbered, tenants of services not in `sub` dropped, every kept tenant with the capacity
    it had (duplicates by size, procs and tenant set merged, each tenant at the greatest capacity any of them gives).

    Valid for the rules of docs/RULES.md: dropping a tenant shortens the duty cycle d = sum of the tenants' execution
    times (a tenant's execution time depends on its own batch, the partition and the GPU's neighbours, not on its
    co-tenants), so every kept tenant's latency d + e_s <= slo_s still holds, its capacity 1000 b_s / d only grows
    (the recorded one is still served), and memory only falls; the merged duplicates have the same tenant set, so the
    same true duty, at or below each source's.  The checker judges every merged plan anyway (`improve`).

    Except under the measured throughput rule: a lone tenant is credited with the measured throughput, not the cycle
    rule that credited it beside its co-tenants (which can exceed it, `stsched.bounds.entry_capacity`), so a column
    cut to one tenant from several is left out (the sub-problem's singles, `lns_singles`, supply lone tenants).
    `configs` must hold beside any neighbour (under neighbour-dependent interference: the conservative columns, not
    partitions timed with the neighbours they had, `solvers.exact.cg`)."""
    from solvers.exact.patterns import Config, _memory
    from stsched.problem import ThroughputRule

    measured = instance.throughput_rule is ThroughputRule.MEASURED
    index = {n: i for i, n in enumerate(sub.service_names)}
    full = instance.service_names
    merged: dict[tuple, list[float]] = {}
    memory: dict[tuple, float] = {}  # a column's own memory where it kept every tenant (the same services)
    for c in configs:
        kept = [(index[full[s]], b, cap) for (s, b), cap in zip(c.tenants, c.cap) if full[s] in index]
        if not kept or (measured and len(kept) == 1 < len(c.tenants)):
            continue
        kept.sort()
        key = (c.size, c.procs, tuple((s, b) for s, b, _ in kept))
        caps = [cap for _, _, cap in kept]
        old = merged.get(key)
        merged[key] = caps if old is None else [max(a, b) for a, b in zip(old, caps)]
        if len(kept) == len(c.tenants):
            memory[key] = c.memory_mb
    names = sub.service_names
    out = []
    for key, caps in merged.items():
        size, procs, tenants = key
        mem = memory[key] if key in memory else _memory(sub, procs, [(names[s], b) for s, b in tenants])
        out.append(Config(size, procs, tenants, tuple(caps), mem))
    return tuple(out)


def improve(instance: Instance, plan: Plan, deadline: float, clock,
            solve_sub: Callable[[Instance, Plan, float], Plan | None], opts: LnsOptions = LnsOptions(),
            stop_at: float = 0.0) -> LnsResult:
    """Moves (module docstring) from `plan` until `deadline` on `clock` (or a plan of `stop_at` GPUs, a bound);
    the best plan the checker accepts."""
    rng = random.Random(opts.seed)
    best = plan
    moves = improved = unimproved = 0
    seen: set[frozenset] = set()
    while clock() < deadline and (opts.moves == 0 or moves < opts.moves) and best.gpus_used > stop_at + 1e-9:
        used = [g for g, gpu in enumerate(best.gpus) if gpu.used]
        if len(used) < 2:
            break
        k = min(opts.free, len(used))
        weights = [idle(instance, best.gpus[g]) + 1.0 for g in used]
        freed = _weighted_sample(rng, used, weights, k)
        key = frozenset(_signature(best.gpus[g]) for g in freed)
        if key in seen:
            freed = rng.sample(used, k)  # a set already tried: a uniform one instead
            key = frozenset(_signature(best.gpus[g]) for g in freed)
            if key in seen:  # (every set of a small plan tried, or nearly): nothing new to try
                break
        seen.add(key)
        moves += 1
        cut = sub_problem(instance, best, freed)
        if cut is None:  # the freed GPUs serve nothing needed: drop them
            cand = Plan(tuple(gpu for g, gpu in enumerate(best.gpus) if g not in freed), scale=best.scale,
                        solver=best.solver)
        else:
            sub, warm = cut
            if warm.gpus_used < len(freed):
                found = warm
            else:
                found = solve_sub(sub, warm, min(opts.sub_s, deadline - clock()))
                if found is None:
                    unimproved += 1
                    continue
            if found.gpus_used >= len(freed):
                continue
            cand = Plan(tuple(gpu for g, gpu in enumerate(best.gpus) if g not in freed and gpu.used)
                        + tuple(g for g in found.gpus if g.used), scale=best.scale, solver=best.solver)
        rep = check(instance, cand)
        if not rep.valid:
            log.error("lns: merged plan rejected by the checker: %s", rep.violations[0])
            continue
        if cand.gpus_used < best.gpus_used:
            log.info("lns move %d: %d -> %d GPUs", moves, best.gpus_used, cand.gpus_used)
            best = cand
            improved += 1
            seen.clear()
    note = (f"neighbourhood search: {moves} moves of {opts.free} GPUs, {improved} improving, {unimproved} without a "
            f"better sub-plan; {plan.gpus_used} -> {best.gpus_used} GPUs")
    return LnsResult(best, moves, improved, unimproved, note)


def _weighted_sample(rng: random.Random, items: list[int], weights: list[float], k: int) -> list[int]:
    """k distinct items, each drawn with probability proportional to its weight (Efraimidis-Spirakis keys)."""
    keys = sorted(((rng.random() ** (1.0 / w), i) for i, w in zip(items, weights)), reverse=True)
    return [i for _, i in keys[:k]]


def _signature(gpu: GpuLayout) -> tuple:
    return tuple((p.size, tuple((t.service, t.batch, round(t.rate, 9)) for t in p.tenants)) for p in gpu.partitions)


__all__ = ["LnsOptions", "LnsResult", "idle", "improve", "pool_columns", "sub_problem"]
