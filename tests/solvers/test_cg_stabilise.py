"""The column generation's automatic dual smoothing (solvers.exact.cg_stabilise): the weight rule moves as the
subgradient says, every Lagrangian bound of every round stays on the right side of brute force's optimum with it,
and the adapted and fixed-weight generations reach the same LP value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.solvers.test_colgen_packing import reference_generations
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.cg_stabilise import AutoSmoothing, ascent_towards_master
from solvers.exact.colgen import column_generation
from solvers.exact.patterns import Config
from stsched.registry import Objective
from stsched.scenarios import random_instance


@given(a=st.floats(0.0, 1.0), ascent=st.booleans())
def test_weight_rule_moves_towards_the_master_on_ascent_and_stays_in_range(a, ascent):
    rule = AutoSmoothing()
    nxt = rule.update(a, ascent)
    assert rule.low <= nxt <= rule.high
    if ascent and a - rule.step >= rule.low:
        assert nxt == pytest.approx(a - rule.step)
    if not ascent and a < rule.high:
        assert nxt >= a


def test_ascent_sign_follows_the_subgradient():
    """Two services, one size of 1/2 (layout: two slots).  The best configuration at the pricing point covers
    service 0 only.  min-gpus: g = 1 - K * 2 * a_c; moving duals towards service 1 (uncovered) ascends, moving them
    towards service 0 (covered twice per GPU) descends.  max-scale: the opposite sign convention (minimised)."""
    c = Config(0.5, 1, ((0, 1),), (1.0,), 1.0)
    best, ub, layouts = {0.5: c}, {0.5: 1.0}, ((0.5, 0.5),)

    def value(cfg: Config, x: np.ndarray) -> float:  # coverage 1 of service 0
        return float(x[0])

    sep = np.array([0.5, 0.5])
    assert ascent_towards_master(np.array([0.5, 0.8]), sep, best, ub, layouts, value, True, 1.0)
    assert not ascent_towards_master(np.array([0.8, 0.5]), sep, best, ub, layouts, value, True, 1.0)
    assert ascent_towards_master(np.array([0.4, 0.6]), sep, best, ub, layouts, value, False, 1.0)
    assert not ascent_towards_master(np.array([0.6, 0.4]), sep, best, ub, layouts, value, False, 1.0)


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_auto_smoothing_reaches_the_same_lp(objective):
    fixed, auto = reference_generations(objective, {"auto_smoothing": False}, {"auto_smoothing": True})
    assert fixed.converged and auto.converged
    assert auto.lp_value == pytest.approx(fixed.lp_value, rel=3e-4)
    assert auto.bound == pytest.approx(fixed.bound, rel=3e-4)


def test_refinement_budget_doubles_when_it_runs_out(caplog):
    inst = random_instance(16, 8, 5, arrivals="deterministic")
    with caplog.at_level("INFO", logger="solvers.exact.colgen"):
        r = column_generation(inst, Objective.MIN_GPUS, CgOptions(max_rounds=30, refine=4, max_refine=64, few_per=1))
    budgets = [int(m.split("refine ")[1].split(",")[0]) for m in caplog.messages if m.startswith("round ")]
    assert budgets[0] >= 4 and max(budgets) > 4  # four steps cannot price 16 services' sets: it was raised
    assert all(b2 >= b1 for b1, b2 in zip(budgets, budgets[1:]))
    full = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=60))
    assert r.bound <= full.lp_value + 1e-9
