"""Diving with re-pricing (solvers.exact.cg_dive): what a step fixes, and that its plan serves every rate and passes
the checker."""

from __future__ import annotations

import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers.exact.cg import _model
from solvers.exact.cg_dive import RepriceOptions, pick, reprice_dive
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.colgen import column_generation
from solvers.exact.plans import gpus_of, to_plan
from stsched.checker import check
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import random_instance


@settings(max_examples=40, deadline=None, derandomize=True)
@given(x=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=30), share=st.floats(0.01, 1.0))
def test_a_step_fixes_every_whole_part_and_rounds_up_the_largest_fractions(x, share):
    x = np.array(x)
    take = pick(x, share)
    whole = np.floor(x + 1e-6)
    frac = [i for i in range(len(x)) if x[i] - whole[i] > 1e-6]
    for i in range(len(x)):
        assert whole[i] <= take.get(i, 0) <= np.ceil(x[i] - 1e-6)  # never below the floor, never above the ceiling
    up = [i for i in frac if take.get(i, 0) > whole[i]]
    assert (len(up) >= 1) == bool(frac)
    if up:  # the rounded-up ones are the largest fractional values
        assert min(x[i] for i in up) >= max((x[i] for i in frac if i not in up), default=-1.0)
    everything = pick(x, share, everything=True)
    assert all(everything.get(i, 0) == np.ceil(x[i] - 1e-6) for i in range(len(x)))


def test_the_dived_plan_serves_every_rate_and_passes_the_checker():
    inst = random_instance(16, 8, 2, "a100-mig", arrivals="deterministic")
    r = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=30))
    data = _model(inst, r)
    res = reprice_dive(data, time.perf_counter() + 60, time.perf_counter, RepriceOptions(share=0.3, rounds=5),
                       CgOptions())
    assert res.counts is not None and res.steps >= 1 and "re-priced diving" in res.note
    plan = to_plan(res.data, gpus_of(res.data, res.counts), Objective.MIN_GPUS, "cg")
    assert check(inst, plan).valid
    assert plan.gpus_used >= r.integer_bound
    # the solver's option runs it and keeps a valid plan
    j = run_solver("cg", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=10,
                                            params=(("reprice", "1"), ("lns_free", "0"), ("max_rounds", "15"))))
    assert j.valid and "re-priced diving" in j.result.message
