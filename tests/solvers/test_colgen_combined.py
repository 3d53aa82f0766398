"""The column generation's combined Lagrangian bound (`CgOptions.combine`, issue 17 part 1, session 15): the bound at
the best nonnegative combination of the duals priced so far is at least every single point's bound, and every
bound of a generation that uses it stays on the right side of brute force's optimum and of the LP value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.solvers.test_colgen_packing import assert_round_bounds_hold, reference_generations
from tests.solvers.test_exact_properties import SETTINGS, instances
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.cg_lagrange import _combined
from solvers.exact.colgen import column_generation
from stsched.registry import Objective, SolveOptions, Status, run_solver
from stsched.scenarios import random_instance


@SETTINGS
@given(rounds=st.integers(1, 6), layouts=st.integers(1, 5), seed=st.integers(0, 10 ** 6))
def test_combined_bound_is_at_least_each_point(rounds, layouts, seed):
    rng = np.random.default_rng(seed)
    totals = list(rng.uniform(0.5, 2.0, rounds))
    weights = [rng.uniform(0.1, 1.0, layouts) for _ in range(rounds)]
    low = _combined(totals, weights, Objective.MIN_GPUS, 8)
    high = _combined(totals, weights, Objective.MAX_SCALE, 8)
    for s, w in zip(totals, weights):
        assert low >= s / w.max() * (1 - 1e-9)
        assert high <= 8 * w.max() / s * (1 + 1e-9)


def test_two_points_that_bind_different_layouts_combine_to_more():
    """Point 1 is held by layout 0, point 2 by layout 1: their sum is held by neither as much."""
    totals, weights = [1.0, 1.0], [np.array([1.0, 0.5]), np.array([0.5, 1.0])]
    assert _combined(totals, weights, Objective.MIN_GPUS, 4) == pytest.approx(2.0 / 1.5)
    assert _combined(totals, weights, Objective.MAX_SCALE, 4) == pytest.approx(4 * 1.5 / 2.0)


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_combined_round_bounds_never_beat_brute_force(inst, objective):
    known = run_solver("brute", inst, SolveOptions(objective=objective, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    r = column_generation(inst, objective, CgOptions(time_limit_s=20, few_per=1, combine=True, max_rounds=8))
    assert_round_bounds_hold(r, known, objective)


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_combined_reaches_the_same_lp(objective):
    plain, mixed = reference_generations(objective, {"combine": False}, {"combine": True})
    assert plain.converged and mixed.converged
    assert mixed.lp_value == pytest.approx(plain.lp_value, rel=3e-4)



@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_every_combined_bound_stays_on_the_lp_side(monkeypatch, objective):
    """Every round's combined bound is a Lagrangian bound, so it never passes the LP value of the same instance (the
    converged master's value: min-gpus at most it, max-scale at least it), a tighter check than brute force's
    optimum (an integer one on min-gpus), on fixed instances.  A `_combined` scaled 0.2 % the wrong way fails it on
    both objectives (and test_combined_reaches_the_same_lp passes then).  On max-scale the combination beats the
    best single point's bound on these MIG instances (the combined path is exercised); on min-gpus none of 48
    instances tried (12-24 services, seeds 0-7, MPS and MIG, smoothing 0.5 and 0) had a round where it did, so there
    the hand-made points above exercise it."""
    from solvers.exact import colgen

    real, seen = colgen._combined, []

    def recorded(totals, weights, obj, gpus):
        got = real(totals, weights, obj, gpus)
        single = [s / w.max() if obj is Objective.MIN_GPUS else gpus * w.max() / s for s, w in zip(totals, weights)]
        seen.append((got, max(single) if obj is Objective.MIN_GPUS else min(single)))
        return got

    monkeypatch.setattr(colgen, "_combined", recorded)  # (where column_generation calls it; cg_lagrange defines it)
    beat = 0
    for seed, device in ((0, "a100-mig"), (5, "a100-mig"), (3, "a100-mps")):
        inst = random_instance(16, 8, seed, device, arrivals="deterministic")
        lp = column_generation(inst, objective, CgOptions(time_limit_s=60, combine=False))
        assert lp.converged
        seen.clear()
        # (the old interval test: with the parametric one (cg_ratio) the single points' bounds are tighter and no
        # combination beat them on these instances; the combination's validity holds for any proven V_p)
        column_generation(inst, objective, CgOptions(time_limit_s=60, few_per=1, combine=True, max_rounds=12,
                                                     ratio_test=False))
        assert seen
        for mixed, single in seen:
            if objective is Objective.MIN_GPUS:
                assert mixed <= lp.lp_value * (1 + 1e-9), (seed, device, mixed, lp.lp_value)
            else:
                assert mixed >= lp.lp_value * (1 - 1e-9), (seed, device, mixed, lp.lp_value)
                beat += mixed < single * (1 - 1e-6)
    assert beat > 0 or objective is Objective.MIN_GPUS
