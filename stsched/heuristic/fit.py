"""The temporal step inside one partition: batch sizes and the duty cycle of its tenants.

For a partition of size p with `procs` processes and tenants s (rates r_s, execution times e_s(b) including the
worst-case slowdown), docs/RULES.md asks for batches b_s and a duty cycle d with

    d >= sum_s e_s(b_s),   r_s <= procs * 1000 * b_s / d,   d + e_s(b_s) <= budget_s.

Given d, each tenant needs a batch of at least r_s * d / (1000 * procs) (with a `Margin.late_share`: a batch credited
with that many requests, `Margin.credit`, nondecreasing in the batch); the cheapest such batch has execution time
g_s(d) = min_{b >= r_s d / 1000 procs} e_s(b), nondecreasing in d.  Every feasible (d, b) satisfies
f(d) = sum_s g_s(d) <= d, so the least fixed point of f (found by iterating d <- f(d) from d = f(0); each step
raises some tenant's batch) has the shortest cycle and, both sides of the latency rule being nondecreasing in d,
the best latencies: the partition is feasible iff that point meets every latency.  A single tenant under the
measured throughput rule (ParvaGPU's tables) is credited with procs x its measured throughput instead.

Under the Poisson margin a one-process tenant's credit also depends on d (the slack cycles (budget - e) / d) and on
its share of its service's requests (`Context.share_of`; `stsched.queueing`): g_s(d) is then the least e_s(b) over
the batches whose credit at d covers r_s d / 1000, still nondecreasing in d (the credit only shrinks as d grows).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from stsched.checker import cycle_rate
from stsched.heuristic.model import Context
from stsched.layouts import fits
from stsched.queueing import max_rate, slack_cycles

EPS = 1e-9  # relative slack on batch requirements (floating point only; the checker's tolerance is 1e-6)


@dataclass(frozen=True)
class Fit:
    """The operating point of a partition: duty cycle (ms), and per tenant its batch index and execution time."""

    duty: float
    batch_idx: tuple[int, ...]
    exec_ms: tuple[float, ...]


def _mins(ctx: Context, i: int, size: float, procs: int, slow: list[float] | None,
          ex: list[float | None]) -> tuple[list[float], list[int]]:
    """Suffix minima of the execution times (cached for the solo times, which every fit without
    interference shares)."""
    if slow is not None:
        return _suffix_min(ex)
    key = (i, size, procs)
    hit = ctx.suffix_cache.get(key)
    if hit is None:
        hit = ctx.suffix_cache[key] = _suffix_min(ex)
    return hit


def exec_times(ctx: Context, i: int, size: float, procs: int, slow: list[float] | None) -> list[float | None]:
    """Execution time per batch index of service i (conservative slowdown applied), None where unprofiled."""
    base = ctx.exec_ms.get((i, size, procs))
    if base is None:
        return [None] * len(ctx.batches)
    if slow is None:
        return base
    return [None if e is None else e * s for e, s in zip(base, slow)]


def _suffix_min(ex: list[float | None]) -> tuple[list[float], list[int]]:
    """For every batch index j: the least execution time over batches >= j and the index reaching it."""
    n = len(ex)
    best = [float("inf")] * (n + 1)
    arg = [-1] * (n + 1)
    for j in range(n - 1, -1, -1):
        e = ex[j]
        if e is not None and e < best[j + 1]:
            best[j], arg[j] = e, j
        else:
            best[j], arg[j] = best[j + 1], arg[j + 1]
    return best, arg


def _first_at_least(batches: list[int], need: float) -> int:
    """Index of the smallest batch >= need (len(batches) when none)."""
    lim = need * (1 - EPS)
    for j, b in enumerate(batches):
        if b >= lim:
            return j
    return len(batches)


def _single_measured(ctx: Context, i: int, size: float, procs: int, rate: float,
                     ex: list[float | None]) -> Fit | None:
    ml = ctx.mlat[(i, size, procs)]
    limit = ctx.limit[i]
    best: Fit | None = None
    for bi, e in enumerate(ex):
        if e is None or 2 * e > limit:
            continue
        cap = procs * ml[bi] / e if ml[bi] is not None else cycle_rate(ctx.credit[bi], e, procs)
        if cap >= rate * (1 - EPS) and _memory_ok(ctx, size, procs, [(i, bi)]):
            if best is None or e < best.duty:
                best = Fit(e, (bi,), (e,))
    return best


def _tenant_credited(ctx: Context, procs: int) -> bool:
    """Whether tenants are credited by the Poisson margin's per-tenant rule (one process, late_share > 0)."""
    return procs == 1 and ctx.instance.margin.late_share > 0


def _credit(ctx: Context, i: int, bi: int, e: float, d: float, rate: float) -> float:
    """Requests per cycle of `d` ms tenant i at batch index bi (execution e) serving `rate` is credited with."""
    share = 1.0 if ctx.share_of is None or not ctx.share_of[i] > 0 else min(1.0, rate / ctx.share_of[i])
    return ctx.instance.margin.tenant_credit(ctx.batches[bi], ctx.budget[i], e, d, share)


def rate_cap(ctx: Context, i: int, bi: int, e: float, d: float) -> float:
    """The largest rate (req/s) one process of tenant i at batch index bi (execution e) in a cycle of d ms is
    credited with."""
    if not ctx.instance.margin.late_share:
        return cycle_rate(ctx.credit[bi], d)
    cycles = slack_cycles(ctx.budget[i], e, d)
    x = ctx.instance.margin.late_share
    whole = max_rate(ctx.batches[bi], x, cycles, d, 0.0)  # share 1: valid for every share
    total = 0.0 if ctx.share_of is None else ctx.share_of[i]
    return max(whole, max_rate(ctx.batches[bi], x, cycles, d, total)) if total > 0 else whole


def _memory_ok(ctx: Context, size: float, procs: int, tenants: list[tuple[int, int]]) -> bool:
    cap = ctx.slice_memory(size)
    return cap is None or fits(ctx.partition_memory(size, procs, tenants), cap)  # (the checker's memory rule)


def _has_measured(ctx: Context, i: int, size: float, procs: int) -> bool:
    return ctx.measured and any(v is not None for v in ctx.mlat.get((i, size, procs), ()))


_MISS = object()


def _key(kind: str, size: float, procs: int, tenants, slows) -> tuple:
    """The exact inputs of a partition evaluation, hashable (`Context.memo`)."""
    return (kind, size, procs, tuple((i, r) for i, r in tenants),
            tuple(None if s is None else tuple(s) for s in slows))


def fit_partition(ctx: Context, size: float, procs: int, tenants: list[tuple[int, float]],
                  slows: list[list[float] | None]) -> Fit | None:
    """Batches and duty cycle for `tenants` [(service, rate)] in one partition, or None when infeasible."""
    key = _key("fit", size, procs, tenants, slows)
    hit = ctx.memo.get(key, _MISS)
    if hit is _MISS:
        hit = ctx.remember(key, _fit_partition(ctx, size, procs, tenants, slows))
    return hit


def _fit_partition(ctx: Context, size: float, procs: int, tenants: list[tuple[int, float]],
                   slows: list[list[float] | None]) -> Fit | None:
    if not tenants:
        return Fit(0.0, (), ())
    if procs > 1 and len(tenants) > 1:
        return None
    exs = [exec_times(ctx, i, size, procs, s) for (i, _), s in zip(tenants, slows)]
    if len(tenants) == 1 and _has_measured(ctx, tenants[0][0], size, procs):
        return _single_measured(ctx, tenants[0][0], size, procs, tenants[0][1], exs[0])
    mins = [_mins(ctx, i, size, procs, sl, ex) for (i, _), sl, ex in zip(tenants, slows, exs)]
    return _cycle_fit(ctx, size, procs, tenants, exs, mins, fixed=None)


def _cycle_fit(ctx: Context, size: float, procs: int, tenants: list[tuple[int, float]],
               exs: list[list[float | None]], mins: list[tuple[list[float], list[int]]],
               fixed: tuple[int, int] | None) -> Fit | None:
    """Least fixed point of the duty cycle; `fixed` = (tenant position, batch index) pins one tenant's batch."""
    if not _tenant_credited(ctx, procs) and _credit_sorted(ctx):
        return _cycle_fit_plain(ctx, size, procs, tenants, exs, mins, fixed)
    return _cycle_fit_general(ctx, size, procs, tenants, exs, mins, fixed)


def _cycle_fit_general(ctx: Context, size: float, procs: int, tenants: list[tuple[int, float]],
                       exs: list[list[float | None]], mins: list[tuple[list[float], list[int]]],
                       fixed: tuple[int, int] | None) -> Fit | None:
    """`_cycle_fit` for every credit rule (the per-tenant credit of the Poisson margin included)."""
    batches = ctx.credit  # requests per cycle each batch is credited with (the batch itself by default)
    per_tenant = _tenant_credited(ctx, procs)
    n = len(batches)
    limits = [ctx.limit[i] for i, _ in tenants]
    scale = 1000.0 * procs
    d = 0.0
    for _ in range(len(tenants) * n + 2):
        total = 0.0
        picks: list[int] = []
        times: list[float] = []
        for pos, (i, rate) in enumerate(tenants):
            if fixed is not None and pos == fixed[0]:
                bi = fixed[1]
                e = exs[pos][bi]
                if e is None:
                    return None
            elif per_tenant and rate > 0:
                need = rate * d / scale * (1 - EPS)
                e, bi = float("inf"), -1
                for bj, ej in enumerate(exs[pos]):
                    if ej is not None and ej < e and _credit(ctx, i, bj, ej, d, rate) >= need:
                        e, bi = ej, bj
                if bi < 0:
                    return None
            else:
                j = _first_at_least(batches, rate * d / scale) if rate > 0 else 0
                if j >= n:
                    return None
                e, bi = mins[pos][0][j], mins[pos][1][j]
                if bi < 0:
                    return None
            picks.append(bi)
            times.append(e)
            total += e
        for e, limit in zip(times, limits):  # both sides only grow on the way to the fixed point
            if d + e > limit:
                return None
        if total <= d * (1 + 1e-12):
            if any(total + e > limit for e, limit in zip(times, limits)):
                return None
            if not _memory_ok(ctx, size, procs, list(zip((i for i, _ in tenants), picks))):
                return None
            return Fit(total, tuple(picks), tuple(times))
        d = total
    return None


def _credit_sorted(ctx: Context) -> bool:
    """Whether the credits per batch index are nondecreasing (`_cycle_fit_plain` then finds a tenant's batch by
    bisection); cached per context."""
    hit = ctx.suffix_cache.get("credit-sorted")
    if hit is None:
        c = ctx.credit
        hit = ctx.suffix_cache["credit-sorted"] = all(a <= b for a, b in zip(c, c[1:]))
    return hit


def _cycle_fit_plain(ctx: Context, size: float, procs: int, tenants: list[tuple[int, float]],
                     exs: list[list[float | None]], mins: list[tuple[list[float], list[int]]],
                     fixed: tuple[int, int] | None) -> Fit | None:
    """`_cycle_fit` without the per-tenant credit (credits nondecreasing): the same iteration and arithmetic, so
    the same fixed point to the bit, with each tenant's batch found by bisection and what does not depend on
    the cycle (a pinned batch, a tenant at rate 0) taken out of the loop."""
    f = _plain_point(ctx, size, procs, tenants, exs, mins, fixed)
    return f if isinstance(f, Fit) else None


LATENCY = "latency"  # `_plain_point` failed on a rule that only tightens as the pinned tenant's time grows
OTHER = "other"  # it failed on memory (or did not converge): nothing follows for other batches


def _plain_point(ctx: Context, size: float, procs: int, tenants: list[tuple[int, float]],
                 exs: list[list[float | None]], mins: list[tuple[list[float], list[int]]],
                 fixed: tuple[int, int] | None) -> Fit | str:
    """`_cycle_fit_plain`, failures named: LATENCY where a latency budget, the largest batch or the profiled
    batches ran out on the way to the fixed point.  Each of those only gets harder as the cycle grows, and the
    least fixed point grows with the pinned tenant's execution time, so with `fixed` a LATENCY failure holds
    for every batch of that tenant whose execution time is at least as long; OTHER for memory (a batch's
    memory need does not follow its time) and for an iteration that did not converge."""
    batches = ctx.credit
    n = len(batches)
    scale = 1000.0 * procs
    bud = [ctx.limit[i] for i, _ in tenants]
    # per tenant: (constant time, constant batch) or (None, rate, suffix minima, their batches)
    moving: list[tuple[int, float, list[float], list[int]]] = []
    times: list[float] = []
    picks: list[int] = []
    for pos, (i, rate) in enumerate(tenants):
        if fixed is not None and pos == fixed[0]:
            e = exs[pos][fixed[1]]
            if e is None:
                return OTHER
            times.append(e)
            picks.append(fixed[1])
        elif rate > 0:
            moving.append((pos, rate, mins[pos][0], mins[pos][1]))
            times.append(0.0)
            picks.append(-1)
        else:
            if mins[pos][1][0] < 0:
                return LATENCY
            times.append(mins[pos][0][0])
            picks.append(mins[pos][1][0])
    d = 0.0
    lim_f = 1 - EPS
    for _ in range(len(tenants) * n + 2):
        for pos, rate, best, arg in moving:
            j = bisect_left(batches, rate * d / scale * lim_f)
            if j >= n or arg[j] < 0:
                return LATENCY
            times[pos], picks[pos] = best[j], arg[j]
        total = 0.0
        for e in times:
            total += e
        for e, b in zip(times, bud):  # both sides only grow on the way to the fixed point
            if d + e > b:
                return LATENCY
        if total <= d * (1 + 1e-12):
            if any(total + e > b for e, b in zip(times, bud)):
                return LATENCY
            if not _memory_ok(ctx, size, procs, list(zip((i for i, _ in tenants), picks))):
                return OTHER
            return Fit(total, tuple(picks), tuple(times))
        d = total
    return OTHER


def headroom(ctx: Context, size: float, procs: int, tenants: list[tuple[int, float]],
             slows: list[list[float] | None], pos: int, floor: float = 0.0) -> float:
    """The largest rate tenant `pos` can serve with the other tenants' rates unchanged (0 when none).  `floor`:
    the caller only needs the value where it is at least `floor`; below it, a smaller value may be returned (the
    batches that cannot reach `floor` are not tried), so the answer to "h >= floor" and h itself where it is are
    those of the full evaluation.  Memoised without a floor only: the floor's callers (cover-then-pack's best
    fit, a new tenant per call) never ask the same twice (no hit at 1,024 services), so their keys cost more
    than they save."""
    if floor > 0:
        return _headroom(ctx, size, procs, tenants, slows, pos, floor)
    key = _key("headroom", size, procs, tenants, slows) + (pos,)
    hit = ctx.memo.get(key)
    if hit is not None:
        return hit
    return ctx.remember(key, _headroom(ctx, size, procs, tenants, slows, pos))


def _headroom(ctx: Context, size: float, procs: int, tenants: list[tuple[int, float]],
              slows: list[list[float] | None], pos: int, floor: float = 0.0) -> float:
    i = tenants[pos][0]
    exs = [exec_times(ctx, j, size, procs, s) for (j, _), s in zip(tenants, slows)]
    limit = ctx.limit[i]
    best = 0.0
    if len(tenants) == 1:
        ml = ctx.mlat.get((i, size, procs)) if ctx.measured else None
        for bi, e in enumerate(exs[0]):
            if e is None or 2 * e > limit or not _memory_ok(ctx, size, procs, [(i, bi)]):
                continue
            if ml is not None and _has_measured(ctx, i, size, procs):
                cap = procs * ml[bi] / e if ml[bi] is not None else cycle_rate(ctx.credit[bi], e, procs)
            elif _tenant_credited(ctx, procs):
                cap = rate_cap(ctx, i, bi, e, e)
            else:
                cap = cycle_rate(ctx.credit[bi], e, procs)
            best = max(best, cap)
        return best * (1 - EPS)
    if procs > 1:
        return 0.0
    probe = [(j, 0.0 if k == pos else r) for k, (j, r) in enumerate(tenants)]
    mins = [_mins(ctx, j, size, procs, sl, ex) for (j, _), sl, ex in zip(tenants, slows, exs)]
    # the others' shortest possible times bound the cycle from below: a cheap test before each fixed point
    others = [mins[k][0][0] for k in range(len(tenants)) if k != pos]
    base = sum(others)
    slack = min((ctx.limit[j] - mins[k][0][0] for k, (j, _) in enumerate(tenants) if k != pos), default=float("inf"))
    credited = _tenant_credited(ctx, procs)
    order = [(bi, e) for bi, e in enumerate(exs[pos])
             if not (e is None or 2 * e + base > limit or e + base > slack)]
    if not credited:  # the cycle rule's rate at the shortest cycle (base + e) bounds batch bi's: largest first
        ubs = [cycle_rate(ctx.credit[bi], base + e) if base + e > 0 else float("inf") for bi, e in order]
        order = [order[k] for k in sorted(range(len(order)), key=lambda k: -ubs[k])]
        ubs.sort(reverse=True)
    if not credited and _credit_sorted(ctx):
        return _headroom_plain(ctx, size, procs, probe, exs, mins, pos, order, ubs, floor)
    for k, (bi, e) in enumerate(order):
        if not credited and ubs[k] <= max(best, floor):
            break  # no later batch can do better (or reach `floor`): the same maximum as the full scan
        f = _cycle_fit(ctx, size, procs, probe, exs, mins, fixed=(pos, bi))
        if f is None:
            continue
        best = max(best, rate_cap(ctx, i, bi, e, f.duty) if credited else cycle_rate(ctx.credit[bi], f.duty))
    return best * (1 - EPS)


def _headroom_plain(ctx: Context, size: float, procs: int, probe: list[tuple[int, float]],
                    exs: list[list[float | None]], mins: list[tuple[list[float], list[int]]], pos: int,
                    order: list[tuple[int, float]], ubs: list[float], floor: float) -> float:
    """`_headroom`'s scan without the per-tenant credit (`order`: batches by decreasing bound `ubs`), the same
    maximum with fewer fixed points: a batch that fails on latency (`_plain_point`'s LATENCY) fails for every
    batch at least as slow, so the batches the scan may reach (bound above `floor`) are first bisected, by
    execution time, for the slowest that passes; the scan then skips every batch slower than one that failed.
    (Most head-room asked by the best fit is for a partition that cannot take the load at all: one fixed
    point, at the fastest batch, shows it.)"""
    reach = 0
    while reach < len(order) and ubs[reach] > floor:
        reach += 1
    done: dict[int, Fit | str] = {}
    fail = float("inf")  # the shortest execution time known to fail on latency

    def point(bi: int) -> Fit | str:
        hit = done.get(bi)
        if hit is None:
            hit = done[bi] = _plain_point(ctx, size, procs, probe, exs, mins, fixed=(pos, bi))
        return hit

    if reach > 1:
        ranked = sorted(order[:reach], key=lambda t: t[1])
        lo, hi = 0, len(ranked) - 1  # the fastest, the slowest, then bisection while failures say something
        steps = 0
        while lo <= hi:
            mid = lo if steps == 0 else hi if steps == 1 else (lo + hi) // 2
            steps += 1
            bi, e = ranked[mid]
            got = point(bi)
            if got is LATENCY:
                fail = min(fail, e)
                hi = mid - 1
            elif isinstance(got, Fit):
                lo = mid + 1
            else:
                break  # memory: the order says nothing here; the scan decides
    best = 0.0
    for k, (bi, e) in enumerate(order):
        if ubs[k] <= max(best, floor):
            break  # no later batch can do better (or reach `floor`): the same maximum as the full scan
        if e >= fail:
            continue
        got = point(bi)
        if got is LATENCY:
            fail = min(fail, e)
        elif isinstance(got, Fit):
            best = max(best, cycle_rate(ctx.credit[bi], got.duty))
    return best * (1 - EPS)
