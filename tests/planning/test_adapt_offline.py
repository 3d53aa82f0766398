"""Issue 18: the clairvoyant lower bound on layout reconfigurations (stsched.planning.adapt.offline)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings, strategies as st

from stsched.errors import InputError
from stsched.plan import GpuLayout, Partition, Plan, Tenant, layout_changes
from stsched.planning.adapt import AdaptOptions, run_adapt
from stsched.planning.adapt.offline import frontier, min_changes, total_variation, window_minimum, window_needs
from stsched.scenarios import gpulet_mix

needs = st.lists(st.integers(0, 5), min_size=1, max_size=10)


@st.composite
def need_and_policy(draw):
    """A need sequence and a policy's GPU counts that never fall below it."""
    need = draw(needs)
    extra = draw(st.lists(st.integers(0, 3), min_size=len(need), max_size=len(need)))
    hours = draw(st.lists(st.floats(0.0, 2.0), min_size=len(need), max_size=len(need)))
    return need, [n + e for n, e in zip(need, extra)], hours


@settings(max_examples=150, deadline=None)
@given(need_and_policy())
def test_the_bound_is_never_above_what_a_policy_pays(case):
    """Any GPU-count sequence above the need, with its GPU-hours as the budget, needs at least the bound's changes."""
    need, counts, hours = case
    used = sum(u * h for u, h in zip(counts, hours))
    bound = min_changes(need, hours, used)
    assert bound is not None and bound <= total_variation(counts)
    f = frontier(need, hours)
    assert f.hours(total_variation(counts)) <= used + 1e-9
    fixed = [need[0]] + counts[1:]  # a policy whose initial deployment is the need's: the fixed-start bound holds
    used_fixed = sum(u * h for u, h in zip(fixed, hours))
    assert frontier(need, hours, free_start=False).min_changes(used_fixed) <= total_variation(fixed)
    assert frontier(need, hours, free_start=False).best[0] >= f.best[0] - 1e-9
    assert all(b <= a + 1e-12 for a, b in zip(f.best, f.best[1:]))  # more changes never cost hours


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=5), st.data())
def test_the_dp_is_exact_on_small_cases(need, data):
    """Against enumeration of every sequence between the need and its maximum."""
    hours = data.draw(st.lists(st.sampled_from([0.5, 1.0, 1.5]), min_size=len(need), max_size=len(need)))
    top = max(need)
    for free in (True, False):
        best: dict[int, float] = {}
        for seq in itertools.product(*(range(n, top + 1) for n in need)):
            if not free and seq[0] != need[0]:
                continue
            c, h = total_variation(seq), sum(u * x for u, x in zip(seq, hours))
            best[c] = min(best.get(c, float("inf")), h)
        f = frontier(need, hours, free_start=free)
        for c in range(len(f.best)):
            exact = min((h for k, h in best.items() if k <= c), default=float("inf"))
            assert f.best[c] == pytest.approx(exact)


def _gpu(sizes: tuple[int, ...]) -> GpuLayout:
    return GpuLayout(tuple(Partition(float(s), (Tenant("a", 1, 1.0),)) for s in sizes))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([(), (100,), (50, 50), (60, 40)]), min_size=0, max_size=6),
       st.lists(st.sampled_from([(), (100,), (50, 50), (60, 40)]), min_size=0, max_size=6))
def test_each_gpu_switched_on_or_off_is_a_layout_change(a, b):
    """The fact the bound rests on: layout_changes >= |GPUs in use after - before|, and it is a metric (triangle)."""
    pa, pb = Plan(tuple(_gpu(x) for x in a)), Plan(tuple(_gpu(x) for x in b))
    assert layout_changes(pa, pb) >= abs(pa.gpus_used - pb.gpus_used)
    assert layout_changes(pa, pb) <= layout_changes(pa, Plan(())) + layout_changes(Plan(()), pb)


def test_a_standby_gpu_switched_back_on_with_its_old_layout_counts():
    on, off = Plan((_gpu((50, 50)), _gpu((100,)))), Plan((_gpu((50, 50)), GpuLayout()))
    assert layout_changes(on, off) == 1 and layout_changes(off, on) == 1


def test_bound_on_a_hand_made_need():
    need, hours = [2, 3, 2, 3, 2], [1.0] * 5
    f = frontier(need, hours)
    assert f.best[0] == 15 and f.best[4] == 12  # flat at 3; following every step
    assert min_changes(need, hours, 13.0) == 2 and min_changes(need, hours, 11.0) is None
    with pytest.raises(InputError):
        frontier([1, 2], [1.0])
    with pytest.raises(InputError):
        frontier([-1], [1.0])


def test_window_minimum():
    assert window_minimum([5, 3, 4, 6, 2, 7], [0, 3]) == [5, 3, 3, 6, 2, 2]
    with pytest.raises(InputError):
        window_minimum([1], [1])


@pytest.mark.parametrize("cold", [None, 300.0])
def test_real_runs_pay_at_least_the_bound(cold):
    """On a short window, full re-partitioning (the plans from scratch the need is made of) and a policy that keeps
    its layouts pay at least the bound for their own GPU-hours, with the cold start too (the need from scratch
    floors the first estimates as the controller does: without that it was above these runs; the certified need is
    never floored: floored, it was above static peak on a window shorter than the trace)."""
    inst = gpulet_mix("m2", 40, rate=2500.0)
    opts = dict(hours=1.0, epoch_s=300, simulate=False, downtime="standby", trigger=0.0, function_offset=4,
                cold_start_s=cold)
    nd = window_needs(inst, AdaptOptions(**opts))
    cert, scratch = nd.frontiers()
    assert len(nd.certified) == 60 and len(nd.scratch) == 12
    assert all(c <= s for c, s in zip(nd.certified[::5], nd.scratch))  # the LP bound is below any plan
    for policy, kw in (("periodic", {"period": 1}), ("practitioner", {"save_gpus": 1, "save_for": 3})):
        r = run_adapt(inst, AdaptOptions(policy=policy, **opts, **kw))
        assert (cold is not None or 0 < r.gpu_switches) and r.gpu_switches <= r.reconfigurations  # one change each
        for f in (cert, scratch):
            bound = f.min_changes(r.gpu_hours)
            assert bound is not None and bound <= r.reconfigurations
    # the certified need holds for any policy and any cold start: static peak on a window shorter than the trace
    # (functions 20..: the hour's peak needs 2 GPUs, the declared rates 3; the floored certified need asked 3 changes
    # of its 0) and a policy run without the cold start
    opts["function_offset"] = 20
    cert = window_needs(inst, AdaptOptions(**opts)).frontiers()[0]
    for policy, kw in (("static-peak", {}), ("periodic", {"period": 1, "cold_start_s": None})):
        r = run_adapt(inst, AdaptOptions(policy=policy, **{**opts, **kw}))
        bound = cert.min_changes(r.gpu_hours)
        assert bound is not None and bound <= r.reconfigurations, (policy, r.gpu_hours, cert.best[-1])


def test_the_certified_need_reads_as_the_options_estimator_reads():
    """With `burst_s` the estimate is lower than the whole window's peak: the certified need follows it (built
    without burst_s it was the higher need, above what such a policy's plans carry)."""
    inst = gpulet_mix("m2", 40, rate=2500.0)
    opts = dict(hours=1.0, epoch_s=300, simulate=False, downtime="standby", trigger=0.0, function_offset=20)
    plain = window_needs(inst, AdaptOptions(**opts)).certified
    burst = window_needs(inst, AdaptOptions(burst_s=120.0, **opts)).certified
    assert all(b <= a for a, b in zip(plain, burst)) and sum(burst) < sum(plain)


def test_the_certified_need_is_never_above_the_detectors_reading(tmp_path, monkeypatch):
    """Review finding: with a lead of 62 s and the detector 5 s into a minute, its decision reads the minutes ended by
    t0 - 57 s: neither those of t0 - 62 s nor those of t0.  Rates 100, 100, 10, 10, 100, ... (x 30 req/s) and a
    120 s estimate: at the epoch boundary 300 s the readings at 238 s and 300 s see a busy minute, the detector's at
    243 s only the two quiet ones.  The certified need must not exceed the LP bound of that reading (it did)."""
    from stsched.bounds import lp_bound_gpus
    from stsched.planning.adapt.controller import service_schedule
    from stsched.reconfig import ReconfigCosts
    from tests.conftest import count_trace, counts_csv, make_mps_instance

    counts = [100, 100, 10, 10, 100, 100, 100, 100, 100, 100]
    inst = make_mps_instance(rates=(3000.0,), slos=(50.0,), memory=(1000.0,), gpus=16)
    with count_trace(tmp_path, monkeypatch, counts_csv(minutes=range(480, 480 + len(counts)), rows=(counts,))):
        opts = AdaptOptions(epoch_s=300, simulate=False, downtime="standby", estimate_window_s=120.0,
                            cold_start_s=None, detect_s=5.0, costs=ReconfigCosts(seconds=(("mps", 62.0),)))
        assert opts.lead(inst) == 62.0
        cert = window_needs(inst, opts).certified
        schedule, _, minutes = service_schedule(inst, opts)
    est = opts.estimator()
    needs = [lp_bound_gpus(inst.with_rates({"s0": float(est.estimate(schedule, 60.0, max(0.0, m * 60.0 + 5.0 - 62.0))[0])}))
             for m in range(minutes)]
    assert needs[5] < lp_bound_gpus(inst.with_rates({"s0": float(est.estimate(schedule, 60.0, 300.0)[0])}))
    assert all(c <= n for c, n in zip(cert, needs)), (cert, needs)


def test_the_certified_need_holds_for_an_observed_start_below_the_first_estimate(tmp_path, monkeypatch):
    """Review finding (session 18): the observed start plans the initial deployment for its count's upper bound,
    which falls below the first minute's rate with probability 0.135 % per service; the certified need carried the
    first estimate's LP bound across the first epoch, above what that plan carries.  A count of 0 in the first 5 s
    (forced here) plans for 1.3 req/s x head-room: the need of the first epoch must not exceed that plan's bound."""
    import numpy as np

    from stsched.bounds import lp_bound_gpus
    from stsched.planning.adapt import cold as cold_mod
    from tests.conftest import count_trace, counts_csv, make_mps_instance

    monkeypatch.setattr(cold_mod, "observed_counts", lambda rates, d, seed, minute: np.zeros(len(rates)))
    counts = [100] * 10
    inst = make_mps_instance(rates=(3000.0,), slos=(50.0,), memory=(1000.0,), gpus=16)
    with count_trace(tmp_path, monkeypatch, counts_csv(minutes=range(480, 480 + len(counts)), rows=(counts,))):
        opts = AdaptOptions(epoch_s=300, simulate=False, cold_start_s=None, cold_count_s=5.0)
        cert = window_needs(inst, opts).certified
        plain = window_needs(inst, AdaptOptions(epoch_s=300, simulate=False, cold_start_s=None)).certified
        from stsched.planning.adapt.controller import service_schedule
        start = opts.cold(inst, service_schedule(inst, opts)[0]).declared
    first = lp_bound_gpus(inst.with_rates({"s0": float(start[0])}))
    assert first < plain[0]  # the start plans below the first estimate's need
    assert all(c <= first for c in cert[:5]) and cert[5:] == plain[5:], (cert, plain)


def test_adapt_frontier_reports_the_bound_per_window():
    """The study's bound columns: the fewest changes for the window's target and whether the 1/5 ratio can hold."""
    from experiments import adapt_frontier as af

    def rows(off, full_reconf):
        return [{"offset": str(off), "policy": p, "reconfigurations": str(r), "tenant_changes": "0",
                 "gpu_hours": str(h), "slo_attainment": "nan", "hours": "8.0"}
                for p, (r, h) in {af.STATIC: (0, 100.0), af.FULL: (full_reconf, 80.0)}.items()]

    # static 100 GPU-h, full 80: 80 % of the saving is <= 84 GPU-h; 4 steps of 2 h needing 8, 12, 8, 8 GPUs: flat
    # at 12 is 96 GPU-h; from scratch the first count is 8: 8 + 12 + b + c <= 42 costs 4 + 1 changes (8, 12, 11, 11)
    need = {"offset": "0", "hours": "8.0", "certified": "8 8 8 8", "minute_h": "2 2 2 2",
            "scratch": "8 12 8 8", "epoch_h": "2 2 2 2"}
    cert, scratch = af.bound_frontiers([need])[0]
    assert af.bound_cell(af.window_table(rows(0, 50))[0], scratch) == ("5 (0.10)", True)
    assert af.bound_cell(af.window_table(rows(0, 4))[0], scratch) == ("5 (1.25)", False)  # 5 > 4 / 5
    assert af.bound_cell(af.window_table(rows(0, 4))[0], cert) == ("0 (0.00)", True)
    text = af.summary(rows(0, 4), [af.STATIC, af.FULL], af.bound_frontiers([need]))
    assert "bound (scratch)" in text and "5 (1.25) *" in text
    assert "2 points checked on 1 windows: none below it" in text  # baselines too, against the certified bound
    low = {"offset": "0", "policy": "adaptive[headroom=1.1]", "reconfigurations": "0", "tenant_changes": "0",
           "gpu_hours": "10.0", "slo_attainment": "nan", "hours": "8.0"}
    text = af.summary(rows(0, 4) + [dict(low, policy="adaptive")] + [low],
                      [af.STATIC, af.FULL, "adaptive", low["policy"]], af.bound_frontiers([need]))
    assert "BELOW the certified bound (a broken bound): [(0, 'adaptive')]" in text
    assert "no certified bound for ['adaptive[headroom=1.1]']" in text
    # the observed start's initial deployment can be planned below the first estimate: no certified bound for it
    # (review finding, session 18: it was judged and could read "BELOW the certified bound (a broken bound)")
    obs = dict(low, policy="adaptive[cold_start_s=none,cold_count_s=5]")
    text = af.summary(rows(0, 4) + [obs], [af.STATIC, af.FULL, obs["policy"]], af.bound_frontiers([need]))
    assert "BELOW" not in text and f"no certified bound for ['{obs['policy']}']" in text
    assert "not judged against that bound (the observed start" in text
