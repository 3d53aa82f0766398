"""The heuristic's speed-ups change nothing: the stacked, weighted, memoised best responses of the descent equal a
literal enumeration of the candidates, a memo emptied at every step gives the same plans, and the memoised GPU
builds hand out fresh copies."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stsched.heuristic import model, respond
from stsched.heuristic.construct import build_gpu
from stsched.heuristic.model import build_context
from stsched.heuristic.options import HeuristicOptions
from stsched.heuristic.respond import Responder, Slot, _bank, responses
from stsched.heuristic.shared import share_array
from stsched.scenarios import parvagpu, random_instance
from stsched.registry import Objective, SolveOptions, run_solver

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.lru_cache(maxsize=None)
def _ctx(name: str):
    if name == "parvagpu":  # A100 MIG, measured throughput, 6 services, time sharing allowed
        return build_context(parvagpu(1), HeuristicOptions())
    if name == "mps":
        return build_context(random_instance(5, 3, 0, device="a100-mps", arrivals="deterministic"), HeuristicOptions())
    # too many services for the bank: the pairs of the pool are enumerated instead
    return build_context(random_instance(5, 3, 1, device="v100-mps", arrivals="deterministic"),
                         HeuristicOptions(descent_bank=2))


def _literal(ctx, j: int, need: np.ndarray, w: np.ndarray, k: int) -> list[tuple[float, Slot]]:
    """Every candidate listed one by one in plain Python, sorted stably by value (the definition)."""
    n = len(need)
    ok = [w[i] > 0 and need[i] > 0 for i in range(n)]
    if not any(ok):
        return [(0.0, Slot(j))]

    def value(tenants, caps):
        v = 0.0
        for i, c in zip(tenants, caps):
            v += min(c, need[i]) * w[i]
        return v

    def first_best(tenants):
        rows = share_array(ctx, ctx.sizes[j], tenants)
        vals = [value(tenants, r) for r in rows]
        m = max(range(len(vals)), key=lambda r: (vals[r], -r))
        return vals[m], Slot(j, tenants, tuple(float(x) for x in rows[m]))

    single = [min(ctx.cap1[i, j], need[i]) * w[i] if ok[i] else 0.0 for i in range(n)]
    order = sorted(range(n), key=lambda i: -single[i])
    out = [(single[i], Slot(j, (i,), (float(ctx.cap1[i, j]),))) for i in order[:k] if single[i] > 0]
    limit = ctx.instance.mechanism.max_tenants or 3
    if limit < 2:
        return sorted(out, key=lambda o: -o[0])[:k] or [(0.0, Slot(j))]
    usable = [ok[i] and ctx.capc[i, j] > 0 for i in range(n)]
    pool = [i for i in sorted(range(n), key=lambda i: -(need[i] * w[i] if usable[i] else -1.0))
            [:ctx.opts.descent_pool] if usable[i]]
    sets = []
    bank = _bank(ctx, j)
    if bank is not None:
        best = [first_best(p) for p in bank.pairs]
        for p in sorted(range(len(best)), key=lambda p: -best[p][0])[:k]:
            if best[p][0] <= 0:
                break
            out.append(best[p])
    else:
        sets = list(itertools.combinations(sorted(pool), 2))
    if limit >= 3:
        sets += list(itertools.combinations(sorted(pool[:ctx.opts.descent_triples]), 3))
    out += [first_best(t) for t in sets if share_array(ctx, ctx.sizes[j], t).shape[0]]
    return sorted(out, key=lambda o: -o[0])[:k] or [(0.0, Slot(j))]


@SETTINGS
@given(name=st.sampled_from(["parvagpu", "mps", "pool"]), data=st.data(), k=st.sampled_from([1, 3]))
def test_best_responses_equal_the_literal_enumeration(name, data, k):
    ctx = _ctx(name)
    n, m = len(ctx.names), len(ctx.sizes)
    j = data.draw(st.integers(0, m - 1))
    scale = float(np.max(ctx.cap1[:, j])) or 1.0
    need = np.array(data.draw(st.lists(st.one_of(st.just(0.0), st.floats(0.0, 2 * scale)), min_size=n, max_size=n)))
    w = np.array(data.draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-4, 10.0)), min_size=n, max_size=n)))
    want = _literal(ctx, j, need, w, k)
    assert responses(ctx, j, need, w, k) == want
    memo = Responder(ctx, w)
    assert memo(j, need, k) == want and memo(j, need.copy(), k) == want  # the second one from the memo


@pytest.mark.parametrize("spec", ["parvagpu:1", "random:v100-mps:5:3:0"])
def test_an_emptied_memo_gives_the_same_plan(spec, monkeypatch):
    kind, *args = spec.split(":")
    instance = parvagpu(int(args[0])) if kind == "parvagpu" else random_instance(
        int(args[1]), int(args[2]), int(args[3]), device=args[0], arrivals="deterministic")
    opts = SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=60)
    plain = run_solver("heuristic", instance, opts).result
    monkeypatch.setattr(model, "MEMO_LIMIT", 1)  # every evaluation recomputed
    monkeypatch.setattr(respond, "STACK_ROWS", 1)  # every stack of tenant sets rebuilt
    emptied = run_solver("heuristic", instance, opts).result
    assert plain.plan is not None and emptied.plan is not None
    assert emptied.plan.gpus == plain.plan.gpus


def test_memoised_gpu_builds_are_fresh_copies():
    ctx = build_context(parvagpu(2), HeuristicOptions())
    demand = np.array([ctx.instance.service(n).rate for n in ctx.names])
    first, value = build_gpu(ctx, demand)
    snapshot = [(p.size, [list(t) for t in p.tenants]) for p in first.parts]
    first.parts[0].tenants[0][1] = -1.0  # the search changes GPUs in place
    first.parts.pop()
    again, again_value = build_gpu(ctx, demand)
    assert again is not first and again_value == value
    assert [(p.size, [list(t) for t in p.tenants]) for p in again.parts] == snapshot
