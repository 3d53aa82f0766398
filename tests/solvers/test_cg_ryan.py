"""Branch-and-price on configurations (solvers.exact.cg_ryan): the exact pricing under branching rows finds the
best configuration of every size (against enumeration) and never returns a forbidden one; the bound is never beyond
brute force's optimum, never weaker than the column generation's root."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.solvers.test_colgen import pricing_world
from tests.solvers.test_exact_properties import SETTINGS, instances
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.cg_ryan import Feature, allowed, feature_value, price_sets, price_singles, ryan_foster
from solvers.exact.colgen import column_generation
from solvers.exact.patterns import coverage
from stsched.errors import InputError
from stsched.registry import Objective, SolveOptions, Status, run_bound, run_solver
from stsched.scenarios import random_instance


def _value(c, pi, sig, rates, clip):
    return sum(pi[s] * a for s, a in coverage(c, rates, clip).items()) + feature_value(c, sig)


@pytest.mark.parametrize("device,seed", [("a100-mps", 3), ("a100-mig", 2)])
def test_pricing_under_rows_is_exact_and_honours_forbidden_pairs(device, seed):
    inst = random_instance(5, 3, seed, device, arrivals="deterministic")
    data, rates, every = pricing_world(inst)
    rng = np.random.default_rng(seed)
    n = len(rates)
    for trial in range(2):
        pi = rng.uniform(0, 1, n) * (rng.uniform(size=n) < 0.8)
        s, t, a, b = (int(x) for x in rng.choice(n, 4, replace=False))
        rows = ((Feature("pair", s, t), 0.0, 0.0),  # s and t never together
                (Feature("pair", a, b), 1.0, math.inf),  # at least one partition holds a and b
                (Feature("usage", s, size=inst.mechanism.sizes[trial % len(inst.mechanism.sizes)]), 0.0, 2.0),
                (Feature("service", b), 1.0, 3.0))
        sig = {rows[1][0]: float(rng.uniform(0, 0.8)), rows[2][0]: -float(rng.uniform(0, 0.3)),
               rows[3][0]: float(rng.uniform(-0.3, 0.3))}
        for p, sd in data.items():
            ok = [c for c in every if c.size == p and allowed(c, rows)]
            assert all(not (Feature("pair", s, t).count(c)) for c in ok)
            sets = [c for c in ok if len(c.tenants) >= 2]
            v_sets, c = price_sets(inst, sd, pi, sig, rates, 1.0, rows)
            best = max((_value(x, pi, sig, rates, 1.0) for x in sets), default=-math.inf)
            assert v_sets >= best - 1e-9  # a proven upper bound on every allowed set
            if c is not None:
                assert allowed(c, rows) and len(c.tenants) >= 2
                assert not Feature("pair", s, t).count(c)  # the forbidden pair is honoured
                assert _value(c, pi, sig, rates, 1.0) >= best - 1e-6 * max(1.0, abs(best))  # and it is the best
            singles = price_singles(sd, pi, sig, rates, 1.0, rows)
            assert all(allowed(x, rows) for _, x in singles)


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]),
       rule=st.sampled_from(["pairs", "usage"]))
def test_configuration_branching_never_beats_brute_force(inst, objective, rule):
    known = run_solver("brute", inst, SolveOptions(objective=objective, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    b = ryan_foster(inst, objective, CgOptions(time_limit_s=20), max_nodes=7, rule=rule)
    assert b.nodes <= 7
    if objective is Objective.MIN_GPUS:
        assert b.root.integer_bound <= b.bound <= known.objective + 1e-9
    else:
        assert known.objective * (1 - 1e-6) <= b.bound <= b.root.bound + 1e-12


def test_pair_branching_through_the_registry():
    inst = random_instance(5, 3, 1, "a100-mps", arrivals="deterministic")
    known = run_solver("milp", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=30)).result
    plain = run_bound("cg", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=60))
    branched = run_bound("cg", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=60, params=(
        ("bp_nodes", "3"), ("bp_rule", "pairs"))))
    assert (plain.converged or plain.settled) and plain.bound <= branched.bound <= known.objective  # (settled: the
    # whole GPUs of the converged LP; branch-and-price itself runs on the converged LP: no early stop there)
    assert "configurations (pairs" in branched.method
    with pytest.raises(InputError, match="bp_rule"):
        run_bound("cg", inst, SolveOptions(objective=Objective.MAX_SCALE, params=(("bp_rule", "triples"),)))
