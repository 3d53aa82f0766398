"""The Poisson margin's per-tenant credit (stsched.queueing), the checker and heuristic that use it, and the
simulator as its referee."""

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
import numpy as np

from stsched.queueing import (RELAX_S, SHARES, batch_credit, best_credit, credit, cycle_arrivals, late_share_bound,
                              max_rate, overflow, relaxation_credit, round_share, slack_cycles, tenant_credit)
from stsched.simulation.engine import run_partition
from stsched.simulation.routing import assign
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


def test_credit_order_batch_cycles_share():
    """The margin shrinks as a partition's requests per cycle grow (law of large numbers), as the latency budget
    leaves more cycles of waiting and as the tenant's share of its service's stream shrinks."""
    assert tenant_credit(4, 0.0, 1.0, 1.0) == 4.0 and batch_credit(4, 0.0) == 4.0
    x = 0.05
    rel = [tenant_credit(b, x) / b for b in (1, 2, 4, 8, 16, 32, 64)]
    assert rel == sorted(rel) and rel[0] < 0.2 < 0.8 < rel[-1] < 1.0
    for b in (1, 4, 32):
        by_cycles = [tenant_credit(b, x, c) for c in (1.0, 1.25, 1.5, 2.0, 3.0, 8.0)]
        assert by_cycles == sorted(by_cycles) and by_cycles[0] < by_cycles[-1] <= b
        by_share = [tenant_credit(b, x, 1.0, f) for f in SHARES]  # shares descending: credits ascending
        assert by_share == sorted(by_share) and by_share[0] < by_share[-1] <= b
        assert by_cycles[0] == by_share[0] == tenant_credit(b, x, 1.0, 1.0) <= best_credit(b, x) < b
        # the per-tenant model's least credit (one slack cycle, the whole stream) is below the per-batch credit
        # (its backlog term): there the rule is the per-batch credit
        assert by_cycles[0] < batch_credit(b, x) == credit(b, x, 1.0, 1.0, 1.0) <= best_credit(b, x)
        assert tenant_credit(b, 0.01, 2.0, 0.5) < tenant_credit(b, x, 2.0, 0.5)
        for c in (1.0, 2.5):
            lam = tenant_credit(b, x, c)
            assert late_share_bound(lam, b, c) <= x < late_share_bound(lam * 1.001 + 1e-9, b, c)


def test_rounding_is_conservative():
    assert round_share(1.2) == 1.0 and round_share(0.75) == 1.0 and round_share(0.5) == pytest.approx(0.5)
    assert round_share(0.7) == pytest.approx(0.5 ** 0.5)
    assert round_share(0.49) == pytest.approx(0.5) and round_share(0.0) == SHARES[-1]
    assert all(round_share(f) >= f for f in (0.9, 0.3, 0.11, 0.004))
    assert slack_cycles(30.0, 10.0, 10.0) == 2.0 and slack_cycles(29.9, 10.0, 10.0) == 1.75
    assert slack_cycles(15.0, 10.0, 10.0) == 1.0 and slack_cycles(1e6, 1.0, 1.0) == 16.0
    # the largest rate a tenant may serve keeps its own share's credit
    r = max_rate(8, 0.05, 1.0, 10.0, 5000.0)
    assert r <= 1000 * credit(8, 0.05, 1.0, r / 5000.0, 10.0) / 10.0 * (1 + 1e-9)
    assert r > 1000 * batch_credit(8, 0.05) / 10.0


def test_batch_credit_values():
    """The per-batch credit of docs/RULES.md (x = 0.05): 0.10, 0.64, 2.2, 5.9, 13.9, 30.4 for b = 1 .. 32."""
    got = [round(batch_credit(b, 0.05), 2) for b in (1, 2, 4, 8, 16, 32)]
    assert got == [0.10, 0.64, 2.22, 5.93, 13.91, 30.44]
    for b in (1, 4, 32):
        lam = batch_credit(b, 0.05)
        assert overflow(lam, b) <= 0.05 * lam * (1 + 1e-9) and overflow(lam * 1.001, b) > 0.05 * lam * 1.001


@settings(max_examples=60, deadline=None)
@given(b=st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64]), x=st.sampled_from([0.01, 0.05, 0.1]),
       cycles=st.floats(0.5, 40.0), share=st.floats(0.0, 1.5), duty_ms=st.floats(0.05, 3000.0))
def test_credit_is_never_below_the_per_batch_credit(b, x, cycles, share, duty_ms):
    """The rule is the larger of the per-batch credit and the per-tenant model's: never more conservative than the
    per-batch rule (so every plan valid under it stays valid), never above the batch or the bounds' best credit."""
    c = credit(b, x, cycles, share, duty_ms)
    assert batch_credit(b, x) <= c <= best_credit(b, x) <= b
    assert c == max(batch_credit(b, x), min(tenant_credit(b, x, cycles, share), relaxation_credit(b, share, duty_ms)))


@pytest.mark.parametrize("b,share,duty_ms", [(16, 0.35, 43.9), (32, 1.0, 40.0), (8, 0.0625, 120.0)])
def test_relaxation_cap(b, share, duty_ms):
    """Near saturation the queue's relaxation time Var(A) / (b - lam)^2 cycles is capped at RELAX_S; the cap binds
    long cycles, not short ones, and the credit never falls below the batch's least credit."""
    f = round_share(share)
    lam = relaxation_credit(b, share, duty_ms)
    relax = (lam * f + (1 - f) / 4) / (b - lam) ** 2 * duty_ms / 1000.0
    assert relax == pytest.approx(RELAX_S, rel=1e-6)
    assert relaxation_credit(b, share, duty_ms / 4) > lam
    loose = tenant_credit(b, 0.05, 16.0, share)
    assert credit(b, 0.05, 16.0, share, duty_ms) == max(batch_credit(b, 0.05), min(loose, lam))
    assert credit(b, 0.05, 16.0, share, 0.001) == loose
    assert credit(b, 0.05, 1.0, 1.0, 60_000.0) == batch_credit(b, 0.05) and credit(b, 0.0, 1.0, 1.0, 5.0) == b


@pytest.mark.parametrize("lam,share", [(3.0, 1.0), (12.5, 0.5), (30.0, 0.125)])
def test_cycle_arrivals_mean_and_spread(lam, share):
    pmf = cycle_arrivals(lam, share)
    a = np.arange(len(pmf))
    mean = float(pmf @ a)
    var = float(pmf @ (a - mean) ** 2)
    assert pmf.sum() == pytest.approx(1.0) and mean == pytest.approx(lam, rel=1e-9)
    assert var == pytest.approx(lam, rel=1e-6) if share == 1.0 else lam * share <= var <= lam * share + 0.25


@pytest.mark.parametrize("b,cycles,share,lam", [(1, 1, 1.0, 0.3), (4, 1, 1.0, 2.5), (8, 2, 1.0, 6.5),
                                                (16, 1, 0.25, 14.0), (32, 1, 1.0, 28.0)])
def test_bound_holds_for_its_cycle_model(b, cycles, share, lam):
    """Monte Carlo of the model the bound is about (i.i.d. cycles, batch b per turn, late beyond cycles x b)."""
    rng = np.random.default_rng(7)
    n = 200_000
    pmf = cycle_arrivals(lam, share)
    arrivals = rng.choice(len(pmf), size=n, p=pmf)
    left, late = 0, 0
    for a in arrivals.tolist():
        late += min(a, max(0, left + a - cycles * b))
        left = max(0, left + a - b)
    assert late / arrivals.sum() <= late_share_bound(lam, b, cycles, share) + 0.002


@pytest.mark.parametrize("b,e_ms,slo_ms,share", [(1, 2.0, 4.0, 1.0), (4, 5.0, 12.0, 1.0), (8, 10.0, 21.0, 0.5),
                                                 (32, 20.0, 45.0, 1.0), (16, 8.0, 17.0, 0.125)])
def test_simulator_referees_the_credit(b, e_ms, slo_ms, share):
    """One tenant alone in its partition (d = e) at its credited rate, fed its share of a Poisson stream by the
    simulator's routing: at most late_share of its requests miss the budget."""
    x = 0.05
    rate = 1000.0 * tenant_credit(b, x, slack_cycles(slo_ms, e_ms, e_ms), share) / e_ms
    rng = np.random.default_rng(11)
    n = 60_000
    total = rate / share
    stream = np.cumsum(rng.exponential(1.0 / total, int(n / share)))
    mine = stream[assign(len(stream), [share, 1.0 - share]) == 0] if share < 1 else stream
    out = run_partition([mine], [e_ms / 1000.0], [b])
    latency = (out.finish[0] - mine) * 1000.0
    assert np.mean(latency > slo_ms * (1 + 1e-9)) <= x


@pytest.mark.parametrize("b,share", [(0, 0.1), (4, -0.1), (4, 1.0)])
def test_credit_bad_input(b, share):
    with pytest.raises(InputError):
        batch_credit(b, share)


def _solve(instance, share: float | None, solver: str = "heuristic"):
    inst = instance.with_late_share(share) if share is not None else instance
    return run_solver(solver, inst, SolveOptions(time_limit_s=20.0))


def _within_credit(inst, plan, share):
    """Every tenant's rate within `1000 x max(batch_credit(b, share), tenant_credit(b, share, slack cycles, its
    share)) / d` (procs x the per-batch credit for several processes): the rule recomputed here, apart from the
    checker (without the relaxation cap, which only lowers the per-tenant term)."""
    total: dict[str, float] = {}
    for layout in plan.gpus:
        for p in layout.partitions:
            for t in p.tenants:
                total[t.service] = total.get(t.service, 0.0) + t.rate
    for layout in plan.gpus:
        for p, times in zip(layout.partitions, gpu_timings(inst, layout)):
            duty = p.duty_ms if p.duty_ms is not None else cycle_ms(times)
            for t, tt in zip(p.tenants, times):
                if p.procs > 1:
                    credit = p.procs * batch_credit(t.batch, share)
                else:
                    slo = inst.service(t.service).slo_ms
                    credit = max(batch_credit(t.batch, share),
                                 tenant_credit(t.batch, share, slack_cycles(slo, tt.exec_ms, duty),
                                               t.rate / max(total[t.service], inst.service(t.service).rate)))
                if t.rate > 1000.0 * credit / duty * (1 + 1e-6):
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
        # planned by the least credit per batch: no optimality claimed for the per-tenant rule
        assert exact.result.status.value != "optimal"
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
    # the loop's 99 % holds for its own planning runs (a lower confidence bound); on fresh arrivals the issue's
    # target for the worst service, 98 %: tenants credited by their own queue run close to their late share
    assert worst(res.plan) >= 0.98


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
    # the command's wiring on 6 services (the loop on 16 is the test above)
    save_instance(random_instance(6, 2, 3, arrivals="deterministic").with_gpus(4), tmp_path / "i.json")
    assert main(["solve", str(tmp_path / "i.json"), "--late-share", "0.05", "--attainment", "0.99",
                 "--attainment-scope", "service", "--out", str(tmp_path / "p.json")]) == 0
    assert re.search(r"every service reached (99|100)\.\d\d% \(lower confidence bound; target 99\.00%\)",
                     capsys.readouterr().out)
    for extra in (["--late-share", "1.2"], ["--late-share", "0.05", "--solver", "gpulet"]):
        assert main(["solve", str(tmp_path / "i.json"), *extra]) == 2
        assert capsys.readouterr().err.startswith("stsched: error:")
