"""Issue 18: an emergency decision plans an overloaded service for at least the rate of the minute that triggered it
(`AdaptOptions.emergency_floor`), and the burst reserve (`burst_hold_s`)."""

from __future__ import annotations

import numpy as np
import pytest

import stsched.planning.adapt.controller as controller
from stsched.errors import InputError
from stsched.planning.adapt import AdaptOptions, run_adapt
from stsched.planning.adapt.burst import BurstMemory
from tests.conftest import count_trace, counts_csv, make_mps_instance

_DECIDE = controller._decide  # the real one: a second spy must not wrap the first

# one function, peak-normalised to the service's declared 100 req/s: the epoch decision at minute 5 (data up to
# minute 3 with the 15 s standby lead) plans for 60 x 1.2 = 72 req/s; minute 7 (70 req/s) overloads it, and the
# emergency decision at minute 8 sees only minutes 5-6 (10 req/s) in its 2-minute window, while minute 8 is the peak
COUNTS = [10, 10, 10, 60, 10, 10, 10, 70, 100, 10, 10, 10]


@pytest.fixture
def burst_trace(tmp_path, monkeypatch):
    with count_trace(tmp_path, monkeypatch, counts_csv(minutes=range(480, 480 + len(COUNTS)), rows=(COUNTS,))):
        yield


def _served_at_decisions(monkeypatch, floor: bool, burst_hold_s: float | None = None) -> dict[float, float]:
    served: dict[float, float] = {}
    real = _DECIDE

    def spy(policy, inst, current, forecast, options, t0, kind):
        plan, note, trans = real(policy, inst, current, forecast, options, t0, kind)
        served[t0] = sum(plan.served().values())
        return plan, note, trans

    monkeypatch.setattr(controller, "_decide", spy)
    inst = make_mps_instance(rates=(100.0,), slos=(50.0,), memory=(1000.0,))
    res = run_adapt(inst, AdaptOptions(policy="adaptive", downtime="standby", estimate_window_s=120.0,
                                       cold_start_s=None, simulate=False, time_limit_s=2.0, emergency_floor=floor,
                                       burst_hold_s=burst_hold_s))
    assert res.emergencies >= 1
    return served


def test_an_emergency_decision_never_lowers_an_overloaded_service_below_its_triggering_minute(burst_trace,
                                                                                              monkeypatch):
    """The emergency decision of minute 8 (triggered by minute 7's 70 req/s against the 72 planned) read only the
    minutes before the standby lead, whose peak had dropped to 10 req/s: it lowered the service's share to 12 req/s
    in the minute of its 100 req/s peak (bert~resnet101 on functions 14..17: 2,890 -> 2,248 req/s at 8,000).  Now it
    plans for at least 70 x 1.2 req/s."""
    served = _served_at_decisions(monkeypatch, floor=True)
    assert served[300.0] == pytest.approx(72.0, rel=1e-6)
    assert served[480.0] >= 70.0 * 1.2 - 1e-6


def test_without_the_floor_the_emergency_decision_follows_the_stale_estimate(burst_trace, monkeypatch):
    served = _served_at_decisions(monkeypatch, floor=False)
    assert served[480.0] == pytest.approx(12.0, rel=1e-6)  # the rows before the fix (`emergency_floor=False`)


def test_the_policy_is_told_an_emergency_decision(burst_trace, monkeypatch, decision_kinds):
    """Review mend: the kind `set_time` passes (read by `rent_at_epochs`) is the decision's, not always "epoch"."""
    _served_at_decisions(monkeypatch, floor=True)
    assert "emergency" in decision_kinds and "epoch" in decision_kinds


def test_emergency_floor_must_be_a_bool():
    with pytest.raises(InputError, match="emergency_floor must be a bool"):
        AdaptOptions(emergency_floor="yes")


def test_the_burst_reserve_holds_a_burst_for_burst_hold_s_then_forgets_it(tmp_path, monkeypatch):
    """`burst_hold_s` (`stsched.planning.adapt.burst`): minute 8's 100 req/s overloaded the plan (84 req/s); the
    epoch decision at 900 s (its 2-minute window sees 10 req/s) plans for it with a 600 s hold, not without; the
    decision at 1200 s (the burst ended 660 s before) has forgotten it."""
    counts = COUNTS + [10] * 9
    with count_trace(tmp_path, monkeypatch, counts_csv(minutes=range(480, 480 + len(counts)), rows=(counts,))):
        held = _served_at_decisions(monkeypatch, floor=True, burst_hold_s=600.0)
        plain = _served_at_decisions(monkeypatch, floor=True)
    assert held[900.0] == pytest.approx(120.0, rel=1e-6) and plain[900.0] == pytest.approx(12.0, rel=1e-6)
    assert held[1200.0] == pytest.approx(12.0, rel=1e-6)


def test_burst_memory_keeps_the_largest_unexpired_burst_it_has_seen():
    mem = BurstMemory(100.0)
    mem.record(60.0, np.array([2.0, 0.5]), np.array([50.0, 9.0]), trigger=0.95, headroom=1.2)
    mem.record(120.0, np.array([1.5, 0.5]), np.array([30.0, 9.0]), trigger=0.95, headroom=1.2)
    assert mem.floor(2, 59.0).tolist() == [0.0, 0.0]  # not ended yet when seen
    assert mem.floor(2, 150.0).tolist() == pytest.approx([60.0, 0.0])
    assert mem.floor(2, 170.0).tolist() == pytest.approx([36.0, 0.0])  # the first expired at 160 s
    assert mem.floor(2, 220.0).tolist() == [0.0, 0.0]
    mem.record(240.0, np.array([9.0, 9.0]), np.array([5.0, 5.0]), trigger=0.0, headroom=1.2)  # trigger 0: never
    assert mem.floor(2, 250.0).tolist() == [0.0, 0.0]


@pytest.mark.parametrize("bad", [0.0, -60.0, float("inf"), float("nan"), "600"])
def test_burst_hold_s_must_be_a_finite_positive_number(bad):
    with pytest.raises(InputError, match="burst_hold_s must be a finite number > 0"):
        AdaptOptions(burst_hold_s=bad)
