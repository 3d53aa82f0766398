"""Issue 18 session 18: the observed start (`cold_count_s`): the initial deployment planned for the Poisson upper
bound of the first seconds' arrivals instead of the declared rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.stats import norm, poisson

from stsched.errors import InputError
from stsched.planning.adapt import AdaptOptions, controller, run_adapt
from stsched.planning.adapt.cold import observed_start, poisson_upper
from stsched.planning.adapt.detect import DETECT_Z, observed_counts
from stsched.planning.adapt.policies import Adaptive
from tests.conftest import count_trace, counts_csv, make_mps_instance, run_cli

# one function, peak-normalised to the declared 3,000 req/s: idle in minute 0, then 300 req/s (10 counts of 100)
COUNTS = [0] + [1] * 10 + [10] + [1] * 3


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 200_000), st.floats(0.5, 59.0))
def test_the_upper_bound_covers_the_count_at_the_detector_level(n, seconds):
    up = float(poisson_upper(np.array([n]), seconds)[0])
    assert up * seconds >= n  # never below the observed rate
    assert up <= float(poisson_upper(np.array([n + 1]), seconds)[0])  # more arrivals, a higher bound
    # the exact one-sided bound: a stream at the bound shows n or fewer arrivals with probability 1 - Phi(z)
    assert poisson.cdf(n, up * seconds) == pytest.approx(norm.sf(DETECT_Z), rel=1e-6)


def test_an_idle_first_minute_still_gets_a_few_requests_per_second():
    assert poisson_upper(np.array([0]), 5.0)[0] == pytest.approx(-math.log(norm.sf(DETECT_Z)) / 5.0)
    cold = observed_start(np.array([0.0, 4000.0]), 1.2, 5.0, seed=3)
    counts = observed_counts(np.array([0.0, 4000.0]), 5.0, 3, 0)  # the detector's draw of minute 0
    assert np.allclose(cold.declared, poisson_upper(counts, 5.0) * 1.2)
    assert cold.declared[0] > 0 and 4000.0 * 1.2 < cold.declared[1] < 4000.0 * 1.2 * 1.1
    est = np.array([7.0, 9.0])  # the initial deployment takes the bound, every later decision the estimate
    assert np.array_equal(cold.rates(est, 0.0, initial=True), cold.declared)
    assert np.array_equal(cold.rates(est, 0.0, initial=False), est) and cold.observed


@pytest.mark.parametrize("bad", [0.0, 60.0, -1.0, float("nan"), float("inf"), True, "5"])
def test_bad_counting_seconds_are_refused(bad):
    with pytest.raises(InputError, match="cold_count_s"):
        AdaptOptions(cold_start_s=None, cold_count_s=bad)


def test_the_observed_start_replaces_the_declared_floor_not_both():
    with pytest.raises(InputError, match="cold_count_s 5.0 replaces the declared rates' floor: set cold_start_s=None"):
        AdaptOptions(cold_count_s=5.0)  # cold_start_s left at its default 300 s


@pytest.mark.parametrize("observed", [False, True])
def test_the_initial_deployment_plans_for_what_the_first_seconds_showed(tmp_path, monkeypatch, observed):
    asked, waived = [], []
    real = controller._initial

    def spy(policy, inst):
        asked.append(inst.services[0].rate)
        return real(policy, inst)

    monkeypatch.setattr(controller, "_initial", spy)
    monkeypatch.setattr(Adaptive, "waive_rent", lambda self: waived.append(self._decision))
    inst = make_mps_instance(rates=(3000.0,), slos=(50.0,), memory=(1000.0,), gpus=8)
    cold = dict(cold_start_s=None, cold_count_s=5.0) if observed else dict(cold_start_s=300.0)
    with count_trace(tmp_path, monkeypatch, counts_csv(minutes=range(480, 480 + len(COUNTS)), rows=(COUNTS,))):
        res = run_adapt(inst, AdaptOptions(policy="adaptive", downtime="standby", simulate=False, time_limit_s=2.0,
                                           adapt_solver="", **cold))
    if observed:  # a count of 0 in the first 5 s: the bound's 1.3 req/s x 1.2, and nothing to release later
        assert asked == [pytest.approx(poisson_upper(np.array([0]), 5.0)[0] * 1.2)] and waived == []
        assert res.settings["cold_count_s"] == 5.0
        assert res.detections >= 1  # minute 1's 300 req/s: the detector is the safety net
    else:  # the declared 3,000 req/s x 1.2, given back without rent at the first decision after 300 s
        assert asked == [pytest.approx(3600.0)] and len(waived) == 1


def test_the_command_line_takes_the_observed_start(tmp_path, monkeypatch, capsys):
    import stsched as st
    from experiments.adapt_frontier import parse_policy

    st.save(make_mps_instance(rates=(100.0,), slos=(50.0,), memory=(1000.0,)), tmp_path / "one.json")
    with count_trace(tmp_path, monkeypatch, counts_csv(rows=([5] * 20,))):
        args = ("adapt", str(tmp_path / "one.json"), "--trace", "azure-functions-2019", "--plan-only")
        code, text = run_cli(capsys, *args, "--cold-count", "5")
        assert code == 2 and "cold_count_s 5.0 replaces" in text, text
        for bad in ("0", "60", "soon"):
            code, text = run_cli(capsys, *args, "--cold-start", "none", "--cold-count", bad)
            assert code == 2 and ("--cold-count" in text or "cold_count_s" in text), text
        code, text = run_cli(capsys, *args, "--cold-start", "none", "--cold-count", "5", "--json")
        assert code == 0 and '"cold_count_s": 5.0' in text, text
    assert parse_policy("adaptive[cold_start_s=none,cold_count_s=5]") == (
        "adaptive", {"cold_start_s": None, "cold_count_s": 5.0})
