"""Issue 18: forecast-robust layouts (stsched.planning.adapt.forecast): new layouts carry a high quantile of the
last hours' rates where it is above the estimate; rate shares follow the estimate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from stsched.checker import check
from stsched.errors import InputError
from stsched.planning.adapt import AdaptOptions, run_adapt
from stsched.planning.adapt.estimate import RateEstimator
from stsched.planning.adapt.forecast import Forecast, robust_rates
from stsched.planning.adapt.policies import Adaptive, PolicyOptions
from stsched.planning.adapt.rebalance import rebalance
from stsched.scenarios import gpulet_mix

rates = st.lists(st.floats(0.0, 1e4), min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(rates, st.integers(0, 50), st.floats(0.0, 1.0), st.floats(60.0, 3000.0))
def test_forecast_reads_only_the_past_and_is_monotone_in_its_quantile(row, cut, q, window):
    sched = np.array([row, row[::-1]])
    tau = 60.0 * min(cut, len(row))
    f = Forecast(window, q, 1.2)
    got = f.rates(sched, 60.0, tau)
    future = sched.copy()
    future[:, max(1, int(tau // 60)):] = 1e9  # bins that have not ended at tau change nothing
    assert np.allclose(got, f.rates(future, 60.0, tau))
    assert np.all(Forecast(window, 1.0, 1.2).rates(sched, 60.0, tau) >= got - 1e-9)
    assert np.all(Forecast(window, 0.0, 1.2).rates(sched, 60.0, tau) <= got + 1e-9)
    # quantile 1 over the estimate's window is the estimate (peak x head-room)
    assert np.allclose(Forecast(window, 1.0, 1.2).rates(sched, 60.0, tau),
                       RateEstimator(window, 1.2, "peak").estimate(sched, 60.0, tau))
    assert np.all(robust_rates(got, got[::-1]) >= np.maximum(got, got[::-1]) - 1e-12)


def test_bad_forecast_knobs_are_refused():
    with pytest.raises(InputError, match="quantile"):
        Forecast(3600.0, 1.5)
    with pytest.raises(InputError, match="forecast_s"):
        AdaptOptions(forecast_s=0.0)
    with pytest.raises(InputError, match="forecast_q"):
        AdaptOptions(forecast_q=-0.1)


def test_a_scale_up_builds_layouts_for_the_forecast_and_serves_the_estimate():
    inst = gpulet_mix("m2", 6, rate=100.0)
    pol = Adaptive(PolicyOptions(time_limit_s=2.0, adapt_solver=""))
    low = inst.scaled(0.5)
    plan = pol.initial(low)
    high = inst.scaled(1.2)  # the plan in force cannot carry it: a scale-up
    assert rebalance(high, plan) is None
    forecast = inst.scaled(1.8)
    pol.set_forecast({s.name: s.rate for s in forecast.services})
    new, note = pol.next(high, plan)
    assert check(high, new).valid
    assert rebalance(forecast, new) is not None, note  # its layouts carry the forecast
    # without the forecast the same scale-up is planned for the estimate alone: no more GPUs, no forecast carried
    plain = Adaptive(PolicyOptions(time_limit_s=2.0, adapt_solver=""))
    plain.initial(low)
    other, _ = plain.next(high, plan)
    assert other.gpus_used <= new.gpus_used and rebalance(forecast, other) is None


def test_run_adapt_with_a_forecast_keeps_every_plan_valid():
    res = run_adapt(gpulet_mix("m2", 4, rate=100.0),
                    AdaptOptions(simulate=False, hours=0.5, forecast_s=3600.0, forecast_q=0.9, adapt_solver=""))
    assert res.decisions > 0 and res.settings["forecast_s"] == 3600.0
