"""Invariants of the re-implemented baselines: every plan passes the checker, objectives respect the LP bounds."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stsched.bounds import lp_bound_gpus, lp_bound_scale
from stsched.plan import GpuLayout, Partition, Tenant
from stsched.problem import Interference, Margin
from stsched.scenarios import random_instance
from stsched.registry import Objective, SolveOptions, Status, available_solvers, run_solver

from tests.conftest import make_mig_instance, make_mps_instance
from solvers.baselines.common import gpu_violations, residual_point
from solvers.baselines.gpulet import interpolate_batches
from solvers.baselines.nexus import nexus_plan

BASELINES = ("nexus", "gslice", "gpulet", "igniter", "parvagpu")
GPULET_2080TI = Interference("gpulet-linear", (0.11291, 0.71596, 0.35487, 0.08820, 0.89537))
SETTINGS = dict(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _judge(solver, inst, objective):
    judged = run_solver(solver, inst, SolveOptions(objective=objective, max_scale_tol=1e-2))
    r = judged.result
    if r.plan is None:
        assert r.status in (Status.UNKNOWN, Status.INFEASIBLE) and r.message
        return judged
    assert judged.valid, (solver, objective, [str(v) for v in judged.report.violations[:3]])
    assert r.status is Status.FEASIBLE
    if objective is Objective.MIN_GPUS:
        assert r.objective == r.plan.gpus_used <= inst.gpus
        assert r.objective >= lp_bound_gpus(inst)
    else:
        assert r.objective == pytest.approx(r.plan.scale)
        assert r.objective <= lp_bound_scale(inst) * (1 + 1e-9)
    return judged


def test_all_baselines_registered():
    info = available_solvers()
    for name in BASELINES:
        assert info[name].kind == "baseline"
        assert set(info[name].objectives) >= {Objective.MIN_GPUS, Objective.MAX_SCALE}


@settings(**SETTINGS)
@given(seed=st.integers(0, 10_000), services=st.integers(1, 4), gpus=st.integers(1, 3),
       device=st.sampled_from(["a100-mps", "v100-mps", "a100-mig"]))
def test_every_plan_passes_checker_on_random_instances(seed, services, gpus, device):
    inst = random_instance(services, gpus, seed, device=device, arrivals="deterministic")
    for solver in BASELINES:
        for objective in (Objective.MIN_GPUS, Objective.MAX_SCALE):
            _judge(solver, inst, objective)


@settings(**SETTINGS)
@given(rates=st.lists(st.floats(1.0, 400.0), min_size=2, max_size=3),
       slos=st.lists(st.floats(15.0, 120.0), min_size=3, max_size=3), gpus=st.integers(1, 3))
def test_every_plan_passes_checker_with_interference(rates, slos, gpus):
    """gpulet's linear interference form and its 1.1 latency ratio: placements next to neighbours must hold."""
    inst = make_mps_instance(rates=tuple(rates), slos=tuple(slos[:len(rates)]), gpus=gpus,
                             interference=GPULET_2080TI, margin=Margin(latency_factor=1.1),
                             memory=tuple(500.0 for _ in rates))
    for solver in BASELINES:
        for objective in (Objective.MIN_GPUS, Objective.MAX_SCALE):
            _judge(solver, inst, objective)


@settings(**SETTINGS)
@given(rate=st.floats(10.0, 3000.0), slo=st.floats(20.0, 200.0), gpus=st.integers(1, 2))
def test_every_plan_passes_checker_on_mig(rate, slo, gpus):
    inst = make_mig_instance(rates=(rate, rate / 3), slos=(slo, slo * 1.5), gpus=gpus)
    for solver in BASELINES:
        _judge(solver, inst, Objective.MIN_GPUS)


def test_min_gpus_uses_no_more_than_needed_when_one_gpu_suffices():
    inst = make_mps_instance(rates=(20.0, 10.0), slos=(80.0, 120.0), gpus=4)
    for solver in BASELINES:
        judged = _judge(solver, inst, Objective.MIN_GPUS)
        assert judged.result.gpus == 1, solver


def test_more_gpus_never_lower_alpha_for_gpulet_and_nexus():
    """On the same mix, max-scale grows with the GPU count (up to the bisection's tolerance)."""
    from stsched.scenarios import gpulet_mix
    for solver in ("gpulet", "nexus"):
        alphas = [run_solver(solver, gpulet_mix("m1", g), SolveOptions(objective=Objective.MAX_SCALE)).result.objective
                  for g in (1, 2, 3)]
        assert alphas[0] < alphas[1] < alphas[2], (solver, alphas)


def test_gpu_violations_reports_per_gpu_rules_only():
    inst = make_mps_instance()
    ok = GpuLayout((Partition(100.0, (Tenant("s0", 1, 10.0),)),))
    assert gpu_violations(inst, ok) == ()
    too_fast = GpuLayout((Partition(100.0, (Tenant("s0", 1, 1e6),)),))
    assert {v.rule.value for v in gpu_violations(inst, too_fast)} == {"throughput"}


def test_residual_point_serves_very_low_rates_with_capped_duty():
    """A rate so low that one request takes longer than the SLO to arrive still gets a residue node."""
    inst = make_mps_instance(rates=(0.01, 0.02), slos=(50.0, 80.0), gpus=1)
    res = residual_point(inst, "s0", 100.0, 0.01)
    assert res is not None and res.batch == 1
    assert res.exec_ms + res.duty_ms <= 50.0 + 1e-9 and res.duty_ms >= res.exec_ms
    plan, _ = nexus_plan(inst)
    assert plan.gpus_used == 1  # both residues merge onto one GPU


def test_interpolate_batches_keeps_profiled_points():
    inst = make_mps_instance()
    interp = interpolate_batches(inst, batches=tuple(range(1, 9)))
    for t, ti in zip(inst.tables, interp.tables):
        for e in t.entries:
            assert ti.get(e.batch, e.size, e.procs).latency_ms == pytest.approx(e.latency_ms)
        lo, hi = ti.get(2, 100.0, 1).latency_ms, ti.get(4, 100.0, 1).latency_ms
        assert lo < ti.get(3, 100.0, 1).latency_ms < hi
    assert interp.batches == tuple(range(1, 9))


def test_infeasible_service_reported_not_planned():
    inst = make_mps_instance(slos=(0.5, 80.0))  # s0 cannot run a batch in 0.25 ms
    for solver in BASELINES:
        judged = run_solver(solver, inst, SolveOptions(objective=Objective.MIN_GPUS))
        assert judged.result.plan is None, solver
        assert judged.result.status in (Status.INFEASIBLE, Status.UNKNOWN)
        assert judged.result.message
