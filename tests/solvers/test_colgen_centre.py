"""The column generation's stability centre and pricing points (issue 17, part 1): the layout LP's duals as the
first centre (with the fixed or the automatic Wentges weight) and the box-step stabilisation
(solvers/exact/cg_box.py).  Whatever point is priced, every round's Lagrangian bound stays on the right side of
brute force's optimum, and the generation reaches the same LP value as the plain one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.solvers.test_colgen_packing import assert_round_bounds_hold
from tests.solvers.test_exact_properties import SETTINGS, instances
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.cg_master import layout_lp, layout_lp_duals
from solvers.exact.colgen import column_generation
from solvers.exact.patterns import enumerate_layouts
from stsched.registry import Objective, SolveOptions, Status, run_solver
from stsched.scenarios import random_instance

VARIANTS = [dict(anchor="all"), dict(anchor="all", auto_smoothing=True), dict(anchor="none"), dict(box=0.05),
            dict(box=0.2, smoothing=0.0)]
# every point a round may price: the variants above, the automatic Wentges weight with the default centre, and a
# refinement budget that runs out and doubles (test_cg_stabilise: the budget's own test)
POINTS = VARIANTS + [dict(auto_smoothing=True), dict(refine=2, max_refine=64)]


@settings(SETTINGS, max_examples=30)  # three earlier tests of 10 examples each, now one over the variants
@given(inst=instances(), objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]),
       variant=st.sampled_from(POINTS))
def test_every_round_bound_is_valid_whatever_point_is_priced(inst, objective, variant):
    known = run_solver("brute", inst, SolveOptions(objective=objective, time_limit_s=10)).result
    assume(known.status is Status.OPTIMAL)
    r = column_generation(inst, objective, CgOptions(time_limit_s=20, few_per=1, **variant))
    assert_round_bounds_hold(r, known, objective)


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_stabilised_generations_reach_the_plain_lp(objective):
    inst = random_instance(16, 8, 5, arrivals="deterministic")
    plain = column_generation(inst, objective, CgOptions(time_limit_s=60, smoothing=0.0))
    assert plain.converged
    for variant in VARIANTS:
        r = column_generation(inst, objective, CgOptions(time_limit_s=60, **variant))
        assert r.converged, variant
        assert r.lp_value == pytest.approx(plain.lp_value, rel=3e-4), variant
        assert r.bound == pytest.approx(plain.bound, rel=3e-4), variant


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_layout_lp_duals_are_the_layout_lps(objective):
    """The first centre: duals of the layout LP (one per service of the instance, >= 0; a service of rate 0 gets 0)
    with the LP's value; max-scale's coverage duals sum to one (the alpha column)."""
    inst = random_instance(12, 6, 3, arrivals="deterministic")
    layouts = tuple(enumerate_layouts(inst, maximal=True, limit=10 ** 6))
    active = list(range(len(inst.services)))
    value, pi, mu = layout_lp_duals(inst, objective, layouts, active)
    assert value == layout_lp(inst, objective, layouts, active)
    assert pi.shape == (len(inst.services),) and np.all(pi >= 0) and pi.sum() > 0
    assert set(mu) == set(inst.mechanism.sizes)
    if objective is Objective.MAX_SCALE:
        assert pi.sum() == pytest.approx(1.0, rel=1e-6)
    else:
        assert pi.sum() == pytest.approx(value, rel=1e-6)  # LP duality: every coverage row asks for 1


def test_unknown_anchor_is_refused_before_any_work():
    from stsched.errors import InputError

    inst = random_instance(4, 2, 1, arrivals="deterministic")
    with pytest.raises(InputError, match="anchor"):
        column_generation(inst, Objective.MAX_SCALE, CgOptions(anchor="sometimes"))


def test_anchor_param_of_the_cg_solver():
    """`--param anchor=...` reaches the column generation; another value is bad input."""
    from stsched.errors import InputError
    from stsched.registry import run_bound

    inst = random_instance(8, 4, 2, arrivals="deterministic")
    a, b = (run_bound("cg", inst, SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=30,
                                               params=(("anchor", x),))) for x in ("none", "all"))
    assert a.converged and b.converged and b.lp_value == pytest.approx(a.lp_value, rel=3e-4)
    with pytest.raises(InputError, match="anchor"):
        run_bound("cg", inst, SolveOptions(time_limit_s=1, params=(("anchor", "often"),)))
