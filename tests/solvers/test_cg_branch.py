"""Branch-and-price on the slot and layout counts (solvers.exact.cg_branch): its bound is never beyond an optimum,
never weaker than the column generation's, and a branch that holds no plan is bounded as such."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.solvers.test_exact_properties import SETTINGS, instances
from solvers.exact.cg_branch import branch_and_price
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.colgen import column_generation
from solvers.exact.patterns import enumerate_layouts
from stsched.errors import InputError
from stsched.registry import Objective, SolveOptions, Status, run_bound, run_solver
from stsched.scenarios import random_instance


@SETTINGS
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_branch_bound_never_beats_brute_force(inst, objective):
    known = run_solver("brute", inst, SolveOptions(objective=objective, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    b = branch_and_price(inst, objective, CgOptions(time_limit_s=20), max_nodes=7)
    assert b.nodes <= 7 and len(b.trail) == b.nodes
    if objective is Objective.MIN_GPUS:
        assert b.root.integer_bound <= b.bound <= known.objective + 1e-9
    else:
        assert known.objective * (1 - 1e-6) <= b.bound <= b.root.bound + 1e-12


def test_branching_tightens_a_max_scale_bound_and_reports_it():
    inst = random_instance(8, 4, 1, "a100-mig", arrivals="deterministic")
    opts = SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=60)
    plain = run_bound("cg", inst, opts)
    branched = run_bound("cg", inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=60,
                                                  params=(("bp_nodes", "12"),)))
    assert plain.converged and branched.bound <= plain.bound
    assert "branch-and-price" in branched.method and "branch-and-price" not in plain.method
    with pytest.raises(InputError, match="bp_nodes"):
        run_bound("cg", inst, SolveOptions(objective=Objective.MAX_SCALE, params=(("bp_nodes", "-1"),)))


def test_a_branch_without_plans_is_bounded_as_such():
    inst = random_instance(8, 4, 1, "a100-mps", arrivals="deterministic")
    every = {i: 1.0 for i in range(len(enumerate_layouts(inst, maximal=True, limit=10 ** 6)))}
    none_gpu = ((every, -math.inf, 0.0),)  # no GPU at all: nothing is served
    r = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=30), y_rows=none_gpu)
    assert r.bound == math.inf
    too_many = ((every, float(inst.gpus + 1), math.inf),)  # more GPUs than the instance has
    r = column_generation(inst, Objective.MAX_SCALE, CgOptions(time_limit_s=30), y_rows=too_many)
    assert r.bound == 0.0 and r.converged
