"""Issue 18: the burst detector (`stsched.planning.adapt.detect`, `AdaptOptions.detect_s`) makes an emergency decision
seconds into a minute that overloads the plan, and the simulator applies the new plan from that instant."""

from __future__ import annotations

import numpy as np
import pytest

import stsched as st
import stsched.planning.adapt.controller as controller
from stsched.errors import InputError
from stsched.planning.adapt import AdaptOptions, run_adapt
from stsched.planning.adapt.detect import DETECT_Z, Observed, flagged, observed_counts
from tests.conftest import count_trace, counts_csv, make_mps_instance, run_cli

_DECIDE = controller._decide  # the real one: a second spy must not wrap the first

# one function, peak-normalised to the declared 3,000 req/s: 300 req/s for ten minutes (the plan carries 360), then
# one minute at 3,000 req/s (minute 10), then 300 again.  Without the detector the whole burst minute meets the plan
# of 360 req/s; with it the decision at 605 s plans for 3,600 req/s, its GPUs serving from 620 s (the 15 s standby
# build time)
COUNTS = [10] * 10 + [100] + [10] * 4


@pytest.fixture
def burst_trace(tmp_path, monkeypatch):
    with count_trace(tmp_path, monkeypatch, counts_csv(minutes=range(480, 480 + len(COUNTS)), rows=(COUNTS,))):
        yield


def _run(monkeypatch, detect_s: float | None, simulate: bool = True):
    served: dict[float, float] = {}

    def spy(policy, inst, current, forecast, options, t0, kind):
        plan, note, trans = _DECIDE(policy, inst, current, forecast, options, t0, kind)
        served[t0] = sum(plan.served().values())
        return plan, note, trans

    monkeypatch.setattr(controller, "_decide", spy)
    inst = make_mps_instance(rates=(3000.0,), slos=(50.0,), memory=(1000.0,), gpus=8)
    res = run_adapt(inst, AdaptOptions(policy="adaptive", downtime="standby", estimate_window_s=120.0,
                                       cold_start_s=None, simulate=simulate, time_limit_s=2.0, detect_s=detect_s))
    return res, served


def test_the_detector_reacts_within_the_burst_minute_and_saves_most_of_it(burst_trace, monkeypatch):
    """The end-of-minute trigger reacts at 660 s, after the burst minute: its 180,000 requests met the 360 req/s
    plan, and with its backlog 46 % of the run's 432,000 requests were late.  The detector decides at 605 s for 3,000
    x 1.2 req/s, and the GPUs it adds take new requests from 620 s: 29 % late."""
    off, served_off = _run(monkeypatch, None)
    on, served_on = _run(monkeypatch, 5.0)
    assert off.detections == 0 and 605.0 not in served_off
    assert on.detections == 1 and served_on[605.0] >= 3000.0 * 1.2 - 1e-6
    late_off = 1.0 - off.slo_attainment
    late_on = 1.0 - on.slo_attainment
    assert late_off > 0.4
    assert late_on < 0.7 * late_off, (off.slo_attainment, on.slo_attainment)


def test_plan_only_counts_the_same_decisions_changes_and_gpu_hours(burst_trace, monkeypatch):
    sim, _ = _run(monkeypatch, 5.0)
    plan_only, _ = _run(monkeypatch, 5.0, simulate=False)
    assert (plan_only.reconfigurations, plan_only.decisions, plan_only.emergencies, plan_only.detections) == (
        sim.reconfigurations, sim.decisions, sim.emergencies, sim.detections)
    assert plan_only.gpu_hours == pytest.approx(sim.gpu_hours, rel=1e-12)
    assert np.isnan(plan_only.slo_attainment)


def test_the_policy_is_told_a_detector_decision(burst_trace, monkeypatch, decision_kinds):
    """Review mend: the kind `set_time` passes (read by `rent_at_epochs`) is the decision's, not always "epoch"."""
    res, _ = _run(monkeypatch, 5.0, simulate=False)
    assert res.detections == 1 and "detector" in decision_kinds and "epoch" in decision_kinds


def test_the_detection_rule_needs_a_clear_excess_over_the_trigger():
    # planned 100 req/s, trigger 0.95: a 5 s count of 475 expected at the trigger's rate, sd about 21.8
    served = np.array([100.0, 100.0, 100.0, 0.0, 0.0])
    rates = np.array([95.0, 95.0 + 0.99 * DETECT_Z * np.sqrt(475) / 5, 95.0 + 1.01 * DETECT_Z * np.sqrt(475) / 5,
                      0.5, 0.7])
    # no capacity: flagged once DETECT_Z arrivals are expected in the 5 s (0.6 req/s)
    assert flagged(rates * 5.0, served, 0.95, 5.0).tolist() == [False, False, True, False, True]
    assert not flagged(rates * 5.0, served, 0.0, 5.0).any()  # the trigger off: the detector too


def test_the_detector_reads_a_seeded_poisson_count_not_the_rate():
    """Review finding: reading r x d as known made false alarms exactly 0 (a detector no real system has).  The count
    is Poisson(r d), the same for the same (seed, minute): at exactly the trigger's rate about 0.13 % of minutes
    are flagged (3 sigma, one-sided)."""
    rates = np.array([95.0, 0.0])
    assert observed_counts(rates, 5.0, 3, 7).tolist() == observed_counts(rates, 5.0, 3, 7).tolist()
    assert observed_counts(rates, 5.0, 3, 7)[1] == 0.0
    hits = sum(bool(flagged(observed_counts(rates, 5.0, 0, m), np.array([100.0, 100.0]), 0.95, 5.0)[0])
               for m in range(20_000))
    assert 5 <= hits <= 70, hits


def test_a_detected_floor_holds_until_the_estimate_has_seen_its_minute():
    obs = Observed()
    obs.add(660.0, np.array([120.0, 0.0]))
    assert obs.floor(2, 645.0).tolist() == [120.0, 0.0]  # the next minute's decision reads up to 645 s
    assert obs.floor(2, 660.0).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("bad", [0.0, -5.0, 60.0, float("inf"), float("nan"), "5", True])
def test_detect_s_must_be_a_positive_number_of_seconds_shorter_than_a_minute(bad):
    with pytest.raises(InputError, match="detect_s") as e:
        AdaptOptions(detect_s=bad)
    assert "\n" not in str(e.value) and str(e.value).endswith(f"got {bad!r}")  # one line, the key and the value


def test_bad_detect_values_are_one_line_exit_2_in_the_cli_and_the_study(capsys, tmp_path, monkeypatch):
    from experiments.adapt_frontier import parse_policy

    st.save(make_mps_instance(rates=(100.0,), slos=(50.0,), memory=(1000.0,)), tmp_path / "one.json")
    with count_trace(tmp_path, monkeypatch, counts_csv(rows=([5] * 20,))):
        args = ("adapt", str(tmp_path / "one.json"), "--trace", "azure-functions-2019", "--plan-only")
        for bad in ("0", "60", "soon", "-1"):
            code, text = run_cli(capsys, *args, "--detect", bad)
            assert code == 2 and ("--detect" in text or "detect_s" in text), text
        code, text = run_cli(capsys, *args, "--detect", "none", "--json")
        assert code == 0 and '"detect_s": null' in text, text
    for bad in ("adaptive[detect_s=0]", "adaptive[detect_s=90]", "adaptive[detect_s=x]"):
        with pytest.raises(SystemExit, match="detect_s"):
            parse_policy(bad)
    assert parse_policy("adaptive[detect_s=none]") == ("adaptive", {"detect_s": None})
    from experiments.adapt_eval import OWNED  # `adapt_eval --variant` parses with parse_policy and the study's own

    assert parse_policy("adaptive[detect_s=10]", OWNED) == ("adaptive", {"detect_s": 10.0})
    assert AdaptOptions(detect_s=np.int64(5)).detect_s == 5  # a numpy number is a number


def test_a_gpu_rebuilt_by_an_emergency_decision_serves_its_old_layout_until_built():
    """Before `Builds`, a GPU that an emergency decision rebuilt while in use was simulated as serving its new layout
    from the decision, 15 s before it could be built (only the GPUs switched on waited)."""
    from stsched.plan import GpuLayout, Partition, Plan, Tenant
    from stsched.planning.adapt.minutes import Builds

    old = GpuLayout((Partition(100.0, (Tenant("a", 4, 10.0),)),))
    new = GpuLayout((Partition(50.0, (Tenant("a", 4, 5.0),)), Partition(50.0, (Tenant("b", 4, 5.0),))))
    before, after = Plan((old, old)), Plan((new, old, new))  # GPU 0 rebuilt, GPU 2 switched on
    builds = Builds()
    builds.record(605.0, before, after, standby=(0, 2), down=(), until=620.0)
    assert builds.serving(after, 605.0).gpus == (old, old, new) and builds.ends(600.0, 660.0) == [620.0]
    assert builds.serving(after, 620.0) is after
    builds.record(610.0, after, before, standby=(0,), down=(), until=None)  # a planned change of GPU 0: prebuilt
    assert builds.serving(before, 612.0) is before and builds.ends(600.0, 660.0) == []
    planned = Builds()
    planned.record(600.0, before, after, standby=(0, 2), down=(), until=None)  # an epoch decision: built ahead
    assert planned.serving(after, 600.0) is after


def test_a_kept_layout_given_new_tenants_by_an_emergency_serves_its_old_tenants_until_built():
    """Review finding: `Builds` covered only the GPUs whose layout changed; an emergency decision that kept GPU 0's
    layout but handed its partition to another service had the new tenant served from the decision, with no model
    load (docs/SIMULATOR.md: such partitions still load a model)."""
    from stsched.plan import GpuLayout, Partition, Plan, Tenant
    from stsched.planning.adapt.minutes import Builds

    old = GpuLayout((Partition(100.0, (Tenant("a", 4, 10.0),)),))
    moved = GpuLayout((Partition(100.0, (Tenant("b", 4, 10.0),)),))  # the same layout, a new tenant service
    builds = Builds()
    builds.record(605.0, Plan((old,)), Plan((moved,)), standby=(), down=(), until=620.0)
    assert builds.serving(Plan((moved,)), 605.0).gpus == (old,) and builds.ends(600.0, 660.0) == [620.0]
    same = Builds()  # new batches or shares of the same tenants: nothing to load
    same.record(605.0, Plan((old,)), Plan((GpuLayout((Partition(100.0, (Tenant("a", 8, 12.0),)),)),)), standby=(),
                down=(), until=620.0)
    assert same.ends(600.0, 660.0) == []


def _pieces(monkeypatch):
    """A spy on the simulator's minutes: minute -> its pieces (start, plan, availability)."""
    from stsched.planning.adapt.minutes import Minutes

    seen: dict[int, list] = {}
    real = Minutes.minute

    def spy(self, m, inst, pieces, t1, last):
        seen[m] = [(a, p, dict(d)) for a, p, d in pieces]
        return real(self, m, inst, pieces, t1, last)

    monkeypatch.setattr(Minutes, "minute", spy)
    return seen


def test_no_request_reaches_a_gpu_the_detector_switched_on_before_its_build_ends(burst_trace, monkeypatch):
    """Review finding: the saving test only bounded late_on from above; here every GPU the decision at 605 s switched
    on is unavailable until 620 s (605 s + the 15 s build) in the pieces the simulator runs."""
    seen = _pieces(monkeypatch)
    on, _ = _run(monkeypatch, 5.0)
    assert on.detections == 1
    (_, before, _), (at, after, down) = seen[10][:2]
    assert at == 605.0
    new = [g for g, lay in enumerate(after.gpus) if lay.used and (g >= len(before.gpus) or not before.gpus[g].used)]
    assert new and all(down.get(g, 0.0) >= 620.0 for g in new), (new, down)


def test_a_switched_on_gpu_of_an_emergency_is_charged_from_the_decision_only(burst_trace, monkeypatch):
    """Review finding: a GPU switched on by a decision made at its own instant was charged its 15 s build twice
    (the standby prep time before the decision, which did not happen, and from the decision on).  GPU-hours are now
    the minutes' time-weighted GPUs in use."""
    on, _ = _run(monkeypatch, 5.0, simulate=False)
    assert on.detections == 1
    weighted = sum(row.gpus * 5.0 for row in on.rows) / 60.0  # 300 s epochs of 5 minutes
    assert on.gpu_hours == pytest.approx(weighted, rel=1e-12)


def test_a_minute_start_emergency_whose_floor_raised_nothing_builds_its_gpus_from_its_instant(tmp_path, monkeypatch):
    """Review finding: an emergency at a minute's start was treated as prepared a lead earlier unless its floor raised
    the estimate; its trigger exists only at that minute's start, so the GPUs it switches on serve 15 s later.  A
    two-minute burst (minutes 10, 11) without the floor and the detector: the emergency at 720 s reads up to 705 s,
    sees minute 10 and switches GPUs on, which serve from 735 s."""
    counts = [10] * 10 + [100, 100] + [10] * 4
    with count_trace(tmp_path, monkeypatch, counts_csv(minutes=range(480, 480 + len(counts)), rows=(counts,))):
        seen = _pieces(monkeypatch)
        inst = make_mps_instance(rates=(3000.0,), slos=(50.0,), memory=(1000.0,), gpus=8)
        res = run_adapt(inst, AdaptOptions(policy="adaptive", downtime="standby", estimate_window_s=120.0,
                                           cold_start_s=None, time_limit_s=2.0, detect_s=None,
                                           emergency_floor=False))
    assert res.emergencies >= 1
    before, (start, after, down) = seen[11][0][1], seen[12][0]
    assert start == 720.0
    new = [g for g, lay in enumerate(after.gpus) if lay.used and (g >= len(before.gpus) or not before.gpus[g].used)]
    assert new and all(down.get(g, 0.0) >= 735.0 for g in new), (new, down)


def test_the_change_log_attributes_every_reconfiguration_to_its_decision(burst_trace, monkeypatch):
    """Issue 18 attribution: `AdaptResult.changes` holds every decision that changed layouts, with its kind; their
    reconfigurations sum to the run's, and the burst's layout change is the detector's at 605 s, switching GPUs on."""
    from experiments.adapt_frontier import attribution

    res, _ = _run(monkeypatch, 5.0, simulate=False)
    assert res.changes and sum(c.reconfigurations for c in res.changes) == res.reconfigurations
    assert all(c.kind in ("epoch", "emergency", "detector") and c.reconfigurations > 0 for c in res.changes)
    burst = [c for c in res.changes if c.t_s == 605.0]
    assert len(burst) == 1 and burst[0].kind == "detector" and burst[0].gpus_after > burst[0].gpus_before
    cols = attribution(res.changes)
    assert cols["reconf_epoch"] + cols["reconf_emergency"] + cols["reconf_detector"] == res.reconfigurations
    assert cols["gpus_on_detector"] == sum(c.switched_on for c in res.changes if c.kind == "detector")
    assert all(c.switched_on + c.switched_off + c.rebuilt == c.reconfigurations for c in res.changes)
    assert cols["reconf_rebuilt"] == sum(c.rebuilt for c in res.changes)
    assert res.to_dict()["changes"][0]["kind"] == res.changes[0].kind
