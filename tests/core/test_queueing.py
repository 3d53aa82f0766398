"""Poisson credit per batch (stsched.queueing) and the heuristic's `late_share` rule that uses it."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.checker import check
from stsched.cli import main
from stsched.io import load_instance, save_instance
from stsched.errors import InputError
from stsched.queueing import batch_credit, overflow
from stsched.scenarios import random_instance
from stsched.simulation import ArrivalSpec, SimOptions, simulate
from stsched.planning.attainment import AttainmentOptions, plan_for_attainment, registry_solver
from stsched.registry import SolveOptions, run_solver
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


def _solve(instance, share: float | None, solver: str = "heuristic"):
    inst = instance.with_late_share(share) if share is not None else instance
    return run_solver(solver, inst, SolveOptions(time_limit_s=20.0))


def _within_credit(inst, plan, share):
    """Every tenant's rate within `procs x 1000 x batch_credit(b, share) / d`: the rule recomputed here, apart
    from the checker."""
    for layout in plan.gpus:
        for p, times in zip(layout.partitions, gpu_timings(inst, layout)):
            duty = p.duty_ms if p.duty_ms is not None else cycle_ms(times)
            for t in p.tenants:
                if t.rate > p.procs * 1000.0 * batch_credit(t.batch, share) / duty * (1 + 1e-6):
                    return False
    return True


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), services=st.integers(2, 8), share=st.sampled_from([0.01, 0.05, 0.2]))
def test_heuristic_plans_keep_every_tenant_within_its_credit(seed, services, share):
    inst = random_instance(services, 1, seed, arrivals="deterministic").with_gpus(8)
    judged = _solve(inst, share)
    if judged.result.plan is None:
        return
    assert judged.valid and check(inst.with_late_share(share), judged.result.plan).valid
    assert _within_credit(inst, judged.result.plan, share)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 10_000), services=st.integers(2, 4), share=st.sampled_from([0.02, 0.1]))
def test_exact_solvers_model_the_credit_and_are_never_worse_than_the_heuristic(seed, services, share):
    inst = random_instance(services, 1, seed, arrivals="deterministic").with_gpus(4)
    heur = _solve(inst, share)
    for name in ("milp", "cpsat"):
        exact = _solve(inst, share, name)
        if exact.result.plan is None:
            continue
        assert exact.valid and _within_credit(inst, exact.result.plan, share)
        if exact.result.status.value == "optimal" and heur.result.plan is not None:
            assert exact.result.objective <= heur.result.objective + 1e-9
        if exact.result.bound is not None and heur.result.plan is not None:
            assert exact.result.bound <= heur.result.objective + 1e-9


def test_late_share_zero_is_the_default_rule():
    inst = random_instance(12, 2, 5, arrivals="deterministic").with_gpus(6)
    assert _solve(inst, 0.0).result.plan == _solve(inst, None).result.plan


def test_the_checker_applies_the_credit():
    inst = random_instance(6, 1, 2, arrivals="deterministic").with_gpus(4)
    plain = _solve(inst, None).result.plan
    assert check(inst, plain).valid
    strict = check(inst.with_late_share(0.05), plain)
    assert not strict.valid and any(v.rule.value == "throughput" for v in strict.violations)


def test_late_share_then_every_service_loop_holds_on_fresh_arrivals():
    inst = random_instance(16, 2, 3, arrivals="deterministic").with_gpus(8)
    plain = _solve(inst, None).result.plan
    fresh = SimOptions(duration_s=300.0, seed=9_999)
    worst = lambda plan: min(s.attainment for s in simulate(inst, plan, ArrivalSpec("poisson"), fresh).summary.per_service)  # noqa: E731
    assert worst(plain) < 0.9
    strict = inst.with_late_share(0.05)

    res = plan_for_attainment(strict, registry_solver("heuristic", SolveOptions(time_limit_s=20.0)), AttainmentOptions(target=0.99, scope="service", seed=100))
    assert res.met and check(strict, res.plan).valid
    assert worst(res.plan) >= 0.99


def test_bad_late_share_and_baselines_refuse_it():
    with pytest.raises(InputError):
        random_instance(2, 1, 1, arrivals="deterministic").with_late_share(1.5)
    with pytest.raises(InputError, match="ignores margin.late_share"):
        _solve(random_instance(3, 1, 1, arrivals="deterministic"), 0.05, "gpulet")


def test_late_share_round_trips_through_json(tmp_path):
    inst = random_instance(3, 1, 1, arrivals="deterministic")
    save_instance(inst.with_late_share(0.05), tmp_path / "a.json")
    save_instance(inst, tmp_path / "b.json")
    assert load_instance(tmp_path / "a.json").margin.late_share == 0.05
    assert "late_share" not in (tmp_path / "b.json").read_text()
    assert load_instance(tmp_path / "b.json") == inst


def test_cli_late_share(tmp_path, capsys):
    save_instance(random_instance(16, 2, 3, arrivals="deterministic").with_gpus(8), tmp_path / "i.json")
    assert main(["solve", str(tmp_path / "i.json"), "--late-share", "0.05", "--attainment", "0.99",
                 "--attainment-scope", "service", "--out", str(tmp_path / "p.json")]) == 0
    assert re.search(r"every service reached (99|100)\.\d\d% \(lower confidence bound; target 99\.00%\)",
                     capsys.readouterr().out)
    for extra in (["--late-share", "1.2"], ["--late-share", "0.05", "--solver", "gpulet"]):
        assert main(["solve", str(tmp_path / "i.json"), *extra]) == 2
        assert capsys.readouterr().err.startswith("stsched: error:")
