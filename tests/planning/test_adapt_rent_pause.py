"""Issue 18: the compaction rent through decisions with nothing spare (`rent_pause`), and emergency decisions that
see the minute that triggered them (`emergency_fresh`)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stsched.planning.adapt import AdaptOptions, run_adapt
from stsched.planning.adapt.estimate import RateEstimator
from stsched.planning.adapt.policies import Adaptive, PolicyOptions
from stsched.scenarios import gpulet_mix


@pytest.mark.parametrize("pause", [False, True])
def test_rent_is_kept_through_a_decision_with_nothing_spare_only_with_rent_pause(rent_setting, pause):
    inst, plan, one = rent_setting
    pol = Adaptive(PolicyOptions(compact_rent=1000.0, rent_pause=pause))
    need = {"plan": one}
    pol._fresh = lambda instance: need["plan"]  # the plan from scratch the rent is measured against
    paid = []
    for fresh in (one, one, plan, one):  # spare, spare, nothing spare, spare
        need["plan"] = fresh
        pol._begin(inst)
        out, _ = pol._compact_spare(inst, plan, plan, "")
        assert out is plan  # a rent of 1000 per change buys nothing
        paid.append(pol._rent_paid)
    assert paid[:2] == [1.0, 2.0]
    assert paid[2:] == ([2.0, 3.0] if pause else [0.0, 1.0])
    pol._begin(inst)  # a layout change starts it again in both cases
    pol._compact_spare(inst, plan, replace(plan, gpus=plan.gpus[:1]), "")
    assert pol._rent_paid == 0.0


def test_emergency_decisions_see_the_minute_that_triggered_them(monkeypatch):
    seen: list[float] = []
    real = RateEstimator.estimate

    def spy(self, schedule, bin_s, tau):
        seen.append(tau)
        return real(self, schedule, bin_s, tau)

    monkeypatch.setattr(RateEstimator, "estimate", spy)
    inst = gpulet_mix("scen1", 400, rate=4000.0)
    base = AdaptOptions(policy="static-peak", downtime="standby", function_offset=14, hours=0.5, simulate=False,
                        trigger=0.5, detect_s=None)  # the end-of-minute trigger's decisions (the detector's: test_adapt_detect)
    runs = {}
    for fresh in (False, True):
        seen.clear()
        res = run_adapt(inst, replace(base, emergency_fresh=fresh))
        assert res.emergencies > 0
        runs[fresh] = list(seen)
    lead = base.costs.of(inst.mechanism.kind)
    off_epoch = lambda taus: [t for t in taus if (t + lead) % 300 and t % 300]  # noqa: E731
    assert off_epoch(runs[False]) and all(t % 60 == 60 - lead for t in off_epoch(runs[False]))
    assert off_epoch(runs[True]) and all(t % 60 == 0 for t in off_epoch(runs[True]))
