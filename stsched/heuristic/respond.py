"""Best responses of the coordinate descent: the contents of one partition that cover most of what is missing.

A content is a tenant set with the capacity it gives each tenant (`Slot`): a single service at its best
operating point, or a time-shared pair or triple at one of its batch vectors (`shared.share_array`).  Its value
for a vector `need` (req/s still missing per service) and weights `w` (work per request) is
sum_i min(cap_i, need_i) * w_i.  Candidates: every single service, every pair (all pairs, stacked once per
size in a `_Bank`, while the services number at most `descent_bank`, else the pairs of the `descent_pool`
services missing most), and the triples of the first `descent_triples` of those.

The candidate sets of one evaluation are stacked into one array (`_Stack`, cached per size and sets), so an
evaluation is a handful of numpy operations whatever the number of sets; ties are broken exactly as in a stable
sort of the candidates listed in that order (singles, pairs, triples; within each, the first best row).
`Responder` memoises the evaluations of one descent (the same partition size, missing load and weights recur
often: a pair move re-evaluates partitions whose neighbourhood did not change).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from stsched.heuristic.model import Context
from stsched.heuristic.shared import share_array


@dataclass
class Slot:
    """A partition's content in the descent: size index, tenants and the capacity each gets (req/s)."""

    j: int
    tenants: tuple[int, ...] = ()
    caps: tuple[float, ...] = ()


@dataclass
class _Bank:
    """Every time-shared pair of a partition size, stacked: row r is a batch vector of pair set[r]."""

    a: np.ndarray
    b: np.ndarray
    ca: np.ndarray
    cb: np.ndarray
    starts: np.ndarray  # first row of every pair
    pairs: list[tuple[int, int]]


def _bank(ctx: Context, j: int) -> _Bank | None:
    key = ("bank", j)
    if key in ctx.suffix_cache:
        return ctx.suffix_cache[key]
    size = ctx.sizes[j]
    ok = [i for i in range(len(ctx.names)) if ctx.eff[i] > 0 and ctx.capc[i, j] > 0]
    bank = None
    if len(ok) <= ctx.opts.descent_bank:
        parts, pairs, starts, n = [], [], [], 0
        for pair in itertools.combinations(ok, 2):
            rows = share_array(ctx, size, pair)
            if rows.shape[0]:
                parts.append(rows)
                pairs.append(pair)
                starts.append(n)
                n += rows.shape[0]
        if parts:
            rows = np.concatenate(parts)
            sizes = np.diff(np.array(starts + [n]))
            bank = _Bank(np.repeat([p[0] for p in pairs], sizes), np.repeat([p[1] for p in pairs], sizes),
                         rows[:, 0].copy(), rows[:, 1].copy(), np.array(starts), pairs)
    ctx.suffix_cache[key] = bank
    return bank


STACK_ROWS = 1_000_000  # rows kept stacked per instance (48 bytes each), and weighted per descent (24 bytes)


@dataclass
class _Stack:
    """Tenant sets of one size (all of one cardinality) stacked: row r is a batch vector of sets[owner[r]];
    column t of `caps` / `who` holds the capacity / service of every row's t-th tenant."""

    caps: list[np.ndarray]  # per tenant position: capacity of every row
    who: list[np.ndarray]  # per tenant position: service index of every row
    starts: np.ndarray  # first row of every set that has rows
    sets: list[tuple[int, ...]]  # the sets that have rows, in the order given


def _stack(ctx: Context, j: int, sets: tuple[tuple[int, ...], ...]) -> _Stack | None:
    size = ctx.sizes[j]
    caps, starts, kept, n = [], [], [], 0
    for t in sets:
        rows = share_array(ctx, size, t)
        if rows.shape[0] == 0:
            continue
        caps.append(rows)
        starts.append(n)
        kept.append(t)
        n += rows.shape[0]
    if not kept:
        return None
    rows = np.concatenate(caps)
    who = np.concatenate([np.broadcast_to(np.array(t), c.shape) for t, c in zip(kept, caps)])
    k = rows.shape[1]
    return _Stack([rows[:, c].copy() for c in range(k)], [who[:, c].copy() for c in range(k)], np.array(starts),
                  kept)


def _rows(st: _Stack | None) -> int:
    return 0 if st is None else len(st.caps[0])


def _sets(ctx: Context, j: int, need: np.ndarray, w: np.ndarray, ok: np.ndarray,
          banked: bool) -> list[tuple[tuple, _Stack]]:
    """The stacks (with their cache keys) of the tenant sets tried beyond the singles and the bank, in order:
    the pairs of the pool (without a bank), then the triples of its first `descent_triples` services."""
    limit = ctx.instance.mechanism.max_tenants or 3
    if limit < 2:
        return []
    usable = ok & (ctx.capc[:, j] > 0)
    score = np.where(usable, need * w, -1.0).tolist()
    pool = [i for i in sorted(range(len(score)), key=score.__getitem__, reverse=True)[:ctx.opts.descent_pool]
            if score[i] >= 0]  # usable: need * w >= 0, else -1
    out = []
    for k, members in ((2, pool if not banked else []), (3, pool[:ctx.opts.descent_triples] if limit >= 3 else [])):
        if len(members) < k:
            continue
        key = ("stack", j, k, tuple(sorted(members)))
        stacks = ctx.suffix_cache.setdefault("stacks", {})
        if key not in stacks:
            if ctx.suffix_cache.get("stack-rows", 0) > STACK_ROWS:
                stacks.clear()  # bounded memory: rebuilt on demand
                ctx.suffix_cache["stack-rows"] = 0
            stacks[key] = _stack(ctx, j, tuple(itertools.combinations(key[3], k)))
            ctx.suffix_cache["stack-rows"] = ctx.suffix_cache.get("stack-rows", 0) + _rows(stacks[key])
        if stacks[key] is not None:
            out.append((key, stacks[key]))
    return out


def responses(ctx: Context, j: int, need: np.ndarray, w: np.ndarray, k: int = 1) -> list[tuple[float, Slot]]:
    """The k contents of a partition of size index j covering most of `need` (work units, slot), best first,
    one per tenant set (module docstring)."""
    return Responder(ctx, w).evaluate(j, need, k)


def best_response(ctx: Context, j: int, need: np.ndarray, w: np.ndarray) -> tuple[float, Slot]:
    """The content of a partition of size index j covering most of `need` (weighted, then the slot)."""
    return responses(ctx, j, need, w, 1)[0]


def _best(out: list[tuple[float, Slot]], k: int, j: int) -> list[tuple[float, Slot]]:
    out.sort(key=lambda o: -o[0])
    return out[:k] or [(0.0, Slot(j))]


class Responder:
    """`responses` for fixed weights w (until `reweigh`), memoised.  Capacities are kept multiplied by the
    weights: min(c, need) * w == min(c * w, need * w) exactly (rounding is monotone), one product less per row."""

    def __init__(self, ctx: Context, w: np.ndarray):
        self.ctx = ctx
        self.reweigh(w)

    def reweigh(self, w: np.ndarray) -> None:
        self.w = w
        self._memo: dict[tuple, list[tuple[float, Slot]]] = {}
        self._weighted: dict[tuple, list[np.ndarray]] = {}
        self._rows = 0

    def __call__(self, j: int, need: np.ndarray, k: int = 1) -> list[tuple[float, Slot]]:
        key = (j, k, need.tobytes())
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self.evaluate(j, need, k)
        return hit

    def _scaled(self, key: tuple, caps: list[np.ndarray], who: list[np.ndarray]) -> list[np.ndarray]:
        hit = self._weighted.get(key)
        if hit is None:
            self._rows += len(caps[0])
            if self._rows > STACK_ROWS:
                self._weighted.clear()
                self._rows = len(caps[0])
            hit = self._weighted[key] = [c * self.w[i] for c, i in zip(caps, who)]
        return hit

    def evaluate(self, j: int, need: np.ndarray, k: int) -> list[tuple[float, Slot]]:
        ctx, w = self.ctx, self.w
        ok = (w > 0) & (need > 0)
        if not ok.any():
            return [(0.0, Slot(j))]
        nw = need * w
        (cap1w,) = self._scaled(("single", j), [ctx.cap1[:, j]], [slice(None)])
        single = np.where(ok, np.minimum(cap1w, nw), 0.0)
        if k == 1:
            s = int(np.argmax(single))
            out = [(float(single[s]), Slot(j, (s,), (float(ctx.cap1[s, j]),)))] if single[s] > 0 else []
        else:
            out = [(float(single[s]), Slot(j, (int(s),), (float(ctx.cap1[s, j]),)))
                   for s in np.argsort(-single, kind="stable")[:k] if single[s] > 0]
        if (ctx.instance.mechanism.max_tenants or 3) < 2:
            return _best(out, k, j)
        bank = _bank(ctx, j)
        if bank is not None:
            caw, cbw = self._scaled(("bank", j), [bank.ca, bank.cb], [bank.a, bank.b])
            vals = np.minimum(caw, nw[bank.a]) + np.minimum(cbw, nw[bank.b])
            if k == 1:
                r = int(np.argmax(vals))
                if vals[r] > 0:
                    p = int(np.searchsorted(bank.starts, r, side="right")) - 1
                    out.append((float(vals[r]), Slot(j, bank.pairs[p], (float(bank.ca[r]), float(bank.cb[r])))))
            else:
                per = np.maximum.reduceat(vals, bank.starts)
                for p in np.argsort(-per, kind="stable")[:k]:
                    if per[p] <= 0:
                        break
                    lo = bank.starts[p]
                    hi = bank.starts[p + 1] if p + 1 < len(bank.starts) else len(vals)
                    r = lo + int(np.argmax(vals[lo:hi]))
                    out.append((float(per[p]), Slot(j, bank.pairs[p], (float(bank.ca[r]), float(bank.cb[r])))))
        for key, st in _sets(ctx, j, need, w, ok, bank is not None):
            vals = None
            for cw, i in zip(self._scaled(key, st.caps, st.who), st.who):  # tenant by tenant, in order
                v = np.minimum(cw, nw[i])
                vals = v if vals is None else vals + v
            if k == 1:  # every set counts here, even at value 0 (as in the full listing)
                r = int(np.argmax(vals))
                p = int(np.searchsorted(st.starts, r, side="right")) - 1
                out.append((float(vals[r]), Slot(j, st.sets[p], tuple(float(c[r]) for c in st.caps))))
                continue
            per = np.maximum.reduceat(vals, st.starts)
            ends = list(st.starts[1:]) + [len(vals)]
            for p, (lo, hi) in enumerate(zip(st.starts, ends)):
                r = int(lo) + int(np.argmax(vals[lo:hi]))
                out.append((float(per[p]), Slot(j, st.sets[p], tuple(float(c[r]) for c in st.caps))))
        return _best(out, k, j)
