"""One GPU off for one layout change: its services moved into the slack of partitions that stay.

A compaction that switches GPU k off and keeps every other layout changes exactly one layout (k's, to off).  The
rest of the plan must then carry k's load inside its kept layouts.  `rebalance` only moves rate shares between a
service's existing tenants, and `retenant` only hands a whole partition over to one short service (its services
must stay covered elsewhere); neither can add a short service as one more tenant of a partition that has slack in
its duty cycle, nor give a tenant a larger batch (more requests per cycle), which is where a partly loaded GPU's
slack is.  So on a window whose need moves between 10 and 11 GPUs, "one GPU off" was rarely found, and each fall
was followed by a multi-change compaction only after its rent was paid.

`shed(instance, plan, k)`: plan without GPU k, then greedily, while some service is short: over every partition
with tenants on the kept GPUs, try (a) one more tenant of a short service (at each batch; `max_tenants` and
one-tenant `procs` respected) and (b) a different batch for a tenant of a short service; a trial is legal when the
checker finds nothing wrong with its GPU but coverage (latency of every tenant in the new cycle, memory, layout);
the trial kept is the one that most reduces the total relative deficit (sum over services of max(0, rate -
capacity) / rate) without leaving a covered service short; finally `retenant` may hand a partition over as usual.
Every trial keeps the partition's size and procs, so the GPU's layout (`GpuLayout.layout`) is unchanged; the
result is rebalanced and judged by the checker (`rebalance`), or None.  Tenant and batch changes are cheap per
docs/RULES.md and counted as tenant changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from stsched.checker import Rule, check
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.planning.adapt.rebalance import gpu_service_caps, rebalance, retenant, without_gpu
from stsched.problem import Instance

_IGNORED = (Rule.COVERAGE, Rule.GPUS)


def gpu_legal(instance: Instance, g: GpuLayout) -> bool:
    """Whether one GPU breaks no rule but coverage (its tenants' rates are re-set by `rebalance` afterwards)."""
    zero = GpuLayout(tuple(replace(p, tenants=tuple(Tenant(t.service, t.batch, 0.0) for t in p.tenants))
                           for p in g.partitions))
    report = check(instance, Plan((zero,)))
    return all(v.rule in _IGNORED for v in report.violations)


def _deficit(rates: dict[str, float], caps: dict[str, float]) -> float:
    return sum(max(0.0, r - caps.get(n, 0.0)) / r for n, r in rates.items() if r > 0)


def _trials(instance: Instance, g: GpuLayout, short: set[str]):
    """Layouts of one GPU with one partition's tenants changed (module docstring: (a) and (b)); sizes kept."""
    cap = instance.mechanism.max_tenants
    for qi, p in enumerate(g.partitions):
        if not p.tenants:
            continue  # a partition without tenants is not part of the layout: filling it would change it
        parts = list(g.partitions)
        if p.procs == 1 and (cap is None or len(p.tenants) < cap):
            for name in short - p.services:
                for b in instance.batches:
                    parts[qi] = Partition(p.size, p.tenants + (Tenant(name, b, 0.0),), None, p.procs, p.start)
                    yield GpuLayout(tuple(parts))
        for ti, t in enumerate(p.tenants):
            if t.service not in short:
                continue
            for b in instance.batches:
                if b != t.batch:
                    tenants = tuple(Tenant(x.service, b if i == ti else x.batch, 0.0) for i, x in enumerate(p.tenants))
                    parts[qi] = Partition(p.size, tenants, None, p.procs, p.start)
                    yield GpuLayout(tuple(parts))
        parts[qi] = p


def fill_slack(instance: Instance, plan: Plan, max_moves: int = 8) -> Plan | None:
    """Cover every service's rate inside the layouts of `plan` by adding tenants and changing batches (module
    docstring), then re-tenanting; the rebalanced, checker-valid plan, or None."""
    rates = {s.name: s.rate for s in instance.services}
    per_gpu = [gpu_service_caps(instance, g) for g in plan.gpus]
    for _ in range(max_moves):
        caps: dict[str, float] = {}
        for gc in per_gpu:
            for n, c in gc.items():
                caps[n] = caps.get(n, 0.0) + c
        short = {n for n, r in rates.items() if r > caps.get(n, 0.0) * (1 + 1e-9)}
        if not short:
            return rebalance(instance, plan)
        now = _deficit(rates, caps)
        best = None
        for gi, g in enumerate(plan.gpus):
            if not g.used:
                continue
            for trial in _trials(instance, g, short):
                mine = gpu_service_caps(instance, trial)
                after = {n: caps.get(n, 0.0) - per_gpu[gi].get(n, 0.0) + mine.get(n, 0.0) for n in rates}
                if any(after[n] < rates[n] * (1 - 1e-9) for n in rates if n not in short):
                    continue  # a covered service would fall short (interference or a longer cycle)
                left = _deficit(rates, after)
                if left < now - 1e-9 and (best is None or left < best[0]) and gpu_legal(instance, trial):
                    best = (left, gi, trial, mine)
        if best is None:
            break
        _, gi, layout, mine = best
        plan = replace(plan, gpus=tuple(layout if k == gi else h for k, h in enumerate(plan.gpus)))
        per_gpu[gi] = mine
    return retenant(instance, plan)


def switch_offs(instance: Instance, plan: Plan, order: list[int], fill: bool
                ) -> Iterator[tuple[str, Plan | None]]:
    """One GPU off at a time, the other layouts kept (one layout change each), lazily: each GPU of `order` off with
    the rest rebalanced ("one GPU off"), then, with `fill`, each again with the kept partitions' slack filled ("one
    GPU off, slack filled", `fill_slack`); None where the rest cannot carry the rates.  The one rule of the three
    switch-off loops: `shed` and `shed_down` (the first that carries, per GPU), `Compaction._switch_offs` (all, as
    compaction candidates) and `Adaptive._release_one` (the first rebalanced one, without `fill`)."""
    for k in order:
        yield "one GPU off", rebalance(instance, without_gpu(plan, k))
    if fill:
        for k in order:
            yield "one GPU off, slack filled", fill_slack(instance, without_gpu(plan, k))


def first_switch_off(instance: Instance, plan: Plan, order: list[int], fill: bool) -> Plan | None:
    """The first of `switch_offs` that carries the rates, or None."""
    return next((p for _, p in switch_offs(instance, plan, order, fill) if p is not None), None)


def shed(instance: Instance, plan: Plan, k: int) -> Plan | None:
    """GPU k switched off and its load carried by the other GPUs in their kept layouts (one layout change):
    rebalanced, else its slack filled; or None."""
    return first_switch_off(instance, plan, [k], fill=True)


def shed_down(instance: Instance, plan: Plan, gpus: int, order: Callable[[Plan], list[int]],
              rank: Callable[[Plan], float]) -> Plan | None:
    """GPUs switched off one at a time (`shed`: the others' layouts kept, their slack filled), each step taking, of
    the GPUs `order(plan)` gives, the switch-off that ranks highest (`rank`, the first on ties), until `gpus` GPUs
    are in use: one layout change per GPU freed; None when a step finds none."""
    while plan is not None and plan.gpus_used > gpus:
        found = [p for k in order(plan) if (p := shed(instance, plan, k)) is not None]
        plan = max(found, key=rank, default=None)
    return plan
