"""Issue 18: the cold start (declared rates under the first estimates), the compaction rent in GPU-hours
(`rent_gpu_h`) and the short-burst decay of the estimate (`burst_s`, `burst_q`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from stsched.errors import InputError
from stsched.planning.adapt import AdaptOptions, run_adapt
from stsched.planning.adapt import controller
from stsched.planning.adapt.cold import ColdStart, cold_start
from stsched.planning.adapt.estimate import RateEstimator
from stsched.planning.adapt.policies import Adaptive, PolicyOptions
from stsched.scenarios import gpulet_mix

vectors = st.lists(st.floats(0.0, 1e4), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(vectors, st.floats(0.0, 1e4), st.floats(0.0, 3600.0), st.floats(0.0, 7200.0))
def test_cold_start_floors_the_estimate_until_its_time_then_leaves_it(est, declared, until, t):
    est = np.array(est)
    cold = ColdStart(np.full(len(est), declared), until)
    assert np.array_equal(cold.rates(est, t, initial=True), np.maximum(est, declared))
    got = cold.rates(est, t, initial=False)
    assert np.array_equal(got, np.maximum(est, declared) if t <= until else est)
    assert cold_start([1.0, 2.0], 1.2, None) is None
    assert np.allclose(cold_start([1.0, 2.0], 1.2, 0.0).declared, [1.2, 2.4])


def test_bad_knobs_are_refused():
    with pytest.raises(InputError, match="cold_start_s"):
        AdaptOptions(cold_start_s=-1.0)
    with pytest.raises(InputError, match="cold_release must be a bool"):
        AdaptOptions(cold_release="yes")
    with pytest.raises(InputError, match="rent_gpu_h"):
        AdaptOptions(rent_gpu_h=0.0)
    with pytest.raises(InputError, match="rent_gpu_h replaces"):
        AdaptOptions(rent_gpu_h=1.0, off_rent=3.0)
    with pytest.raises(InputError, match="rent_gpu_h replaces"):
        AdaptOptions(rent_gpu_h=1.0, compact_rent=None)
    with pytest.raises(InputError, match="burst_s"):
        AdaptOptions(burst_s=3600.0)  # longer than the 1800 s estimate window
    with pytest.raises(InputError, match="burst_q"):
        AdaptOptions(burst_s=600.0, burst_q=1.5)
    with pytest.raises(InputError, match="peak statistic"):
        AdaptOptions(burst_s=600.0, statistic="mean")


@pytest.mark.parametrize("cold", [None, 0.0])
def test_the_initial_deployment_plans_for_the_declared_rates_with_a_cold_start(monkeypatch, cold):
    asked = []
    real = controller._initial

    def spy(policy, inst):
        asked.append({s.name: s.rate for s in inst.services})
        return real(policy, inst)

    monkeypatch.setattr(controller, "_initial", spy)
    inst = gpulet_mix("scen1", 400, rate=4000.0)
    res = run_adapt(inst, AdaptOptions(function_offset=14, hours=1 / 60, simulate=False, downtime="standby",
                                       cold_start_s=cold, adapt_solver=""))
    assert res.settings["cold_start_s"] == cold and len(asked) == 1
    declared = {s.name: s.rate * 1.2 for s in inst.services}
    if cold is None:  # the first minute: the service on function 15 is idle in it
        assert min(asked[0].values()) == 0.0
    else:
        assert all(asked[0][n] >= r * (1 - 1e-12) for n, r in declared.items())


sched_rows = st.lists(st.floats(0.0, 1e4), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(sched_rows, st.integers(0, 45), st.sampled_from([120.0, 600.0, 1200.0]), st.floats(0.0, 1.0))
def test_burst_decay_lies_between_the_recent_peak_and_the_window_peak(row, cut, burst, q):
    sched = np.array([row])
    tau = 60.0 * min(cut, len(row))  # decisions fall within the trace
    peak = RateEstimator(1200.0, 1.2).estimate(sched, 60.0, tau)
    got = RateEstimator(1200.0, 1.2, burst_s=burst, burst_q=q).estimate(sched, 60.0, tau)
    recent = RateEstimator(burst, 1.2).estimate(sched, 60.0, tau)
    assert np.all(got <= peak + 1e-9) and np.all(got >= recent - 1e-9)
    assert np.allclose(RateEstimator(1200.0, 1.2, burst_s=1200.0, burst_q=q).estimate(sched, 60.0, tau), peak)
    assert np.allclose(RateEstimator(1200.0, 1.2, burst_s=burst, burst_q=1.0).estimate(sched, 60.0, tau), peak)


def test_a_short_burst_is_held_for_burst_s_not_the_whole_window():
    row = np.full(60, 100.0)
    row[10:12] = 5000.0  # a two-minute burst
    sched = row[None, :]
    peak = RateEstimator(1800.0, 1.0)
    decay = RateEstimator(1800.0, 1.0, burst_s=600.0, burst_q=0.9)
    assert decay.estimate(sched, 60.0, 60.0 * 20)[0] == 5000.0  # within burst_s: held
    assert decay.estimate(sched, 60.0, 60.0 * 25)[0] == 100.0  # 13 minutes later: decayed
    assert peak.estimate(sched, 60.0, 60.0 * 25)[0] == 5000.0  # the plain peak holds it 30 minutes
    long = row.copy()
    long[10:20] = 5000.0  # ten minutes: a third of the window, above the 0.9 quantile's share
    assert decay.estimate(long[None, :], 60.0, 60.0 * 35)[0] == 5000.0


def test_rent_in_gpu_hours_counts_time_and_is_kept_through_a_flip(rent_setting):
    inst, plan, one = rent_setting
    pol = Adaptive(PolicyOptions(rent_gpu_h=1000.0))
    need = {"plan": one}
    pol._fresh = lambda instance: need["plan"]
    paid = []
    # spare at 5 and 10 minutes, nothing spare at 15 (a flip), spare again in an emergency 2 minutes later
    for t, fresh in ((300.0, one), (600.0, one), (900.0, plan), (1020.0, one)):
        need["plan"] = fresh
        pol.set_time(t)
        pol._begin(inst)
        out, _ = pol._compact_spare(inst, plan, plan, "")
        assert out is plan  # 1000 GPU-hours per change buys nothing
        paid.append(pol._rent_paid)
    assert paid == pytest.approx([300 / 3600, 600 / 3600, 600 / 3600, 720 / 3600])
    pol.set_time(1320.0)
    pol._begin(inst)  # a layout change starts it again
    pol._compact_spare(inst, plan, replace(plan, gpus=plan.gpus[:1]), "")
    assert pol._rent_paid == 0.0


def test_rent_in_gpu_hours_buys_the_compaction_once_paid(rent_setting):
    inst, plan, one = rent_setting
    pol = Adaptive(PolicyOptions(rent_gpu_h=0.1, adapt_solver=""))
    pol._fresh = lambda instance: one
    bought = []
    for t in (300.0, 600.0, 900.0):  # 1 spare GPU x 5 minutes a decision: 0.083, 0.167 GPU-hours
        pol.set_time(t)
        pol._begin(inst)
        out, note = pol._compact_spare(inst, plan, plan, "")
        bought.append(out.gpus_used)
        if out.gpus_used == 1:
            assert "GPU-hours of rent" in note
            break
    assert bought == [2, 1]  # bought at the second decision: one switch-off (1 change) for 0.1 GPU-hours


def test_a_waived_rent_buys_the_compaction_at_once_and_only_once(rent_setting):
    """The cold start's end (`cold_release`): the first decision after the floor gives the spare GPU back without
    the rent; the next spare decision pays rent again (12 GPU-decisions per change buy nothing in one decision)."""
    inst, plan, one = rent_setting
    pol = Adaptive(PolicyOptions(adapt_solver=""))
    pol._fresh = lambda instance: one
    pol._begin(inst)
    out, _ = pol._compact_spare(inst, plan, plan, "")
    assert out is plan and pol._rent_paid == 1.0  # the default rent: one GPU-decision paid, 12 due
    pol.waive_rent()
    pol._begin(inst)
    out, note = pol._compact_spare(inst, plan, plan, "")
    assert out.gpus_used == 1 and "at the cold start's end" in note
    pol._begin(inst)
    again, _ = pol._compact_spare(inst, plan, plan, "")
    assert again is plan and pol._rent_paid == 1.0


def test_a_waived_rent_is_for_its_own_decision_only(rent_setting):
    """The waiver was consumed in `_compact_spare` only: a decision that stopped before it (a solver raising) left
    it set, and a later unrelated decision bought a compaction without rent.  Now `_begin` takes it for its own
    decision."""
    inst, plan, one = rent_setting
    pol = Adaptive(PolicyOptions(adapt_solver=""))
    pol._fresh = lambda instance: one
    pol.waive_rent()
    pol._begin(inst)  # the decision it was meant for stops here
    pol._begin(inst)
    out, note = pol._compact_spare(inst, plan, plan, "")
    assert out is plan and "cold start" not in note and pol._rent_paid == 1.0


@pytest.mark.parametrize("release", [False, True])
def test_the_controller_waives_the_rent_once_after_the_floor(monkeypatch, release):
    waived = []
    monkeypatch.setattr(Adaptive, "waive_rent", lambda self: waived.append(self._decision))
    inst = gpulet_mix("scen1", 400, rate=4000.0)
    run_adapt(inst, AdaptOptions(function_offset=4, hours=0.2, simulate=False, downtime="standby",
                                 cold_start_s=300.0, cold_release=release, adapt_solver="", trigger=0.0))
    # decisions at 300 s (floored) and 600 s (the first after the floor: waived before it) within the 12 minutes
    assert waived == ([1] if release else [])
