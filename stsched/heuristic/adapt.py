"""Adaptive mode: re-plan for new rates from the plan in force, changing as few GPU layouts as possible.

1. temporal absorption inside the current layouts: rates that drop are scaled down on the tenants serving them
   (batches and duty cycles kept, so the partition stays as valid as it was); rates that grow are raised on the
   existing tenants (re-fitting batches and cycles), then given to partitions with spare time as new tenants;
2. only what remains changes layouts, one GPU at a time, greedily the change that serves the most of what remains:
   rebuilding one GPU in use (its own load re-served first), or switching one idle GPU on;
3. if that still leaves demand unserved (or `adapt_resolve` finds it better), a plan from scratch, its GPUs
   matched to the old indices so that identical layouts stay where they were.
Cost: `layout_changes(old, new)`, the GPUs whose layout (multiset of partition sizes) changed, matched by GPU
index; a GPU switched on or off counts as a change.  GPUs in use break ties.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from stsched.heuristic.construct import build_gpu
from stsched.heuristic.driver import Outcome, finalize, lower_gpus, pack, rates
from stsched.heuristic.fit import EPS
from stsched.heuristic.model import Context, build_context
from stsched.heuristic.options import HeuristicOptions
from stsched.heuristic.search import absorb
from stsched.heuristic.state import WGpu, clone, from_plan, refit_gpu, scale_down
from stsched.plan import Plan, layout_changes
from stsched.problem import Instance
from stsched.registry import SolveOptions

log = logging.getLogger(__name__)


def _rebuild_options(ctx: Context, gpus: list[WGpu], left: dict[int, float], slots: int):
    """Every single-GPU layout change and what it leaves unserved: (unserved work, adds a GPU, index, new GPU,
    new leftover); switching an idle GPU on only while fewer than the instance's GPUs are in use."""
    out = []
    rem = np.zeros(len(ctx.names))
    for i, r in left.items():
        rem[i] = r
    room = sum(g.used for g in gpus) < ctx.instance.gpus  # an idle GPU may be switched on only within the cap
    for k in range(slots):
        g = gpus[k] if k < len(gpus) else WGpu()
        if not g.used and not room:
            continue
        demand = rem.copy()
        for i, r in g.served().items():
            demand[i] += r
        new, _ = build_gpu(ctx, demand)
        if new is None:
            continue
        after = demand.copy()
        for i, r in new.served().items():
            after[i] = max(0.0, after[i] - r)
        rest = {i: float(after[i]) for i in np.nonzero(after > EPS * np.maximum(1.0, demand))[0]}
        work = sum(r / ctx.eff[i] for i, r in rest.items() if ctx.eff[i] > 0)
        out.append((work, not g.used, k, new, rest))
    out.sort(key=lambda o: (o[0], o[1], o[2]))
    return out


def _align(old: list[WGpu], new: list[WGpu]) -> list[WGpu]:
    """Place a from-scratch plan's GPUs on the old indices: identical layouts first, then GPUs in use."""
    slots: list[WGpu | None] = [None] * max(len(old), len(new))
    pending = list(new)
    for k, g in enumerate(old):
        for j, h in enumerate(pending):
            if g.used and h.sizes() == g.sizes():
                slots[k] = pending.pop(j)
                break
    order = [k for k in range(len(slots)) if k < len(old) and old[k].used] + \
            [k for k in range(len(slots)) if not (k < len(old) and old[k].used)]
    for k in order:
        if slots[k] is None and pending:
            slots[k] = pending.pop(0)
    return [s if s is not None else WGpu() for s in slots]


def _changes(old: list[WGpu], new: list[WGpu]) -> int:
    n = max(len(old), len(new))
    a = [g.sizes() for g in old] + [()] * (n - len(old))
    b = [g.sizes() for g in new] + [()] * (n - len(new))
    return sum(1 for x, y in zip(a, b) if x != y)


def adapt_state(ctx: Context, current: Plan, deadline: float, seed: int) -> tuple[list[WGpu] | None, str]:
    """The adapted working state (GPU indices kept) and a note on how it was reached."""
    old = from_plan(ctx, current)
    demand = rates(ctx)
    gpus = clone(old)
    for g in gpus:
        g.parts = [p for p in g.parts if p.tenants]
    left = scale_down(ctx, gpus, demand)
    for g in gpus:
        if g.used and not refit_gpu(ctx, g):
            left = None  # the plan in force does not hold under the conservative model: start from scratch
            break
    if left is not None:
        left = absorb(ctx, gpus, left, allow_layout=False)
        if not left:
            return gpus, "adapt: absorbed inside the current layouts"
        slots = max(ctx.instance.gpus, len(gpus))
        changed = 0
        while left and changed < slots:
            opts = _rebuild_options(ctx, gpus, left, slots)
            if not opts or opts[0][0] >= sum(r / ctx.eff[i] for i, r in left.items() if ctx.eff[i] > 0) - 1e-12:
                break
            _, _, k, new, rest = opts[0]
            while len(gpus) <= k:
                gpus.append(WGpu())
            gpus[k] = new
            changed += 1
            left = absorb(ctx, gpus, rest, allow_layout=False) if rest else {}
        if not left:
            note = f"adapt: {changed} GPU layout(s) rebuilt after temporal absorption"
            if not ctx.opts.adapt_resolve or time.perf_counter() > deadline:
                return gpus, note
            fresh = pack(ctx, demand, lower_gpus(ctx), deadline, seed, descent=False)
            if fresh is not None and len(fresh) <= ctx.instance.gpus:
                fresh = _align(old, fresh)
                if (_changes(old, fresh), sum(g.used for g in fresh)) < (_changes(old, gpus),
                                                                          sum(g.used for g in gpus)):
                    return fresh, "adapt: a plan from scratch changed fewer layouts"
            return gpus, note
    fresh = pack(ctx, demand, lower_gpus(ctx), deadline, seed, descent=False)
    if fresh is None or len(fresh) > ctx.instance.gpus:
        return None, "adapt: no plan on the instance's GPUs serves the new rates"
    return _align(old, fresh), "adapt: planned from scratch"


def adapt(instance: Instance, current_plan: Plan, options: SolveOptions | HeuristicOptions | None = None) -> Plan:
    """A valid plan for `instance`'s (new) rates from `current_plan`, changing as few GPU layouts as possible.

    GPU k of the result is GPU k of `current_plan` (unused GPUs stay in the list, empty), so
    `layout_changes(current_plan, result)` is the reconfiguration cost.  Raises `InfeasibleError` when no valid
    plan is found.
    """
    from stsched.errors import InfeasibleError

    solve_opts = options if isinstance(options, SolveOptions) else SolveOptions()
    opts = options if isinstance(options, HeuristicOptions) else HeuristicOptions.from_params(solve_opts.params)
    out = run_adapt(build_context(instance, opts), current_plan, solve_opts)
    if out.plan is None:
        raise InfeasibleError(out.note)
    return out.plan


def run_adapt(ctx: Context, current: Plan, options: SolveOptions) -> Outcome:
    deadline = time.perf_counter() + options.time_limit_s
    gpus, note = adapt_state(ctx, current, deadline, options.seed)
    if gpus is None:
        return Outcome(None, None, None, note)
    out = finalize(ctx, gpus, 1.0, note, keep_empty=True)
    if out.plan is None:
        fresh = pack(ctx, rates(ctx), lower_gpus(ctx), deadline, options.seed, descent=False)
        if fresh is None or len(fresh) > ctx.instance.gpus:
            return out
        out = finalize(ctx, _align(from_plan(ctx, current), fresh), 1.0, "adapt: planned from scratch",
                       keep_empty=True)
        if out.plan is None:
            return out
    cost = layout_changes(current, out.plan)
    return Outcome(out.plan, out.report, float(cost),
                   f"{out.note}; {cost} layout change(s), {out.plan.gpus_used} GPUs in use")
