"""Branch-and-price on the configurations themselves (issue 17): a bound beyond the configuration LP and beyond
branching on slot and layout counts (solvers.exact.cg_branch).

In every plan these counts are whole numbers, so each is a valid branching quantity (a *feature* of a partition):
- ``pair`` (s, t): the partitions that hold both s and t (Ryan-Foster, in the covering form this problem needs:
  a service may be split over several partitions, so "s and t always together" is no branch; the two branches are
  N_st <= floor(v) (floor 0: s and t never share a partition) and N_st >= ceil(v) (at least that many do));
- ``usage`` (s, p): the partitions of size p that hold s;
- ``service`` s: the partitions that hold s.
A node's rows lo <= sum_c h_f(c) x_c <= hi join the configuration LP's master (solvers.exact.colgen's, with a row
per feature); a row with hi = 0 is kept out of the columns instead (the pricing forbids it).  The pricing at a node
must price each row's dual sigma_f: the value of a configuration is pi . a_c + sum_f sigma_f h_f(c).  Where every
configuration can be listed (at most `ENUM_LIMIT`; 8-16 services) it is priced exactly by a matrix product over the
listing (solvers.exact.cg_enum: a node costs a few master solves, 0.01-0.03 s of CPU at 8 services); else by an exact
MILP per size (solvers.exact.cg_ryan_milp, seconds per node).

Bound of a node (valid for every plan of the node, converged or not): with pi >= 0 and sigma_f >= 0 on rows with no
upper limit, every plan of the node has sum_c x_c (pi . a_c + sigma . h_c) >= sum(pi) (x alpha for max-scale)
+ F, F = sum_f sigma_f (lo_f if sigma_f > 0 else hi_f); the left side is at most sum_L W_L y_L, W_L = sum_p
n_L(p) max(V_p, 0), so GPUs >= (sum(pi) + F) / max_L W_L and alpha <= (G max_L W_L - F) / sum(pi).  A child's
bound is never weaker than its parent's (a branch holds a subset of its plans).  The tree is best first (the
weakest leaf split next, on its most fractional feature in the rule's order, or with `strong` > 1 by strong
branching: both children of the `strong` most fractional candidates are solved and the candidate whose children's
bounds improve most (the product of the two gains) is split; every plan of the node lies in one child of each
candidate, so the node's bound also falls to the least over the candidates of their children's greater bound
(max-scale; min-gpus: the greatest of the lesser), which its children inherit).  The bound over the whole problem is
the weakest over the open leaves (min-gpus: each rounded up; max-scale: the greatest), valid whenever it stops.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from dataclasses import dataclass, replace

import numpy as np

from solvers.exact.cg_common import layout_weights, pricing_setup
from solvers.exact.cg_enum import LIMIT, EnumPricer
from solvers.exact.cg_master import _Master
from solvers.exact.cg_pricing import TOL, CgOptions, Pricer
from solvers.exact.cg_ryan_milp import Feature, Row, allowed, feature_value, price_sets, price_singles
from solvers.exact.colgen import CgBound, _clock, _key, column_generation
from solvers.exact.patterns import Config, coverage
from stsched.checker import whole_gpus
from stsched.errors import InputError
from stsched.problem import Instance
from stsched.registry import Objective

log = logging.getLogger(__name__)

FRAC = 1e-6  # a count within this of a whole number is whole
ENUM_LIMIT = LIMIT  # configurations listed for the pricing by enumeration at most (0: always the MILP pricing)
RULES = {"pairs": ("pair", "usage", "service"), "usage": ("usage", "pair", "service"),
         "service": ("service", "usage", "pair")}  # the feature kinds a rule branches on, in its order


# ------------------------------------------------------------------------------------------------- a node's LP
class _RowMaster(_Master):
    """colgen's restricted master with a row per branching feature (lo <= sum_c h_f(c) x_c <= hi) and costly
    slacks that keep it feasible (their duals are finite; the Lagrangian bound holds for any duals)."""

    def __init__(self, instance: Instance, layouts, active: list[int], objective: Objective, rows: tuple[Row, ...]):
        self.ncols = 0
        super().__init__(instance.mechanism.sizes, layouts, active, objective, instance.gpus)
        self.row_feat: dict[Feature, int] = {}
        penalty = 10.0 * max(instance.gpus, len(active)) if not self.maxi else 1e3
        for f, lo, hi in rows:
            if hi <= 0:
                continue  # forbidden: kept out of the columns and the pricing instead
            self.row_feat[f] = self.n_rows
            self.n_rows += 1
            self.h.addRow(lo if lo > 0 else -self.inf, hi if math.isfinite(hi) else self.inf, 0,
                          np.zeros(0, dtype=np.int32), np.zeros(0))
            if lo > 0:
                self._add(penalty, [self.row_feat[f]], [1.0])
        if not self.maxi:
            self.add_artificials(active, penalty)
        self.first_config = self.ncols

    def _add(self, cost: float, idx: list[int], val: list[float]) -> None:
        super()._add(cost, idx, val)
        self.ncols += 1

    def add_config(self, c: Config, cov: dict[int, float]) -> None:
        idx, val = [self.row_size[c.size]] + [self.row_serv[s] for s in cov], [1.0] + list(cov.values())
        for f, r in self.row_feat.items():
            if f.count(c):
                idx.append(r), val.append(1.0)
        self._add(0.0, idx, val)

    def config_values(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().col_value[self.first_config:self.ncols], dtype=float)


@dataclass
class _Ctx:
    instance: Instance
    objective: Objective
    layouts: tuple
    data: dict
    rates: np.ndarray
    active: list[int]
    clip: float
    pricer: Pricer
    opts: CgOptions
    clock: object
    deadline: float
    enum: EnumPricer | None = None  # the exact pricing by enumeration (solvers.exact.cg_enum), else the MILP's


@dataclass(frozen=True)
class Node:
    """A node's LP: `bound` valid for every plan of the node (fractional), the restricted master's `value`, whether
    it `converged` (the exact pricing proved no column improves it), its columns and their values `x`."""

    rows: tuple[Row, ...]
    bound: float
    value: float
    converged: bool
    columns: tuple[Config, ...]
    x: tuple[float, ...]
    rounds: int


def context(instance: Instance, objective: Objective, opts: CgOptions, root: CgBound, enum_limit: int = 0,
            deadline: float = math.inf) -> _Ctx:
    """What every node of the tree prices with (colgen's set-up, the root's layouts and clip; the pricing by
    enumeration when the configurations are at most `enum_limit`, else the MILP's); `deadline` on `opts.clock`."""
    clip = root.clip_alpha if objective is Objective.MAX_SCALE else 1.0
    setup = pricing_setup(instance, root.layouts, opts)
    pricer = Pricer(instance, setup.data, setup.rates, clip, setup.opts)
    enum = EnumPricer.build(instance, setup.timer, setup.rates, clip, enum_limit) if enum_limit > 0 else None
    return _Ctx(instance, objective, root.layouts, setup.data, setup.rates, setup.active, clip, pricer, setup.opts,
                _clock(opts.clock), deadline, enum)


def lagrange(ctx: _Ctx, pi: np.ndarray, sig: dict[Feature, float], ub: dict[float, float],
             rows: tuple[Row, ...]) -> float:
    """The node's Lagrangian bound of the module docstring."""
    total = float(pi.sum())
    extra = 0.0
    for f, lo, hi in rows:
        v = sig.get(f, 0.0)
        if v:
            extra += v * (lo if v > 0 else hi)
    w = float(layout_weights(ctx.layouts, ub).max())
    if ctx.objective is Objective.MIN_GPUS:
        r = total + extra
        return 0.0 if r <= 0 else (math.inf if w <= 0 else r / w)
    g = float(ctx.instance.gpus)
    if total <= 0:
        return math.inf if g * w - extra >= 0 else 0.0
    return max((g * w - extra) / total, 0.0)


def _cheap_bound(ctx: _Ctx, sd, pi: np.ndarray, sig: dict[Feature, float], mu: float) -> float:
    """A bound on pi . a_c + sigma . h_c over every configuration of the size without the MILP: colgen's proven bound
    on pi . a_c (its pricing knows no rows, and a forbidden configuration only lowers the best) plus every positive
    feature dual a configuration of the size can count (refined until it proves the size's dual `mu` unbeaten)."""
    extra = sum(x for f, x in sig.items() if x > 0 and (f.kind != "usage" or f.size == sd.size))
    v, _ = ctx.pricer.upper(sd, pi, max(mu - extra, 0.0), exact=True)
    return v + extra


def solve_node(ctx: _Ctx, rows: tuple[Row, ...], start: tuple[Config, ...], floor: float) -> Node:
    """The configuration LP of the plans under `rows` by column generation with the exact pricing, from the
    `start` columns (those the rows allow); `floor`: a bound already known for the node (its parent's)."""
    maxi = ctx.objective is Objective.MAX_SCALE
    master = _RowMaster(ctx.instance, ctx.layouts, ctx.active, ctx.objective, rows)
    cols: list[Config] = []
    keys: set[tuple] = set()

    def add(c: Config) -> None:
        if _key(c) not in keys and allowed(c, rows):
            keys.add(_key(c))
            cols.append(c)
            master.add_config(c, coverage(c, ctx.rates, ctx.clip))

    for sd in ctx.data.values():  # every allowed one-tenant configuration (few at these sizes)
        for c in sd.singles:
            add(c)
    for c in start:
        add(c)
    bound, value, converged, rounds = floor, math.nan, False, 0
    better = (lambda a, b: a < b) if maxi else (lambda a, b: a > b)
    while rounds < ctx.opts.max_rounds and ctx.clock() < ctx.deadline:
        rounds += 1
        lp = master.solve()
        if lp is None:
            break
        value, dual, mu = lp
        pi = master.service_duals(dual, len(ctx.rates))
        sig = {}
        for f, lo, hi in rows:
            if f in master.row_feat:
                v = float(dual[master.row_feat[f]])
                sig[f] = max(v, 0.0) if not math.isfinite(hi) else (min(v, 0.0) if lo <= 0 else v)
        ub: dict[float, float] = {}
        new: list[Config] = []
        for p, sd in ctx.data.items():
            thr = mu[p] * (1 + TOL) + 1e-12
            if ctx.enum is not None:  # every configuration of the size priced exactly (its best: V_p)
                ub[p], got = ctx.enum.price(p, pi, sig, rows, thr, ctx.opts.per_size)
                new += [c for _, c in got]
                continue
            cheap = _cheap_bound(ctx, sd, pi, sig, mu[p])
            if cheap <= mu[p] * (1 + ctx.opts.eps) + 1e-9:  # no configuration of the size improves: no MILP
                ub[p] = cheap
                continue
            singles = price_singles(sd, pi, sig, ctx.rates, ctx.clip, rows)
            top = max((v for v, _ in singles), default=-math.inf)
            left = ctx.deadline - ctx.clock()
            v_sets, c = price_sets(ctx.instance, sd, pi, sig, ctx.rates, ctx.clip, rows, time_limit=max(left, 0.05))
            ub[p] = max(top, v_sets)
            new += [c for v, c in sorted(singles, key=lambda x: -x[0])[:5] if v > thr]
            if c is not None:
                new.append(c)
            for _, g in ctx.pricer.columns(sd, pi, mu[p]):  # the greedy's sets, valued with the branch's duals
                if allowed(g, rows) and sum(pi[s] * a for s, a in coverage(g, ctx.rates, ctx.clip).items()) \
                        + feature_value(g, sig) > thr:
                    new.append(g)
        lag = lagrange(ctx, pi, sig, ub, rows)
        if better(lag, bound):
            bound = lag
        log.debug("node round %d: master %.6g lagrange %.6g bound %.6g, %d new columns, pricing slack %s", rounds,
                  value, lag, bound, len(new), {p: round(ub[p] - mu[p], 6) for p in ub})
        if all(ub[p] <= mu[p] * (1 + ctx.opts.eps) + 1e-9 for p in ctx.data):
            converged = True
            break
        if (bound - value if maxi else value - bound) <= ctx.opts.gap * abs(value) + 1e-9:
            converged = True
            break
        new = [c for c in new if _key(c) not in keys]
        if not new:
            break
        for c in new:
            add(c)
    x = tuple(master.config_values()) if math.isfinite(value) else ()
    return Node(rows, bound, value, converged, tuple(cols), x, rounds)


# ------------------------------------------------------------------------------------------------- the tree
def fractional(node: Node, rule: str, k: int = 1) -> list[tuple[Feature, float]]:
    """The `k` branching candidates of a node: in the rule's order of kinds, its most fractional counts (ties: the
    lowest services first; a count within the checker's tolerance of a whole one is not fractional), the next
    kind's joining when one has fewer than `k`."""
    if not node.x:
        return []
    vals: dict[Feature, float] = {}
    for c, x in zip(node.columns, node.x):
        if x <= FRAC:
            continue
        ss = sorted({s for s, _ in c.tenants})
        for s in ss:
            for f in (Feature("service", s), Feature("usage", s, size=c.size)):
                vals[f] = vals.get(f, 0.0) + x
        for i, s in enumerate(ss):
            for t in ss[i + 1:]:
                f = Feature("pair", s, t)
                vals[f] = vals.get(f, 0.0) + x
    out: list[tuple[Feature, float]] = []
    for kind in RULES[rule]:
        cand = [(min(v - math.floor(v), math.ceil(v) - v), f, v) for f, v in vals.items() if f.kind == kind]
        # a count within the checker's tolerance above a whole one is whole (`whole_gpus`, the one rule): whole
        # plans may run their tenants that much above the exact capacities the node LPs count (review mend: on
        # the edge 9e-7 above 2 GPUs both branches of a count 2(1 + 9e-7) ruled out the valid 2-GPU plan)
        cand = [x for x in cand if x[0] > FRAC and whole_gpus(x[2]) > math.floor(x[2])]
        cand.sort(key=lambda x: (-round(x[0], 12), x[1].s, x[1].t, x[1].size))
        out += [(f, v) for _, f, v in cand[: k - len(out)]]
        if len(out) >= k:
            break
    return out


def _merge(rows: tuple[Row, ...], f: Feature, lo: float, hi: float) -> tuple[Row, ...]:
    old = {g: (a, b) for g, a, b in rows}
    a, b = old.get(f, (0.0, math.inf))
    return tuple((g, x, y) for g, x, y in rows if g != f) + ((f, max(a, lo), min(b, hi)),)


def _branches(v: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """The two branches of a count of fractional value v: at most floor(v), at least ceil(v)."""
    return (0.0, float(math.floor(v))), (float(math.ceil(v)), math.inf)


class _Budget:
    """The node LPs left to the tree (each taken before it is solved) and its deadline."""

    def __init__(self, nodes: int, clock, deadline: float):
        self.nodes, self.used, self.clock, self.deadline = nodes, 0, clock, deadline

    def left(self) -> bool:
        return self.used < self.nodes and self.clock() < self.deadline

    def take(self, k: int) -> bool:
        if self.used + k > self.nodes or self.clock() >= self.deadline:
            return False
        self.used += k
        return True


def _strong(ctx: _Ctx, node: Node, cands: list[tuple[Feature, float]], budget: _Budget, maxi: bool):
    """Strong branching: both children of every candidate are solved (while the budget lasts) and the candidate whose
    children's bounds improve most on the node's (the product of the two gains, each at least 1e-9) is chosen.
    Returns (feature, its value, its children by branch, `tight`) with `tight` the node's bound as the candidates
    prove it (every plan of the node lies in one child of each candidate: max-scale, the least over the candidates
    of their children's greater bound; min-gpus, the greatest of the lesser), or (None, None, {}, the node's bound)
    when no candidate fitted in the budget."""
    best, tight = None, node.bound
    for f, v in cands:
        if not budget.take(2):
            break
        kids = {b: solve_node(ctx, _merge(node.rows, f, *b), node.columns, node.bound) for b in _branches(v)}
        bounds = [k.bound for k in kids.values()]
        if maxi:
            tight = min(tight, max(bounds))
            gains = [node.bound - b for b in bounds]
        else:
            tight = max(tight, min(bounds))
            gains = [b - node.bound for b in bounds]
        score = math.prod(min(max(g, 1e-9), 1e9) for g in gains)
        log.debug("strong branching on %s (%.4g): child bounds %s, score %.3g", f, v, bounds, score)
        if best is None or score > best[0]:
            best = (score, f, v, kids)
    if best is None:
        return None, None, {}, tight
    return best[1], best[2], best[3], tight


def ryan_foster(instance: Instance, objective: Objective, opts: CgOptions = CgOptions(), max_nodes: int = 15,
                rule: str = "pairs", root: CgBound | None = None, enum_limit: int = ENUM_LIMIT, strong: int = 0):
    """The bound of a best-first branch-and-price on configuration features (`rule`: pairs, usage or service, the
    kind branched on first) with at most `max_nodes` node LPs (the root's exact re-pricing included) within
    `opts.time_limit_s` in all (on `opts.clock`).  `root`: a converged column generation of the whole problem."""
    from solvers.exact.cg_branch import BranchBound

    if rule not in RULES:
        raise InputError(f"bp_rule: expected slots, {', '.join(RULES)}; got {rule!r}")
    t0 = time.perf_counter()
    clock = _clock(opts.clock)
    deadline = clock() + opts.time_limit_s
    maxi = objective is Objective.MAX_SCALE
    if root is None:
        root = column_generation(instance, objective, opts)
    names = instance.service_names

    def whole(b: float) -> float:  # what a node's bound says of whole plans
        if maxi:
            return b
        return float(whole_gpus(b))  # (the one rounding, stsched.checker.whole_gpus)

    root_bound = whole(root.bound)
    if not root.converged or max_nodes < 1:
        return BranchBound(objective, root_bound, root, 0, 0, False, time.perf_counter() - t0, (("root", root_bound),))
    ctx = context(instance, objective, opts, root, enum_limit, deadline)
    top = solve_node(ctx, (), root.configs, root.bound)
    tie = 1
    sign = -1.0 if maxi else 1.0
    heap: list[tuple[float, int, Node]] = [(sign * top.bound, 0, top)]
    trail = [("root", whole(top.bound))]
    settled: list[float] = []
    budget = _Budget(max_nodes - 1, clock, deadline)
    while heap and budget.left():
        key, _, node = heap[0]
        if not math.isfinite(key):
            break  # the weakest leaf holds no plan: neither does any
        cands = fractional(node, rule, max(1, strong))
        if not cands:  # nothing fractional to branch on: its bound caps the result
            heapq.heappop(heap)
            settled.append(node.bound)
            break
        heapq.heappop(heap)
        if len(cands) > 1:
            f, v, kids, tight = _strong(ctx, node, cands, budget, maxi)
        else:
            (f, v), kids, tight = cands[0], {}, node.bound
        if f is not None:
            for lo, hi in _branches(v):
                if (lo, hi) not in kids and budget.take(1):
                    kids[(lo, hi)] = solve_node(ctx, _merge(node.rows, f, lo, hi), node.columns, node.bound)
        if len(kids) < 2:  # unsplit (the limits): the node stays a leaf for the branch not solved
            heapq.heappush(heap, (sign * tight, tie, replace(node, bound=tight)))
            tie += 1
        for (lo, hi), child in kids.items():
            # its plans are the node's: what the strong branching's candidates proved of those holds for it too
            child = replace(child, bound=min(child.bound, tight) if maxi else max(child.bound, tight))
            label = f"{f.label(names)} {'>= ' + format(lo, 'g') if lo > 0 else '<= ' + format(hi, 'g')}"
            trail.append((label, whole(child.bound)))
            log.info("configuration branching node (%s): bound %.6g, converged %s", label, child.bound,
                     child.converged)
            heapq.heappush(heap, (sign * child.bound, tie, child))
            tie += 1
        if f is None:
            break
    nodes = 1 + budget.used
    leaves = [node.bound for _, _, node in heap] + settled
    if maxi:
        bound = min(root.bound, max(leaves)) if leaves else 0.0
    else:
        bound = max(root_bound, min(whole(b) for b in leaves)) if leaves else math.inf
    return BranchBound(objective, bound, root, nodes, len(heap), not heap,
                       time.perf_counter() - t0, tuple(trail))


__all__ = ["ENUM_LIMIT", "Feature", "Node", "RULES", "allowed", "context", "feature_value", "fractional", "lagrange",
           "price_sets", "price_singles", "ryan_foster", "solve_node"]
