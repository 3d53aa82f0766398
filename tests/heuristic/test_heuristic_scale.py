"""The heuristic at scale (issue 17): the first-fit index agrees with a plain scan, the construction's pool keeps
its invariants, the max-scale root search stays in its bracket and finds the crossing of a step function, and
the scale settings (lowered here to small instances so that the test is fast) give checker-valid plans."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.heuristic.construct import Pool
from stsched.heuristic.index import FirstFit
from stsched.heuristic.model import build_context
from stsched.heuristic.options import HeuristicOptions
from stsched.heuristic.scale import BELOW, SPAN, Pilot, Probe, aim, first_alpha, next_alpha, search_scale, work
from stsched.errors import InputError
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import random_instance


def _scan(free: list[float], k: int, x: float, tol: float) -> int | None:
    return next((i for i in range(k, len(free)) if free[i] >= x - tol), None)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["append", "set", "query"]), st.integers(0, 40),
                          st.floats(0.0, 100.0, allow_nan=False)), max_size=80))
def test_first_fit_agrees_with_a_scan(ops):
    ff, free = FirstFit(tol=1e-6), []
    for op, k, x in ops:
        if op == "append":
            assert ff.append(x) == len(free)
            free.append(x)
        elif op == "set" and free:
            ff.set(k % len(free), x)
            free[k % len(free)] = x
        else:
            assert ff.first(k, x) == _scan(free, k, x, 1e-6)
    assert len(ff) == len(free)
    assert all(ff.free(i) == v for i, v in enumerate(free))


def test_pool_keeps_the_first_services_with_demand_in_index_order():
    inst = random_instance(40, 20, 3, "a100-mps", arrivals="deterministic")
    ctx = build_context(inst, HeuristicOptions(scale_above=16, pool=8))
    rem = np.array([inst.service(n).rate for n in ctx.names])
    rem[[0, 5]] = 0.0
    pool = Pool(ctx, rem)
    first = pool.members(rem)
    assert first.tolist() == [i for i in ctx.servable if rem[i] > 0][:8]
    rem[first[:3]] = 0.0  # three are served: the next three in index order join
    second = pool.members(rem).tolist()
    assert second == sorted(second) and len(second) == 8
    assert set(second) == set(first[3:].tolist()) | set([i for i in ctx.servable if rem[i] > 0][5:8])
    assert Pool(build_context(inst, HeuristicOptions()), rem).members(rem) is not None  # 40 <= scale_above: all
    assert HeuristicOptions().pool_for(40) == 0 and HeuristicOptions().pool_for(1024) == 64
    assert HeuristicOptions(effort="full").pool_for(1024) == 0
    assert HeuristicOptions(pool=0).pool_for(1024) == 0 and HeuristicOptions(pool=0).at_scale(1024)
    assert not HeuristicOptions().at_scale(128) and not HeuristicOptions(effort="full").at_scale(1024)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.1, 10.0), st.floats(0.1, 10.0), st.integers(1, 500), st.integers(1, 500),
       st.floats(1e-4, 1e-2))
def test_next_alpha_stays_inside_the_bracket(a, b, n_lo, n_hi, tol):
    lo, hi = Probe(min(a, b), float(min(n_lo, n_hi))), Probe(max(a, b) + 1e-3, float(max(n_lo, n_hi) + 1))
    x = next_alpha(lo, hi, hi, target=lo.gpus + 0.5, upper=20.0, tol=tol)
    assert lo.alpha < x < hi.alpha
    assert next_alpha(lo, None, lo, lo.gpus * 2, 20.0, tol) >= lo.alpha * (1 + tol) or lo.alpha * (1 + tol) > 20
    assert next_alpha(None, hi, hi, 1.0, 20.0, tol) <= hi.alpha * (1 - tol)


@pytest.mark.parametrize("slope,gpus", [(100.0, 128), (37.5, 512), (250.0, 64)])
def test_root_search_finds_the_crossing_of_a_step_function(slope, gpus):
    """N(alpha) = ceil(slope x alpha): the largest alpha that fits G GPUs is G / slope; the search ends within
    tolerance, SPAN (two) GPUs' share of it or `scale_close` of the GPUs (with it), never above it, within its
    probe budget."""
    inst = random_instance(4, gpus, 1, "a100-mps", arrivals="deterministic")
    for close in (0.0, 0.008, 0.05):
        ctx = build_context(inst, HeuristicOptions(scale_close=close))
        _crossing(ctx, slope, gpus, slack=max(SPAN, math.ceil(close * gpus)))


def _crossing(ctx, slope: float, gpus: int, slack: float) -> None:
    calls = []

    def build(demand):
        alpha = float(demand[0])
        calls.append(alpha)
        return [object()] * math.ceil(slope * alpha - 1e-12), np.zeros(1)

    lo, best, spent = search_scale(ctx, build, np.ones(1), upper=2 * gpus / slope, deadline=math.inf, tol=1e-3)
    assert best is not None and len(best) <= gpus and spent == len(calls) <= ctx.opts.scale_probes
    assert lo <= gpus / slope + 1e-12
    assert lo >= (gpus - slack) / slope * (1 - 1e-3)


def test_a_probe_that_fits_close_to_the_gpus_ends_the_search():
    """With `scale_close`, the first probe that fits with at most that share of the GPUs idle is the answer (one
    construction); without it, the search goes on bracketing."""
    inst = random_instance(4, 512, 1, "a100-mps", arrivals="deterministic")
    calls = []

    def build(demand):
        calls.append(float(demand[0]))
        return [object()] * math.ceil(100.0 * float(demand[0]) - 1e-12), np.zeros(1)

    ctx = build_context(inst, HeuristicOptions())  # scale_close 0.008: 509 of 512 GPUs are close enough
    lo, best, spent = search_scale(ctx, build, np.ones(1), upper=10.0, deadline=math.inf, tol=1e-6, first=5.09)
    assert (lo, len(best), spent, calls) == (5.09, 509, 1, [5.09])
    calls.clear()
    plain = build_context(inst, HeuristicOptions(scale_close=0.0))
    lo, best, spent = search_scale(plain, build, np.ones(1), upper=10.0, deadline=math.inf, tol=1e-6, first=5.09)
    assert spent > 1 and lo > 5.09 and len(best) <= 512
    calls.clear()
    lo, best, spent = search_scale(ctx, build, np.ones(1), upper=10.0, deadline=math.inf, tol=1e-6, first=5.0)
    assert spent > 1 and 5.05 <= lo <= 5.12  # 500 GPUs: not close enough, the search moves on


@pytest.mark.parametrize("bad", ["-0.1", "1", "nan"])
def test_scale_close_out_of_range_is_bad_input(bad):
    with pytest.raises(InputError, match="scale_close"):
        HeuristicOptions.from_params({"scale_close": bad})


def test_a_known_probe_costs_no_construction_and_first_is_probed_first():
    inst = random_instance(4, 128, 1, "a100-mps", arrivals="deterministic")
    ctx = build_context(inst, HeuristicOptions())
    calls = []

    def build(demand):
        calls.append(float(demand[0]))
        return [object()] * math.ceil(100.0 * float(demand[0]) - 1e-12), np.zeros(1)

    known = (Probe(1.0, 100.0), [object()] * 100)
    lo, best, spent = search_scale(ctx, build, np.ones(1), upper=2.56, deadline=math.inf, tol=1e-3, known=known)
    assert spent == len(calls) and lo <= 1.28 + 1e-12 and lo >= (128 - SPAN) / 100 * (1 - 1e-3) and 1.0 not in calls
    calls.clear()
    search_scale(ctx, build, np.ones(1), upper=2.56, deadline=math.inf, tol=1e-3, first=1.2)
    assert calls[0] == 1.2


@settings(max_examples=40, deadline=None)
@given(st.floats(0.05, 0.9), st.floats(10.0, 400.0))
def test_first_alpha_hits_the_crossing_of_a_proportional_count(share, per_work):
    """Where the GPUs are proportional to the work (N = c x work), the pilot's estimate is exact: the first probe
    aims at G - 1 GPUs (G + 0.5 without `scale_close`)."""
    inst = random_instance(20, 64, 2, "a100-mps", arrivals="deterministic")
    ctx = build_context(inst, HeuristicOptions())
    base = np.array([inst.service(n).rate for n in ctx.names])
    alpha = 1.3
    full = work(ctx, alpha * base)
    c = per_work / full  # GPUs per unit of work
    pilot = Pilot("greedy", c * share * full, share * full, False)
    a = first_alpha(pilot, alpha, base, ctx)
    assert math.isclose(c * work(ctx, a * base), inst.gpus - BELOW, rel_tol=1e-9) and aim(ctx) == inst.gpus - BELOW
    plain = build_context(inst, HeuristicOptions(scale_close=0.0))
    assert math.isclose(c * work(plain, first_alpha(pilot, alpha, base, plain) * base), inst.gpus + 0.5,
                        rel_tol=1e-9)
    assert first_alpha(Pilot("greedy", math.inf, 1.0, False), alpha, base, ctx) == alpha


@pytest.mark.parametrize("device", ["a100-mps", "a100-mig"])
@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_scale_settings_give_valid_plans(device, objective):
    inst = random_instance(40, 20, 5, device, arrivals="deterministic")
    params = (("scale_above", "16"), ("pool", "8"))
    judged = run_solver("heuristic", inst, SolveOptions(objective=objective, time_limit_s=60, params=params))
    assert judged.valid and judged.result.plan is not None
    assert judged.result.objective is not None and judged.result.objective > 0


def test_the_collector_is_paused_for_the_solve_and_restored_after_it():
    import gc

    from stsched.heuristic.solver import gc_paused

    seen = []
    with gc_paused():
        seen.append(gc.isenabled())
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a caller's own setting is kept
    finally:
        gc.enable()
    with pytest.raises(ZeroDivisionError):
        with gc_paused():
            1 / 0
    assert gc.isenabled()
    inst = random_instance(6, 4, 1, "a100-mps", arrivals="deterministic")
    assert run_solver("heuristic", inst, SolveOptions(objective=Objective.MIN_GPUS)).valid and gc.isenabled()


def test_a_construction_leaves_no_reference_cycles_behind():
    """With the collector paused for the solve, a cycle would keep the context and its memo alive until the
    collector's next pass (the joint choice's recursive closure did: about 0.6 s of collection after a 1,024-MIG
    solve); reference counting alone must free a construction's objects."""
    import gc

    from stsched.heuristic.construct import construct

    ctx = build_context(random_instance(40, 20, 3, "a100-mig", arrivals="deterministic"), HeuristicOptions())
    demand = np.array([ctx.instance.service(n).rate for n in ctx.names])
    gc.collect()
    gc.disable()
    try:
        gpus, rem = construct(ctx, demand)
        assert gpus and not np.any(rem > 0)
        del ctx, gpus, rem
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_max_scale_says_when_the_time_limit_ended_the_search():
    """On 100,000 GPUs the heuristic's max-scale answered "unknown" with "no alpha > 0 found" within a 1 s limit, as
    if no scale could be served; the bisection had been cut by the limit.  The note now says so."""
    import stsched as st

    inst = st.scenario("gpulet-m2", gpus=2000)
    res = st.solve(inst, "heuristic", "max-scale", time_limit=0.001).result
    assert res.status.value == "unknown" and res.plan is None
    assert "time limit" in res.message
