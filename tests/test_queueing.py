"""Poisson credit per batch (stsched.queueing) and the heuristic's `late_share` rule that uses it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.check import check
from stsched.errors import InputError
from stsched.queueing import batch_credit, overflow
from stsched.scenarios import random_instance
from stsched.simulate import ArrivalSpec, SimOptions, simulate
from stsched.simulate.robust import AttainmentOptions, plan_for_attainment
from stsched.solve import SolveOptions, run_solver
from stsched.timing import cycle_ms, gpu_timings


def brute_overflow(lam: float, b: int) -> float:
    p, total = math.exp(-lam), 0.0
    for n in range(400):
        total += max(0, n - b) * p
        p *= lam / (n + 1)
    return total


@pytest.mark.parametrize("lam,b", [(0.3, 1), (1.0, 2), (3.7, 4), (20.0, 16), (50.0, 64)])
def test_overflow_is_the_poisson_expectation(lam, b):
    assert overflow(lam, b) == pytest.approx(brute_overflow(lam, b), rel=1e-9, abs=1e-12)


def test_credit_closed_forms_and_order():
    assert batch_credit(4, 0.0) == 4.0
    # b = 1: lam - 1 + exp(-lam) = share x lam
    lam = batch_credit(1, 0.01)
    assert lam - 1 + math.exp(-lam) == pytest.approx(0.01 * lam, rel=1e-6)
    credits = [batch_credit(b, 0.02) for b in (1, 2, 4, 8, 16, 32, 64, 128)]
    assert credits == sorted(credits) and all(c <= b for c, b in zip(credits, (1, 2, 4, 8, 16, 32, 64, 128)))
    assert batch_credit(8, 0.01) < batch_credit(8, 0.05) <= 8
    for b in (1, 3, 8, 32):
        c = batch_credit(b, 0.05)
        assert c == b or overflow(c, b) == pytest.approx(0.05 * c, rel=1e-6)


@pytest.mark.parametrize("b,share", [(0, 0.1), (4, -0.1), (4, 1.0)])
def test_credit_bad_input(b, share):
    with pytest.raises(InputError):
        batch_credit(b, share)


def _solve(instance, share: float | None):
    params = (("late_share", str(share)),) if share is not None else ()
    return run_solver("heuristic", instance, SolveOptions(time_limit_s=20.0, params=params))


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), services=st.integers(2, 8), share=st.sampled_from([0.01, 0.05, 0.2]))
def test_late_share_plans_are_valid_and_keep_every_tenant_within_its_credit(seed, services, share):
    inst = random_instance(services, 1, seed).with_gpus(8)
    judged = _solve(inst, share)
    if judged.result.plan is None:
        return
    assert judged.valid and check(inst, judged.result.plan).valid
    for layout in judged.result.plan.gpus:
        for p, times in zip(layout.partitions, gpu_timings(inst, layout)):
            duty = p.duty_ms if p.duty_ms is not None else cycle_ms(times)
            for t in p.tenants:
                assert t.rate <= p.procs * 1000.0 * batch_credit(t.batch, share) / duty * (1 + 1e-6)


def test_late_share_zero_is_the_default_rule():
    inst = random_instance(12, 2, 5).with_gpus(6)
    assert _solve(inst, 0.0).result.plan == _solve(inst, None).result.plan


def test_late_share_then_every_service_loop_holds_on_fresh_arrivals():
    inst = random_instance(16, 2, 3).with_gpus(8)
    plain = _solve(inst, None).result.plan
    fresh = SimOptions(duration_s=300.0, seed=9_999)
    worst = lambda plan: min(s.attainment for s in simulate(inst, plan, ArrivalSpec("poisson"), fresh).summary.per_service)  # noqa: E731
    assert worst(plain) < 0.9

    def solve(planned):
        judged = _solve(planned, 0.05)
        return judged.result.plan, judged.valid, judged.result.message

    res = plan_for_attainment(inst, solve, AttainmentOptions(target=0.99, scope="service", seed=100))
    assert res.met and check(inst, res.plan).valid
    assert worst(res.plan) >= 0.99


def test_late_share_option_is_checked():
    with pytest.raises(InputError):
        _solve(random_instance(2, 1, 1), 1.5)
