"""Arrival processes and the mapping of real traces onto services."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.errors import InputError
from stsched.simulation import arrivals, traces
from stsched.simulation.arrivals import ArrivalSpec, generate


@settings(max_examples=15, deadline=None)
@given(st.floats(1.0, 5000.0), st.integers(0, 10_000))
def test_poisson_count_and_order(rate, seed):
    t = arrivals.poisson(rate, 10.0, np.random.default_rng(seed))
    assert np.all(np.diff(t) >= 0) and (len(t) == 0 or (t[0] >= 0 and t[-1] < 10.0))
    assert abs(len(t) - rate * 10) <= 6 * np.sqrt(rate * 10) + 1


def test_poisson_gaps_are_exponential():
    t = arrivals.poisson(1000.0, 100.0, np.random.default_rng(1))
    gaps = np.diff(t)
    assert gaps.mean() == pytest.approx(1e-3, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("cv", [0.5, 1.0, 3.0])
def test_gamma_rate_and_cv(cv):
    t = arrivals.gamma(500.0, cv, 400.0, np.random.default_rng(2))
    gaps = np.diff(t)
    assert len(t) / 400.0 == pytest.approx(500.0, rel=0.05 * cv)
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.05)


def test_deterministic_spacing():
    t = arrivals.deterministic(4.0, 2.0)
    assert np.array_equal(t, np.arange(8) / 4.0)


def test_piecewise_poisson_follows_bins_and_wraps():
    rates = np.array([100.0, 0.0, 300.0])
    t = arrivals.piecewise_poisson(rates, 60.0, 0.0, 360.0, np.random.default_rng(0))
    counts = np.histogram(t, bins=np.arange(0, 361, 60))[0]
    assert counts[1] == 0 and counts[4] == 0  # bin 1 and its repeat
    assert counts[2] == pytest.approx(18000, rel=0.05) and counts[0] == pytest.approx(6000, rel=0.05)


def test_count_trace_mapping_is_deterministic_and_peak_normalised():
    trace = traces.load_count_trace("azure-functions-2019")
    totals = trace.counts.sum(axis=1)
    assert np.all(np.diff(totals) <= 0)  # busiest first
    assert trace.bins == 480 and trace.bin_s == 60.0
    sched = traces.rate_schedule([100.0, 20.0, 5.0])
    assert sched.shape == (3, 480)
    assert np.allclose(sched.max(axis=1), [100.0, 20.0, 5.0])
    assert np.allclose(sched[0] / 100.0, trace.counts[0] / trace.counts[0].max())
    mean = traces.rate_schedule([100.0], normalise="mean")
    assert mean.mean() == pytest.approx(100.0)


def test_trace_arrivals_follow_the_shape():
    names, rates = ["a", "b"], [2000.0, 500.0]
    arr = generate(ArrivalSpec.parse("trace:azure-functions-2019"), names, rates, 180.0, seed=1)
    sched = traces.rate_schedule(rates)
    for i, n in enumerate(names):
        counts = np.histogram(arr[n], bins=[0, 60, 120, 180])[0]
        assert np.allclose(counts, sched[i, :3] * 60, rtol=0.1)
    again = generate(ArrivalSpec.parse("trace:azure-functions-2019"), names, rates, 180.0, seed=1)
    assert all(np.array_equal(arr[n], again[n]) for n in names)


@pytest.mark.parametrize("name", traces.TIMESTAMP_TRACES)
def test_timestamp_replay_keeps_mean_rate(name):
    for i in range(3):
        t = traces.replay_stream(name, i, 400.0, 200.0)
        assert np.all(np.diff(t) >= 0) and t[0] >= 0 and t[-1] < 200.0
        assert len(t) / 200.0 == pytest.approx(400.0, rel=0.05)
    assert max(traces.stream_cv(name)) > 1.0  # real traces are burstier than Poisson


def test_generate_streams_are_independent_per_service():
    a = generate(ArrivalSpec(), ["x", "y"], [100.0, 100.0], 10.0, seed=5)
    b = generate(ArrivalSpec(), ["x"], [100.0], 10.0, seed=5)
    assert np.array_equal(a["x"], b["x"]) and not np.array_equal(a["x"], a["y"])


def test_spec_parse_and_errors():
    assert ArrivalSpec.parse("gamma:2.5").cv == 2.5
    assert ArrivalSpec.parse("trace:azure-llm-inference-2023").trace == "azure-llm-inference-2023"
    assert ArrivalSpec.parse("poisson").describe() == "poisson"
    for bad in ("gamma", "gamma:0", "poisson:3", "trace:", "uniform"):
        with pytest.raises(InputError):
            ArrivalSpec.parse(bad)
    with pytest.raises(InputError):
        generate(ArrivalSpec(), ["x"], [1.0], float("nan"))
