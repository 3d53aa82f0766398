"""A few levels of branch-and-price on the configuration LP (solvers.exact.colgen): a bound beyond the LP's.

Every integer plan has whole GPUs per layout y_L, so whole slot counts S_p = sum_L n_L(p) y_L of every partition
size p.  Where the LP's S_p (or, once they are whole, some y_L) is fractional, the plans split into two branches,
S_p <= floor and S_p >= ceil; each branch's LP is solved by the same column generation (warm, from its parent's
columns) with the branching rows on y, and its Lagrangian bound is valid for the plans of that branch (cg_lagrange's
`_lagrange` with the rows: the best y of a small LP over the layouts).  The bound over the whole problem is the
weakest over the open leaves (min-gpus: the least, rounded up per leaf; max-scale: the greatest), so it is valid
whatever the node limit and never weaker than the root's.  Best first: the leaf that holds the bound is split next.

Nothing else of a plan is branched on (the configurations stay fractional), so the tree closes only the part of the
integrality gap that comes from partitions and GPUs; `complete` says whether every leaf was settled (no fractional
slot or layout count left, or pruned) within the limits.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from dataclasses import dataclass, replace

from solvers.exact.cg_pricing import CgOptions
from solvers.exact.colgen import CgBound, _clock, column_generation
from stsched.problem import Instance
from stsched.registry import Objective

log = logging.getLogger(__name__)

FRAC = 1e-6  # a count within this of a whole number is whole


@dataclass(frozen=True)
class BranchBound:
    """`bound`: valid for every plan (min-gpus: whole GPUs; max-scale: alpha); `root`: the plain column
    generation's; `nodes` LPs solved; `open_leaves` left unsettled at the limit."""

    objective: Objective
    bound: float
    root: CgBound
    nodes: int
    open_leaves: int
    complete: bool
    wall_s: float
    trail: tuple[tuple[str, float], ...] = ()  # (branching rows of each node solved, its bound)


def _node_bound(r: CgBound) -> float:
    if r.objective is Objective.MIN_GPUS:
        return r.integer_bound if math.isfinite(r.bound) else math.inf
    return r.bound


def _pick(r: CgBound, layouts) -> tuple[dict[int, float], float, str] | None:
    """The branching row of a node: the most fractional slot count (coefficients over y, value, name), else the most
    fractional GPU count of one layout; None when every one is whole."""
    if not r.y:
        return None
    best, best_frac = None, FRAC
    for p in sorted({p for L in layouts for p in L}):
        coefs = {i: float(L.count(p)) for i, L in enumerate(layouts) if p in L}
        v = sum(c * r.y[i] for i, c in coefs.items())
        f = min(v - math.floor(v), math.ceil(v) - v)
        if f > best_frac:
            best, best_frac = (coefs, v, f"slots of size {p:g}"), f
    if best is not None:
        return best
    for i, v in enumerate(r.y):
        f = min(v - math.floor(v), math.ceil(v) - v)
        if f > best_frac:
            best, best_frac = ({i: 1.0}, v, f"GPUs of layout {'+'.join(f'{p:g}' for p in layouts[i])}"), f
    return best


def branch_and_price(instance: Instance, objective: Objective, opts: CgOptions = CgOptions(), max_nodes: int = 15,
                     root: CgBound | None = None) -> BranchBound:
    """The bound of a best-first branch-and-price with at most `max_nodes` node LPs (the root included) within
    `opts.time_limit_s` in all (on `opts.clock`).  `root`: a column generation of the whole problem already run."""
    t0 = time.perf_counter()
    clock = _clock(opts.clock)
    deadline = clock() + opts.time_limit_s
    maxi = objective is Objective.MAX_SCALE
    if root is None:
        root = column_generation(instance, objective, opts)
    layouts = root.layouts
    sign = -1.0 if maxi else 1.0  # heap key: the weakest (fractional) bound first
    heap: list[tuple[float, int, tuple, CgBound]] = [(sign * root.bound, 0, (), root)]
    settled: list[float] = []  # bounds of leaves with nothing left to branch on
    trail = [("root", _node_bound(root))]
    nodes, tie = 1, 1
    while heap and nodes < max_nodes and clock() < deadline:
        key, _, rows, r = heap[0]
        if not math.isfinite(key) or not r.converged:
            break  # no plan in any leaf, or the weakest leaf's LP is unsolved (split, it would bound no better)
        pick = _pick(r, layouts)
        heapq.heappop(heap)
        if pick is None:
            settled.append(_node_bound(r))
            continue
        coefs, v, name = pick
        for lo, hi in ((-math.inf, float(math.floor(v))), (float(math.ceil(v)), math.inf)):
            if nodes >= max_nodes or clock() >= deadline:
                heapq.heappush(heap, (key, tie, rows, r))  # unsplit: the parent's bound stands for this branch
                tie += 1
                break
            child_rows = rows + ((coefs, lo, hi),)
            label = f"{name} {'<= ' + format(hi, 'g') if math.isfinite(hi) else '>= ' + format(lo, 'g')}"
            left = max(deadline - clock(), 1e-3)
            try:
                child = column_generation(instance, objective, replace(opts, time_limit_s=left), y_rows=child_rows,
                                          start=r.configs)
            except RuntimeError as e:  # HiGHS left the branch's master unsolved (seen: MPS 8 services, seed 2,
                log.warning("branch-and-price node (%s): %s; the parent's bound stands", label, e)  # min-gpus)
                child = replace(r, converged=False)  # (a branch holds a subset of its parent's plans)
            nodes += 1
            # a branch holds a subset of its parent's plans: its bound is never weaker
            frac = min(child.bound, r.bound) if maxi else max(child.bound, r.bound)
            child = replace(child, bound=frac)
            trail.append((label, _node_bound(child)))
            log.info("branch-and-price node %d (%s): bound %.6g, converged %s", nodes, label, frac,
                     child.converged)
            heapq.heappush(heap, (sign * child.bound, tie, child_rows, child))
            tie += 1
    leaves = [_node_bound(r) for _, _, _, r in heap] + settled
    if maxi:
        bound = min(_node_bound(root), max(leaves)) if leaves else 0.0
    else:
        bound = max(_node_bound(root), min(leaves)) if leaves else math.inf
    return BranchBound(objective, bound, root, nodes, len(heap), not heap, time.perf_counter() - t0, tuple(trail))


__all__ = ["BranchBound", "branch_and_price"]
