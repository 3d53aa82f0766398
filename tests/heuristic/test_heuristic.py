"""The heuristic ("heuristic" in the registry): every plan it returns passes the checker, it never claims more than a
proven optimum or its bound, it is deterministic, and it meets ParvaGPU's and gpulet's published numbers."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stsched.errors import InputError
from stsched.heuristic import HeuristicOptions
from stsched.problem import Interference, Margin
from stsched.registry import Objective, SolveOptions, Status, available_solvers, run_solver
from tests.conftest import make_mig_instance, make_mps_instance

GPULET_2080TI = (0.11291, 0.71596, 0.35487, 0.08820, 0.89537)  # glet resource/2080ti/INT_MODEL_CONSTANT.CSV
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(instance, objective=Objective.MIN_GPUS, **params):
    opts = SolveOptions(objective=objective, time_limit_s=30, params=tuple((k, str(v)) for k, v in params.items()))
    return run_solver("heuristic", instance, opts)


def _assert_sound(judged, instance, objective):
    r = judged.result
    if r.plan is None:
        assert r.status in (Status.UNKNOWN, Status.INFEASIBLE), r.message
        return
    assert judged.valid, [str(v) for v in judged.report.violations]
    assert r.plan.gpus_used <= instance.gpus
    if objective is Objective.MIN_GPUS:
        assert r.objective == r.plan.gpus_used
        assert r.bound is None or r.objective >= r.bound
    else:
        assert r.objective == pytest.approx(r.plan.scale)
        assert r.bound is None or r.objective <= r.bound * (1 + 1e-9)


mps = st.builds(
    lambda rates, slos, gpus, interference, latency: make_mps_instance(
        rates=rates, slos=slos, gpus=gpus, memory=tuple(500.0 for _ in rates),
        interference=Interference("gpulet-linear", GPULET_2080TI) if interference else Interference(),
        margin=Margin(latency_factor=latency)),
    rates=st.lists(st.floats(1.0, 900.0), min_size=1, max_size=3).map(tuple),
    slos=st.lists(st.floats(12.0, 120.0), min_size=3, max_size=3).map(tuple),
    gpus=st.integers(1, 4), interference=st.booleans(), latency=st.sampled_from([1.0, 1.1]))


@SETTINGS
@given(instance=mps, objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_every_mps_plan_passes_the_checker(instance, objective):
    _assert_sound(_run(instance, objective), instance, objective)


@SETTINGS
@given(rates=st.lists(st.floats(1.0, 2500.0), min_size=1, max_size=3).map(tuple),
       slos=st.lists(st.floats(15.0, 150.0), min_size=3, max_size=3).map(tuple), gpus=st.integers(1, 3),
       objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_every_mig_plan_passes_the_checker(rates, slos, gpus, objective):
    instance = make_mig_instance(rates=rates, slos=slos[:len(rates)], gpus=gpus)
    _assert_sound(_run(instance, objective), instance, objective)


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000), device=st.sampled_from(["a100-mps", "v100-mps", "a100-mig"]),
       services=st.integers(1, 5), gpus=st.integers(1, 3),
       objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_every_plan_on_measured_profiles_passes_the_checker(seed, device, services, gpus, objective):
    from stsched.scenarios import random_instance
    instance = random_instance(services, gpus, seed, device=device, arrivals="deterministic")
    _assert_sound(_run(instance, objective, descent_budget=2000), instance, objective)


@settings(max_examples=8, deadline=None)
@given(rates=st.lists(st.floats(20.0, 600.0), min_size=1, max_size=2).map(tuple),
       slos=st.lists(st.floats(20.0, 100.0), min_size=2, max_size=2).map(tuple),
       objective=st.sampled_from([Objective.MIN_GPUS, Objective.MAX_SCALE]))
def test_never_better_than_a_proven_optimum(rates, slos, objective):
    if "brute" not in available_solvers():
        pytest.skip("no exact oracle: the solver 'brute' is not registered")
    instance = make_mps_instance(rates=rates, slos=slos[:len(rates)], gpus=2, memory=(500.0, 500.0)[:len(rates)])
    exact = run_solver("brute", instance, SolveOptions(objective=objective, time_limit_s=60)).result
    ours = _run(instance, objective).result
    if exact.status is not Status.OPTIMAL or ours.objective is None:
        return
    if objective is Objective.MIN_GPUS:
        assert ours.objective >= exact.objective
    else:
        assert ours.objective <= exact.objective * (1 + 1e-6)


def test_deterministic_for_a_seed():
    instance = make_mps_instance(rates=(420.0, 260.0), slos=(40.0, 60.0), gpus=3)
    for objective in (Objective.MIN_GPUS, Objective.MAX_SCALE):
        a = _run(instance, objective).result.plan
        b = _run(instance, objective).result.plan
        assert a == b


def test_infeasible_services_are_named():
    instance = make_mps_instance(rates=(100.0, 50.0), slos=(1.0, 80.0))  # s0 cannot finish a batch in 1 ms
    r = _run(instance).result
    assert r.status is Status.INFEASIBLE and r.infeasible_services == ("s0",) and r.plan is None
    r = _run(make_mps_instance(rates=(1e7, 50.0)), Objective.MIN_GPUS).result  # more than 2 GPUs can serve
    assert r.status is Status.INFEASIBLE and "s0" in r.infeasible_services
    r = _run(make_mps_instance(rates=(700.0, 300.0), slos=(40.0, 60.0), gpus=1)).result  # the LP bound: 2 GPUs
    assert r.status is Status.INFEASIBLE and r.bound == 2 and r.plan is None


def test_options_are_typed_and_checked():
    opts = HeuristicOptions.from_params((("restarts", "2"), ("knee_tolerance", "0.1"), ("effort", "fast"),
                                         ("adapt_resolve", "false")))
    assert (opts.restarts, opts.knee_tolerance, opts.effort, opts.adapt_resolve) == (2, 0.1, "fast", False)
    for bad in ((("restarts", "x"),), (("no_such_option", "1"),), (("effort", "medium"),),
                (("constructions", "greedy,magic"),), (("merge_group", "1"),)):
        with pytest.raises(InputError):
            HeuristicOptions.from_params(bad)
    assert HeuristicOptions().effective(64).effort == "fast"
    assert HeuristicOptions().effective(8) == HeuristicOptions()


@pytest.mark.parametrize("row, parvagpu_gpus, optimum", [(1, 2, 1), (2, 3, 2), (3, 7, 6), (4, 17, 15)])
def test_mig_never_more_gpus_than_parvagpu(row, parvagpu_gpus, optimum):
    """ParvaGPU's public scheduler needs 2, 3, 7, 17 A100s on the shipped rows (its scenarios 1, 2, 4, 6); the
    exact MILP proves 1, 2, 6, 15 (experiments/heuristic_eval.py); the heuristic must never need more than
    ParvaGPU and reaches the optimum on these rows."""
    from stsched.scenarios import parvagpu
    instance = parvagpu(row)
    judged = _run(instance)
    assert judged.valid
    assert optimum <= judged.result.gpus <= parvagpu_gpus
    assert judged.result.gpus == optimum


def test_max_scale_beats_gpulet_reference_on_m1():
    """gpulet's own scheduler serves step 104 of mix M1 on one A100 (PROVENANCE of the gpulet data)."""
    from stsched.scenarios import gpulet_mix
    judged = _run(gpulet_mix("m1", 1), Objective.MAX_SCALE)
    assert judged.valid and judged.result.objective >= 104


def test_load_probes_keep_min_gpus_monotone_on_the_h100_sm_data():
    """On the measured H100 green-context data with its fitted interference, the greedy's choices at 0.75 and 0.8
    x the hardware-validation rate led to 2 GPUs while 0.85 x fits on 1: the constructions for a little more load,
    scaled back down, find the 1-GPU plan (the proven optimum) at every load of the sweep."""
    from experiments import hw_validate as hv
    inter = hv.fitted_interference("h100-sm")
    counts = []
    for alpha in (0.7, 0.75, 0.8, 0.85):
        inst = hv.build_instance(alpha * 5.6554334678346105 * 100, 1.0, "h100-sm", inter).with_gpus(2)
        got = _run(inst)
        _assert_sound(got, inst, Objective.MIN_GPUS)
        counts.append(got.result.objective)
        assert _run(inst, load_probes="").result.objective >= got.result.objective
    assert counts == [1, 1, 1, 1]


@pytest.mark.parametrize("bad", ["1.0", "0.9,1.1", "x", "1.1,,abc"])
def test_load_probes_must_be_factors_above_one(bad):
    with pytest.raises(InputError, match="load_probes"):
        HeuristicOptions(load_probes=bad)


def test_whole_gpu_cover_with_interference_on_the_h100_sm_data():
    """With the fitted interference a GPU with one partition meets no slowdown: on 3 GPUs the milp's conservative
    model reaches alpha 21.73 with bert-base alone on a whole GPU; without the `whole` construction the heuristic
    stopped at 18.56, and min-gpus needed 4 GPUs at 19-20 x the rates where it needs 3 at 21 x."""
    from experiments import hw_validate as hv
    inter = hv.fitted_interference("h100-sm")
    inst = hv.build_instance(100.0, 1.0, "h100-sm", inter).with_gpus(3)
    got = _run(inst, Objective.MAX_SCALE)
    _assert_sound(got, inst, Objective.MAX_SCALE)
    without = _run(inst, Objective.MAX_SCALE, constructions="greedy,cover,balanced,second,third")
    assert got.result.objective > 21.0 > 19.0 > without.result.objective
    for rate in (1900.0, 2000.0, 2100.0):
        small = hv.build_instance(rate, 1.0, "h100-sm", inter).with_gpus(6)
        assert _run(small).result.objective == 3


def test_scale_full_search_reaches_the_optimum_the_plain_search_misses():
    """Under the Poisson margin, V100 3 services seed 2 (heuristic_eval section poisson): the plain max-scale
    search stopped at 0.7825 when this was written, while the optimum (milp, proven) was 0.8378; the full search
    reached it.  Under the rule of docs/RULES.md (the larger of the per-batch and the per-tenant credit; max-scale
    credits every tenant as if it received its whole service's stream, as the milp does) both searches reach
    0.8447, the milp's optimum for that model (0.84473)."""
    from stsched.scenarios import random_instance
    inst = random_instance(3, 2, 2, device="v100-mps", arrivals="deterministic").with_late_share(0.05)
    opts = SolveOptions(objective=Objective.MAX_SCALE, time_limit_s=60.0)
    plain = run_solver("heuristic", inst, opts)
    full = run_solver("heuristic", inst, replace(opts, params=(("scale_full_search", "1"),)))
    assert plain.valid and full.valid
    assert full.result.objective >= 0.8445 and full.result.objective >= plain.result.objective - 1e-3
