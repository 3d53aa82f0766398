"""Issue 17, the heuristic at scale: the residual repacking (`residual.repack`) keeps every partition valid and
every load served on no more capacity; the best fit's numpy pre-tests choose as the plain scan did; the max-scale
root search takes a repaired probe; the repair of a construction over G GPUs gives checker-valid plans."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stsched.checker import check
from stsched.heuristic.construct import construct
from stsched.heuristic.ctp import _best_fit, _smallest_alone, cover_then_pack
from stsched.heuristic.driver import repair
from stsched.heuristic.fit import EPS, fit_partition, headroom
from stsched.heuristic.model import build_context
from stsched.heuristic.options import HeuristicOptions
from stsched.heuristic.residual import repack
from stsched.heuristic.scale import Probe, search_scale
from stsched.heuristic.state import WGpu, clone, to_plan
from stsched.scenarios import random_instance

_CTX: dict = {}


def _ctx(device: str, seed: int, services: int = 40, **opts):
    key = (device, seed, services, tuple(sorted(opts.items())))
    if key not in _CTX:
        inst = random_instance(services, services // 2, seed, device, arrivals="deterministic")
        _CTX[key] = build_context(inst, HeuristicOptions(scale_above=16, **opts), [s.rate for s in inst.services])
    return _CTX[key]


def _residual_loads(ctx, fractions: list[float]) -> np.ndarray:
    """A residual load per service: a fraction of its best single-tenant capacity at its knee."""
    rem = np.zeros(len(ctx.names))
    for i, f in zip(ctx.servable, fractions):
        rem[i] = f * ctx.cap1[i, ctx.size_index(ctx.knee[i])]
    return rem


def _served(parts) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in parts:
        for i, r in p.tenants:
            out[i] = out.get(i, 0.0) + r
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["a100-mps", "a100-mig"]), st.integers(0, 3),
       st.lists(st.floats(0.02, 0.98), min_size=40, max_size=40), st.integers(1, 40))
def test_repack_keeps_every_partition_valid_and_every_load_served(device, seed, fractions, budget):
    ctx = _ctx(device, seed, repack_budget=budget)
    rem = _residual_loads(ctx, fractions)
    order = sorted((i for i in range(len(rem)) if rem[i] > 0), key=lambda i: -rem[i] / ctx.eff[i])
    before = _best_fit(ctx, rem.copy(), order, utilisation=True)
    assert before is not None
    size, want = sum(p.size for p in before), _served(before)
    after = repack(ctx, before)  # changes the partitions in place
    assert sum(p.size for p in after) <= size + 1e-9  # never more capacity
    got = _served(after)
    assert set(got) == set(want)
    for i, r in want.items():
        assert abs(got[i] - r) <= 1e-6 * max(1.0, r)
    limit = ctx.instance.mechanism.max_tenants
    for p in after:
        services = [i for i, _ in p.tenants]
        assert len(services) == len(set(services)) and all(r > 0 for _, r in p.tenants)
        assert limit is None or len(services) <= limit
        assert p.size in ctx.sizes and (p.procs == 1 or len(services) == 1)
        assert fit_partition(ctx, p.size, p.procs, p.pairs(), [None] * len(p.tenants)) is not None
        assert p.fit is not None and abs(p.fit.duty - fit_partition(ctx, p.size, p.procs, p.pairs(),
                                                                      [None] * len(p.tenants)).duty) <= 1e-9


def test_repack_frees_capacity_on_a_block_of_residuals():
    """Not a vacuous pass: on 40 services' residuals (MPS and MIG) the repacking frees capacity, and with
    `repack_budget=0` it changes nothing."""
    for device in ("a100-mps", "a100-mig"):
        ctx = _ctx(device, 1)
        rem = _residual_loads(ctx, [0.15 + 0.7 * ((7 * k) % 10) / 10 for k in range(40)])
        order = sorted((i for i in range(len(rem)) if rem[i] > 0), key=lambda i: -rem[i] / ctx.eff[i])
        parts = _best_fit(ctx, rem.copy(), order, utilisation=True)
        size = sum(p.size for p in parts)
        assert sum(p.size for p in repack(ctx, clone([WGpu(parts)])[0].parts)) < size
        off = _ctx(device, 1, repack_budget=0)
        assert repack(off, parts) == parts


def _plain_best_fit(ctx, rem, order, utilisation):
    """The best fit as a plain scan over the open partitions (the code before the numpy pre-tests)."""
    limit = ctx.instance.mechanism.max_tenants
    shared, used = [], []
    for i in order:
        need = float(rem[i])
        best = None
        for k, p in enumerate(shared):
            if p.procs > 1 or (limit is not None and len(p.tenants) >= limit) or (i, p.size, 1) not in ctx.exec_ms:
                continue
            c = ctx.capc[i, ctx.size_index(p.size)]
            if utilisation and used[k] + need / (c if c > 0 else float("inf")) > 1.0 + 1e-9:
                continue
            e0 = ctx.suffix_min(i, p.size, 1)
            if p.fit.duty + 2 * e0 > ctx.limit[i] or any(
                    p.fit.duty + e0 + e > ctx.limit[t[0]] for t, e in zip(p.tenants, p.fit.exec_ms)):
                continue
            pairs = p.pairs() + [(i, 0.0)]
            h = headroom(ctx, p.size, 1, pairs, [None] * len(pairs), len(pairs) - 1)
            if h >= need and (best is None or (h - need) / ctx.eff[i] < best[0]):
                best = ((h - need) / ctx.eff[i], k)
        if best is not None:
            p = shared[best[1]]
            p.tenants.append([i, need])
            p.fit = fit_partition(ctx, p.size, 1, p.pairs(), [None] * len(p.tenants))
            if p.fit is not None:
                c = ctx.capc[i, ctx.size_index(p.size)]
                used[best[1]] += need / (c if c > 0 else float("inf"))
                continue
            p.tenants.pop()
            p.fit = fit_partition(ctx, p.size, 1, p.pairs(), [None] * len(p.tenants))
        part = _smallest_alone(ctx, i, need)
        shared.append(part)
        c = ctx.capc[i, ctx.size_index(part.size)]
        used.append(need / (c if c > 0 else float("inf")))
    return shared


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["a100-mps", "a100-mig"]), st.integers(0, 3),
       st.lists(st.floats(0.02, 0.98), min_size=40, max_size=40), st.booleans())
def test_best_fit_masks_choose_as_the_plain_scan(device, seed, fractions, utilisation):
    ctx = _ctx(device, seed)
    rem = _residual_loads(ctx, fractions)
    order = sorted((i for i in range(len(rem)) if rem[i] > 0), key=lambda i: -rem[i] / ctx.eff[i])
    fast = _best_fit(ctx, rem.copy(), order, utilisation)
    plain = _plain_best_fit(ctx, rem.copy(), order, utilisation)
    assert [(p.size, p.procs, p.tenants) for p in fast] == [(p.size, p.procs, p.tenants) for p in plain]


def test_search_takes_a_repaired_probe_without_another_construction():
    """A probe 1 GPU over G that the repair brings onto G fits: the search stops there (close fit)."""
    ctx = _ctx("a100-mps", 0, services=40, scale_close=0.05)
    g = ctx.instance.gpus
    built = []

    def build(demand):
        built.append(float(demand.sum()))
        return [WGpu() for _ in range(g + 1)], np.zeros_like(demand)

    base = np.ones(len(ctx.names))
    lo, best, spent = search_scale(ctx, build, base, 2.0, float("inf"), 1e-3, first=1.0,
                                   repair=lambda gpus: gpus[:g])
    assert (lo, spent, len(best), len(built)) == (1.0, 1, g, 1)
    lo, best, spent = search_scale(ctx, build, base, 2.0, float("inf"), 1e-3, first=1.0,
                                   repair=lambda gpus: None)  # no repair: more probes, nothing fits
    assert spent > 1 and best is None


def test_repair_gives_valid_plans_on_fewer_gpus():
    """Constructions of 200 services (the greedy's and cover-then-pack's) put on one GPU fewer than they needed: where the repair succeeds (on at
    least one of the instances tried, so the test is not vacuous) the plan has the instance's GPUs and passes
    the checker."""
    from dataclasses import replace
    repaired = 0
    for device, seed, kind in (("a100-mps", 5, "greedy"), ("a100-mps", 4, "cover"), ("a100-mig", 5, "greedy")):
        inst = random_instance(200, 100, seed, device, arrivals="deterministic")
        ctx = build_context(inst, HeuristicOptions(), None)
        rates = np.array([inst.service(n).rate for n in ctx.names])
        gpus, rem = (cover_then_pack if kind == "cover" else construct)(ctx, 1.3 * rates)
        assert not np.any(rem > 0)
        small = replace(ctx, instance=replace(inst, gpus=len(gpus) - 1))
        fixed = repair(small, clone(gpus), float("inf"))
        if fixed is None:
            continue
        repaired += 1
        assert len(fixed) <= len(gpus) - 1
        report = check(small.instance, to_plan(small, fixed, 1.3))
        assert report.valid, report.violations[:3]
    assert repaired >= 1


def _headroom_scan(ctx, size, tenants, pos):
    """`fit._headroom` of several one-process tenants as a full scan over the batches (before the pruning)."""
    from stsched.checker import cycle_rate
    from stsched.heuristic.fit import _cycle_fit, _mins, exec_times
    i = tenants[pos][0]
    exs = [exec_times(ctx, j, size, 1, None) for j, _ in tenants]
    mins = [_mins(ctx, j, size, 1, None, ex) for (j, _), ex in zip(tenants, exs)]
    probe = [(j, 0.0 if k == pos else r) for k, (j, r) in enumerate(tenants)]
    base = sum(mins[k][0][0] for k in range(len(tenants)) if k != pos)
    slack = min(ctx.limit[j] - mins[k][0][0] for k, (j, _) in enumerate(tenants) if k != pos)
    best = 0.0
    for bi, e in enumerate(exs[pos]):
        if e is None or 2 * e + base > ctx.limit[i] or e + base > slack:
            continue
        f = _cycle_fit(ctx, size, 1, probe, exs, mins, fixed=(pos, bi))
        if f is not None:
            best = max(best, cycle_rate(ctx.credit[bi], f.duty))
    return best * (1 - EPS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["a100-mps", "a100-mig"]), st.integers(0, 3), st.lists(st.integers(0, 39), min_size=2,
       max_size=3, unique=True), st.lists(st.floats(0.0, 0.5), min_size=3, max_size=3), st.integers(0, 5))
def test_headroom_pruned_by_the_shortest_cycle_equals_the_full_scan(device, seed, members, shares, j):
    ctx = _ctx(device, seed)
    size = ctx.sizes[j % len(ctx.sizes)]
    tenants = [(i, f * ctx.cap1[i, ctx.size_index(size)]) for i, f in zip(members, shares)]
    for pos in range(len(tenants)):
        probe = [(t, r) for t, r in tenants]
        assert headroom(ctx, size, 1, probe, [None] * len(probe), pos) == _headroom_scan(ctx, size, probe, pos)
