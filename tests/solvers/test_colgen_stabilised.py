"""The column generation's stabilisation and exact pricing: the knapsack bound behind the pricing covers every
set of tenants, smoothed duals still give a bound never above an optimum, and the smoothed and plain generations
reach the same LP value."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.solvers.test_exact_properties import SETTINGS, instances
from solvers.exact.cg_pricing import CgOptions, _suffix_dp
from solvers.exact.colgen import column_generation
from stsched.errors import InputError
from stsched.registry import Objective, SolveOptions, Status, run_bound, run_solver
from stsched.scenarios import random_instance


@SETTINGS
@given(data=st.lists(st.tuples(st.integers(0, 4), st.floats(0.05, 3.0), st.floats(0.0, 2.0)), min_size=1,
                     max_size=9),
       cap=st.floats(0.1, 6.0), units=st.sampled_from([4, 16, 64]), core=st.sampled_from([0, 1, 2, 3]))
def test_knapsack_bound_covers_every_set(data, cap, units, core):
    """g[0, units] is at least the value of every set of items, one per service, whose times fit in `cap`, with
    the DP over every service or over a core of the densest (the rest bounded fractionally); every suffix row
    bounds the sets of its services too (the branch and bound prunes with them)."""
    svc = np.array([s for s, _, _ in data])
    e = np.array([t for _, t, _ in data])
    v = np.array([x for _, _, x in data])
    pts, vals, times, first, tables, delta = _suffix_dp(svc, e, v, np.arange(len(data)), cap, units, core)
    g = tables.dense()
    assert _suffix_dp(svc, e, v, np.arange(len(data)), cap, units, core, full=False) == pytest.approx(g[0])
    exact = _suffix_dp(svc, e, v, np.arange(len(data)), cap, units)[4].dense()
    if core == 0 or core >= len(first) - 1:
        assert g[0, -1] == pytest.approx(exact[0, -1])
    services = [sorted(set(pts[first[k]:first[k + 1]].tolist())) for k in range(len(first) - 1)]
    for k in range(len(first) - 1):  # row k bounds every set of the services at positions k.. within its units
        allowed = {int(svc[i]) for ks in services[k:] for i in ks}
        for c in (0, len(g[0]) // 2, len(g[0]) - 1):
            for r in range(1, min(len(data), 4) + 1):
                for combo in itertools.combinations(range(len(data)), r):
                    if len({svc[i] for i in combo}) == r and {int(svc[i]) for i in combo} <= allowed \
                            and sum(np.floor(e[i] / delta + 1e-9) for i in combo) <= c \
                            and sum(e[i] for i in combo) <= (c + 1) * delta:
                        assert g[k, c] >= sum(v[i] for i in combo) - 1e-9
    best = 0.0
    for r in range(1, len(data) + 1):
        for combo in itertools.combinations(range(len(data)), r):
            if len({svc[i] for i in combo}) == r and sum(e[i] for i in combo) <= cap:
                best = max(best, sum(v[i] for i in combo))
    assert g[0, -1] >= best - 1e-9
    assert np.all(np.diff(g, axis=1) >= -1e-12)  # more units never hurt
    assert np.all(g[:-1] >= g[1:] - 1e-12)  # more services never hurt
    assert len(first) - 1 <= len(set(svc.tolist()))


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]),
       smoothing=st.sampled_from([0.3, 0.5, 0.8]))
def test_smoothed_bound_never_beats_brute_force(inst, objective, smoothing):
    known = run_solver("brute", inst, SolveOptions(objective=objective, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    r = column_generation(inst, objective, CgOptions(time_limit_s=20, smoothing=smoothing))
    if objective is Objective.MIN_GPUS:
        assert r.bound <= known.objective + 1e-9
    else:
        assert r.bound >= known.objective * (1 - 1e-6)


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_core_pricing_bound_never_beats_brute_force(inst, objective):
    """The knapsack DP over a core of one service (the rest bounded fractionally), forced on tiny instances."""
    known = run_solver("brute", inst, SolveOptions(objective=objective, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    r = column_generation(inst, objective, CgOptions(time_limit_s=20, core=1, core_above=0))
    if objective is Objective.MIN_GPUS:
        assert r.bound <= known.objective + 1e-9
    else:
        assert r.bound >= known.objective * (1 - 1e-6)


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_smoothing_reaches_the_same_lp(objective):
    inst = random_instance(16, 8, 7, arrivals="deterministic")
    plain = column_generation(inst, objective, CgOptions(time_limit_s=60, smoothing=0.0))
    smooth = column_generation(inst, objective, CgOptions(time_limit_s=60, smoothing=0.5))
    assert plain.converged and smooth.converged
    assert smooth.lp_value == pytest.approx(plain.lp_value, rel=3e-4)
    for r in (plain, smooth):  # converged: the bound is within the tolerance of the LP value, on the right side
        assert abs(r.bound - r.lp_value) <= 2e-4 * r.lp_value
        assert (r.bound <= r.lp_value + 1e-9) if objective is Objective.MIN_GPUS else (r.bound >= r.lp_value - 1e-9)


def test_cpu_clock_limit_gives_a_valid_bound():
    inst = random_instance(16, 8, 7, arrivals="deterministic")
    full = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60))
    short = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=1e-3, clock="cpu"))
    assert not short.converged and short.bound <= full.lp_value + 1e-9
    assert short.rounds == 0  # the preparation spent the time: the layout LP stands
    b = run_bound("cg", inst, SolveOptions(time_limit_s=1e-3, params=(("clock", "cpu"),)))
    assert b.lp_value is None and not b.converged and b.bound <= full.integer_bound
    with pytest.raises(InputError, match="clock"):
        run_bound("cg", inst, SolveOptions(time_limit_s=1, params=(("clock", "sundial"),)))
    with pytest.raises(InputError, match="clock"):
        column_generation(inst, Objective.MIN_GPUS, CgOptions(clock="moon"))


def test_diving_gives_a_checked_plan_that_covers_every_service():
    """cg without a warm start: the diving's rounded counts make a plan the checker accepts, never below the bound."""
    from solvers.exact.cg import _model
    from solvers.exact.diving import dive
    from solvers.exact.plans import gpus_of, to_plan
    from stsched.checker import check

    inst = random_instance(16, 8, 7, arrivals="deterministic")
    r = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60))
    data = _model(inst, r)
    counts, note = dive(data, deadline=float("inf"))
    assert counts is not None, note
    plan = to_plan(data, gpus_of(data, counts), Objective.MIN_GPUS, "cg")
    assert check(inst, plan).valid
    assert plan.gpus_used >= r.integer_bound and plan.gpus_used == sum(counts.layouts.values())
    got = run_solver("cg", inst, SolveOptions(time_limit_s=30, params=(("warm", "none"), ("dive", "1"))))
    assert got.valid and "diving:" in got.result.message
    assert got.result.objective <= plan.gpus_used  # the integer master starts from the dived plan
