"""Branch-and-price on configurations with cheap nodes and strong branching (solvers.exact.cg_ryan, cg_enum): the
pricing by enumeration is exact under branching rows (the MILP pricing's own test, test_cg_ryan.py, holds its bound
against the same listing), every column of a node honours its rows, and the bound with strong branching is never
beyond brute force's optimum (both objectives) and never weaker than the root's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from solvers.exact.cg_enum import EnumPricer
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.cg_ryan import Feature, _merge, allowed, context, feature_value, fractional, ryan_foster, solve_node
from solvers.exact.colgen import column_generation
from solvers.exact.patterns import coverage
from stsched.registry import Objective, SolveOptions, Status, run_solver
from stsched.scenarios import random_instance
from tests.solvers.test_exact_properties import SETTINGS, instances


def _value(c, pi, sig, rates, clip):
    return sum(pi[s] * a for s, a in coverage(c, rates, clip).items()) + feature_value(c, sig)


@pytest.mark.parametrize("device,seed", [("a100-mps", 3), ("a100-mig", 2)])
def test_enumeration_pricing_is_exact_under_rows(device, seed):
    inst = random_instance(5, 3, seed, device, arrivals="deterministic")
    root = column_generation(inst, Objective.MAX_SCALE, CgOptions(time_limit_s=30))
    ctx = context(inst, Objective.MAX_SCALE, CgOptions(), root, enum_limit=10 ** 5)
    assert ctx.enum is not None
    rng = np.random.default_rng(seed)
    n = len(ctx.rates)
    for trial in range(2):
        pi = rng.uniform(0, 1, n) * (rng.uniform(size=n) < 0.8)
        s, t, a, b = (int(x) for x in rng.choice(n, 4, replace=False))
        size = inst.mechanism.sizes[trial % len(inst.mechanism.sizes)]
        rows = ((Feature("pair", s, t), 0.0, 0.0), (Feature("pair", a, b), 1.0, math.inf),
                (Feature("usage", s, size=size), 0.0, 2.0), (Feature("service", b), 1.0, 3.0),
                (Feature("usage", a, size=size), 0.0, 0.0))
        sig = {rows[1][0]: float(rng.uniform(0, 0.8)), rows[2][0]: -float(rng.uniform(0, 0.3)),
               rows[3][0]: float(rng.uniform(-0.3, 0.3))}
        for p, table in ctx.enum.tables.items():
            ok = [c for c in table.configs if allowed(c, rows)]
            best = max((_value(c, pi, sig, ctx.rates, ctx.clip) for c in ok), default=-math.inf)
            top, cols = ctx.enum.price(p, pi, sig, rows, thr=-math.inf, keep=10 ** 6)
            assert top == pytest.approx(best, rel=1e-9, abs=1e-12)
            assert len(cols) == len(ok) and all(allowed(c, rows) for _, c in cols)
            assert all(v == pytest.approx(_value(c, pi, sig, ctx.rates, ctx.clip), abs=1e-9) for v, c in cols)


def test_every_column_of_a_node_honours_its_rows():
    inst = random_instance(6, 3, 1, "a100-mig", arrivals="deterministic")
    obj = Objective.MAX_SCALE
    root = column_generation(inst, obj, CgOptions(time_limit_s=30))
    ctx = context(inst, obj, CgOptions(), root, enum_limit=10 ** 5)
    top = solve_node(ctx, (), root.configs, root.bound)
    cands = fractional(top, "pairs", 3)
    assert cands
    for f, v in cands:
        for lo, hi in ((0.0, float(math.floor(v))), (float(math.ceil(v)), math.inf)):
            rows = _merge(top.rows, f, lo, hi)
            node = solve_node(ctx, rows, top.columns, top.bound)
            assert node.bound <= top.bound + 1e-12  # a branch holds a subset of its parent's plans
            assert all(allowed(c, rows) for c in node.columns)
            if hi <= 0:  # never together: no column of the node holds the pair
                assert not any(f.count(c) for c in node.columns)


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]),
       rule=st.sampled_from(["pairs", "usage"]), strong=st.sampled_from([2, 4]), enum=st.booleans())
def test_strong_branching_never_beats_brute_force(inst, objective, rule, strong, enum):
    known = run_solver("brute", inst, SolveOptions(objective=objective, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    b = ryan_foster(inst, objective, CgOptions(time_limit_s=20), max_nodes=9 if enum else 5, rule=rule,
                    enum_limit=10 ** 5 if enum else 0, strong=strong)
    assert b.nodes <= (9 if enum else 5)
    if objective is Objective.MIN_GPUS:
        assert b.root.integer_bound <= b.bound <= known.objective + 1e-9
    else:
        assert known.objective * (1 - 1e-6) <= b.bound <= b.root.bound + 1e-12


def test_enumeration_gives_way_to_the_milp_past_its_limit():
    inst = random_instance(5, 3, 3, "a100-mps", arrivals="deterministic")
    rates = np.array([s.rate for s in inst.services])
    from solvers.exact.cg_common import pricing_setup
    from solvers.exact.patterns import enumerate_layouts

    setup = pricing_setup(inst, enumerate_layouts(inst, maximal=True, limit=10 ** 6), CgOptions())
    assert EnumPricer.build(inst, setup.timer, rates, 1.0, limit=5) is None
    assert EnumPricer.build(inst, setup.timer, rates, 1.0) is not None
