"""MIG: the sizes of cover-then-pack's partitions chosen together with the GPUs' layouts (option `size_mix`).

On MIG a GPU holds partitions only in legal layouts, so a multiset of partition sizes that no layout completes
leaves slices idle.  Cover-then-pack's knee partitions are mostly 3g on the A100 data (the most efficient size of 8
of its 11 models) and its residual partitions often too; two 3g slices hold an A100 to 6 of its 7 slices.  At 256
random A100 MIG services (seed 9) its plan left 30 slices of 93 GPUs idle (24 GPUs held (3g, 3g)), while solver
`cg`'s plan of 88 GPUs left 1 idle: it cut residual loads into 2g + 1g partitions that complete (3g, 2g, 1g, 1g)
layouts and served saturated loads with (4g, 3g) GPUs (docs/RESULTS.md, "The heuristic at scale", part 7).

`mix_and_place` re-cuts, after the residual step, every service's single-tenant load (what its partitions that
serve it alone carry: the saturated knee partitions and a residual load served alone) into partitions and chooses
the layouts together with them; the shared partitions (two tenants or more) keep their sizes (letting them take any
size at which their tenants fit was tried: on 256 and 1,024 services, seeds 7-9, no shared partition changed size,
and the fixed points cost a third of the step):

- patterns: per service, multisets of sizes whose best single-tenant capacities (`Context.cap1`) cover its load:
  q knee partitions, q from q0 - `PATTERN_DROP` to q0 (q0: how many its load saturates), and a tail of at most
  `PATTERN_TAIL` partitions of any size covering the rest, minimal (no partition of the tail can be left out);
  multisets that use at least as many slots of every size as another are dropped; the multiset the service has now
  is always one of them.
- the pattern LP: one pattern per service (convexity rows), and how many GPUs take each maximal legal layout
  (`Context.layouts`), such that every size has at least as many slots as partitions, the shared ones included
  (one row per size: a slot of a legal layout holds a partition of its size, and dropping partitions from a legal
  layout leaves it legal, so the counts are exact); minimise the GPUs, then (weight `SLICE_WEIGHT`) the slices
  used.  A basic solution leaves at most one service between patterns per size row.
- rounding: the services the LP gives one pattern keep it; the others and the layout counts are an integer program
  (HiGHS, at most `ROUND_NODES` branch-and-bound nodes: a work limit, so the plan does not depend on the machine;
  the LP and this program also get the solve's time left where the heuristic has a deadline, the safety net).
- the plan: a service whose pattern changed has its load split over the pattern's partitions in proportion to
  their capacities (each then runs at or below its best point, and `construct._single` takes the fewest processes
  that serve it); the others keep their partitions; every GPU of each layout takes one partition per slot while
  partitions of that size are left.  The partitions as they were, packed by their own fewest layout counts (the
  integer program alone, proven the fewest: where it is not, the step gives up), are the fallback: the fewer GPUs
  win, so the step never needs more GPUs than the partitions it was given need on legal layouts (at most what first
  fit decreasing, `slots.place_mig`, needs).

Only on MIG and without interference (a partition's operating point does not depend on its neighbours, so the
partitions can be chosen before the GPUs); elsewhere, or where any step fails, the caller packs as before
(`slots.place_mig`).  The work grows linearly with the services (a few dozen patterns each, one LP whose rows are
the services plus the sizes).
"""

from __future__ import annotations

import itertools
import logging
import math
import time

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

from stsched.heuristic.construct import _single
from stsched.heuristic.fit import EPS
from stsched.heuristic.model import Context
from stsched.heuristic.state import WGpu, WPart, refit_gpu

log = logging.getLogger(__name__)

PATTERN_DROP = 2  # knee partitions a pattern may have fewer than the load saturates
PATTERN_TAIL = 3  # partitions in a pattern's tail (the load beyond its knee partitions)
SLICE_WEIGHT = 1e-3  # the LP's weight on slices used, against 1 per GPU
ROUND_NODES = 2000  # branch-and-bound nodes of the rounding's integer program

Pattern = tuple[int, ...]  # partitions per size index


def applies(ctx: Context) -> bool:
    """Whether the size mix may run on this instance: MIG, no interference, option `size_mix`."""
    return bool(ctx.opts.size_mix and ctx.mig and not ctx.interference and ctx.layouts)


def _tails(m: int) -> tuple[np.ndarray, np.ndarray]:
    """Every multiset of 1..PATTERN_TAIL size indices of m: its counts per size (rows) and its members
    (rows of indices, -1 padded)."""
    combos = [c for t in range(1, PATTERN_TAIL + 1) for c in itertools.combinations_with_replacement(range(m), t)]
    counts = np.zeros((len(combos), m), dtype=int)
    members = -np.ones((len(combos), PATTERN_TAIL), dtype=int)
    for r, c in enumerate(combos):
        for k, j in enumerate(c):
            counts[r, j] += 1
            members[r, k] = j
    return counts, members


def patterns(ctx: Context, i: int, load: float, now: Pattern | None = None) -> list[Pattern]:
    """The patterns of service i's single-tenant `load` (module docstring), `now` among them."""
    m = len(ctx.sizes)
    key = ("mix-tails", m)
    hit = ctx.suffix_cache.get(key)
    if hit is None:
        hit = ctx.suffix_cache[key] = _tails(m)
    counts, members = hit
    caps = np.asarray(ctx.cap1[i], dtype=float)
    usable = caps > 0
    ok_combo = np.all(usable[np.where(members >= 0, members, 0)] | (members < 0), axis=1)
    capsum = counts @ caps
    capmin = np.min(np.where(members >= 0, caps[np.where(members >= 0, members, 0)], np.inf), axis=1)
    k = ctx.size_index(ctx.knee[i])
    ck = caps[k]
    q0 = int(load / ck * (1 + 1e-12)) if ck > 0 else 0
    tol = EPS * max(1.0, load)
    found: set[Pattern] = set()
    for q in range(max(0, q0 - PATTERN_DROP), q0 + 1):
        rest = load - q * ck
        base = np.zeros(m, dtype=int)
        base[k] = q
        if rest <= tol:
            found.add(tuple(base.tolist()))
            continue
        cover = ok_combo & (capsum >= rest - tol) & (capsum - capmin < rest - tol)
        for row in counts[cover]:
            found.add(tuple((base + row).tolist()))
    if now is not None:
        found.add(now)
    pats = sorted(found)
    if len(pats) > 1:  # drop a multiset that uses at least as many slots of every size as another
        arr = np.array(pats)
        le = np.all(arr[:, None, :] <= arr[None, :, :], axis=2)  # le[a, b]: a uses at most what b uses
        np.fill_diagonal(le, False)
        dominated = le.any(axis=0)
        pats = [p for p, d in zip(pats, dominated) if not d or p == now]
    return pats


def _layout_counts(ctx: Context) -> np.ndarray:
    """Slots of each size (columns) per layout (rows)."""
    m = len(ctx.sizes)
    out = np.zeros((len(ctx.layouts), m), dtype=int)
    for r, lay in enumerate(ctx.layouts):
        for s in lay:
            out[r, ctx.size_index(s)] += 1
    return out


def _limits(ctx: Context, **options: object) -> dict[str, object]:
    """HiGHS options with the solve's time left as a time limit where the heuristic has a deadline (a timeout is a
    step that failed: the callers' fallbacks)."""
    if math.isfinite(ctx.deadline):
        options["time_limit"] = max(0.01, ctx.deadline - time.perf_counter())
    return options


def pack_counts(ctx: Context, need: np.ndarray, slots: np.ndarray) -> np.ndarray | None:
    """The fewest GPUs (a count per layout) whose slots hold `need` partitions of each size (an integer program
    of a dozen variables), or None where it is not proven the fewest (stopped at `ROUND_NODES`): a count above the
    fewest could exceed first fit's, which `mix_and_place` must never do."""
    res = milp(np.ones(len(slots)), constraints=LinearConstraint(slots.T.astype(float), need.astype(float), np.inf),
               integrality=np.ones(len(slots)), bounds=Bounds(0, np.inf), options=dict(node_limit=ROUND_NODES))
    if res.status != 0 or res.x is None:
        return None
    return np.round(res.x).astype(int)


def _choose(ctx: Context, groups: list[list[Pattern]], slots: np.ndarray,
            fixed: np.ndarray) -> tuple[list[int], np.ndarray] | None:
    """One pattern per group and the layout counts, besides `fixed` partitions per size: the pattern LP, then its
    rounding (module docstring)."""
    m = len(ctx.sizes)
    sizes = np.asarray(ctx.sizes, dtype=float)
    starts = np.cumsum([0] + [len(g) for g in groups])
    nz = int(starts[-1])
    nl = len(slots)
    pats = np.array([p for g in groups for p in g], dtype=float).reshape(nz, m)
    cost = np.r_[SLICE_WEIGHT * (pats @ sizes), np.ones(nl)]
    owner = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
    r_conv, c_conv = owner, np.arange(nz)
    pr, pc = np.nonzero(pats)
    lr, lc = np.nonzero(slots)
    a = coo_matrix((np.r_[np.ones(nz), pats[pr, pc], -slots[lr, lc].astype(float)],
                    (np.r_[r_conv, len(groups) + pc, len(groups) + lc], np.r_[c_conv, pr, nz + lr])),
                   shape=(len(groups) + m, nz + nl)).tocsr()
    lo = np.r_[np.ones(len(groups)), np.full(m, -np.inf)]
    hi = np.r_[np.ones(len(groups)), -fixed.astype(float)]
    lp = milp(cost, constraints=LinearConstraint(a, lo, hi), integrality=np.zeros(nz + nl), bounds=Bounds(0, np.inf),
              options=_limits(ctx))
    if lp.x is None:
        return None
    z = lp.x[:nz]
    chosen = [-1] * len(groups)
    free: list[int] = []
    for g in range(len(groups)):
        seg = z[starts[g]:starts[g + 1]]
        top = int(np.argmax(seg))
        if seg[top] >= 1 - 1e-6:
            chosen[g] = top
        else:
            free.append(g)
    fixed = fixed.astype(float)
    for g in range(len(groups)):
        if chosen[g] >= 0:
            fixed = fixed + pats[starts[g] + chosen[g]]
    if not free:
        counts = pack_counts(ctx, fixed, slots)
        return None if counts is None else (chosen, counts)
    # the integer program over the fractional groups and the layouts
    cols = [np.arange(starts[g], starts[g + 1]) for g in free]
    sub = np.concatenate(cols)
    nf = len(sub)
    sub_pats = pats[sub]
    cost = np.r_[SLICE_WEIGHT * (sub_pats @ sizes), np.ones(nl)]
    conv = np.zeros((len(free), nf + nl))
    at = 0
    for r, c in enumerate(cols):
        conv[r, at:at + len(c)] = 1.0
        at += len(c)
    size_rows = np.c_[sub_pats.T, -slots.T.astype(float)]
    a = np.r_[conv, size_rows]
    lo = np.r_[np.ones(len(free)), np.full(m, -np.inf)]
    hi = np.r_[np.ones(len(free)), -fixed]
    res = milp(cost, constraints=LinearConstraint(a, lo, hi), integrality=np.ones(nf + nl),
               bounds=Bounds(np.zeros(nf + nl), np.r_[np.ones(nf), np.full(nl, np.inf)]),
               options=_limits(ctx, node_limit=ROUND_NODES))
    if res.x is None:
        return None
    x = np.round(res.x).astype(int)
    at = 0
    for g, c in zip(free, cols):
        pick = np.nonzero(x[at:at + len(c)])[0]
        chosen[g] = int(pick[0]) if len(pick) else 0
        at += len(c)
    return chosen, x[nf:]


def _pieces(ctx: Context, i: int, load: float, pattern: Pattern) -> list[WPart] | None:
    """Service i's `load` split over the partitions of `pattern` in proportion to their capacities."""
    sizes = [j for j, n in enumerate(pattern) for _ in range(n)]
    caps = [float(ctx.cap1[i, j]) for j in sizes]
    total = sum(caps)
    if total < load * (1 - EPS):
        return None
    out = []
    for j, c in zip(sizes, caps):
        part = _single(ctx, i, ctx.sizes[j], min(c, load * c / total))
        if part is None:
            return None
        out.append(part)
    return out


def _assemble(ctx: Context, parts: list[WPart], counts: np.ndarray) -> list[WGpu] | None:
    """GPUs of the counted layouts, each slot taking a partition of its size while any is left; None where a
    partition finds no slot or a GPU does not fit."""
    by_size: dict[int, list[WPart]] = {}
    for p in sorted(parts, key=lambda p: -sum(r for _, r in p.tenants)):
        p.start = None
        by_size.setdefault(ctx.size_index(p.size), []).append(p)
    gpus = []
    for lay, n in zip(ctx.layouts, counts):
        for _ in range(int(n)):
            g = WGpu([by_size[j].pop() for j in map(ctx.size_index, lay) if by_size.get(j)])
            if g.parts:
                gpus.append(g)
    if any(by_size.values()):
        return None
    for g in gpus:
        if not refit_gpu(ctx, g):
            return None
    return gpus


def mix_and_place(ctx: Context, parts: list[WPart]) -> list[WGpu] | None:
    """The partitions `parts` (single-tenant and shared, fitted alone) re-cut and packed onto MIG GPUs (module
    docstring); None where a step fails (the caller then packs `parts` as they are)."""
    m = len(ctx.sizes)
    slots = _layout_counts(ctx)
    load: dict[int, float] = {}
    mine: dict[int, list[WPart]] = {}
    fixed = np.zeros(m, dtype=int)  # the shared partitions' slots, per size
    before = np.zeros(m, dtype=int)
    for p in parts:
        if not p.tenants:
            continue
        j = ctx.size_index(p.size)
        before[j] += 1
        if len(p.tenants) == 1:
            i, r = p.tenants[0]
            load[i] = load.get(i, 0.0) + r
            mine.setdefault(i, []).append(p)
        else:
            fixed[j] += 1
    services = sorted(load)
    groups: list[list[Pattern]] = []
    now: list[Pattern] = []
    for i in services:
        ctx.tick()
        counts = [0] * m
        for p in mine[i]:
            counts[ctx.size_index(p.size)] += 1
        now.append(tuple(counts))
        groups.append(patterns(ctx, i, load[i], now[-1]))
    ctx.tick()
    old = pack_counts(ctx, before, slots)
    if old is None:  # nothing proven to compare a new mix with: first fit packs the partitions as they are
        return None
    got = _choose(ctx, groups, slots, fixed)
    if got is None or old.sum() <= got[1].sum():
        return _assemble(ctx, parts, old)
    chosen, counts = got
    new: list[WPart] = [p for p in parts if len(p.tenants) > 1]
    for g, i in enumerate(services):
        pattern = groups[g][chosen[g]]
        pieces = mine[i] if pattern == now[g] else _pieces(ctx, i, load[i], pattern)
        if pieces is None:
            return _assemble(ctx, parts, old)
        new += pieces
    gpus = _assemble(ctx, new, counts)
    if gpus is None:
        return _assemble(ctx, parts, old)
    log.debug("heuristic: size mix: %d GPUs (the partitions as they were: %d)", len(gpus), int(old.sum()))
    return gpus
