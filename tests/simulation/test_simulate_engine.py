"""The batching engine against closed forms and an independent, naive event-by-event reference."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.simulation.engine import run_partition
from stsched.simulation.routing import assign

T = 1.0 / 256.0  # a period exactly representable in binary, so every sum below is exact


def test_closed_form_stable_deterministic():
    """Arrivals every T, batch 4, execution 3T: request 0 runs alone, then every batch at 3nT takes the three
    requests that arrived since, so request i >= 1 is dispatched at 3*ceil(i/3)*T and done 3T later."""
    n = 300
    arr = np.arange(n) * T
    out = run_partition([arr], [3 * T], [4])
    lat = out.finish[0] - arr
    expect = np.array([3 * T] + [(3 * math.ceil(i / 3) + 3 - i) * T for i in range(1, n)])
    assert np.array_equal(lat, expect)
    assert lat.max() == 5 * T  # the checker's bound d + e = 3T + 3T is not reached: the cycle holds 3 < 4 requests
    assert out.free_at == out.finish[0][-1]


def test_closed_form_overloaded_deterministic():
    """Batch 2, execution 3T, one arrival per T: the partition serves 2 requests per 3T and falls behind by one
    request per batch, so request i waits (3*ceil(i/2) - i)*T before its batch: latency grows linearly."""
    n = 200
    arr = np.arange(n) * T
    out = run_partition([arr], [3 * T], [2])
    lat = out.finish[0] - arr
    expect = np.array([3 * T] + [(3 * math.ceil(i / 2) + 3 - i) * T for i in range(1, n)])
    assert np.array_equal(lat, expect)
    assert lat[-1] > 30 * lat[0]


def test_partial_batches_use_fill_times():
    """Sparse arrivals: every request runs alone for the batch-of-one time."""
    arr = np.arange(50) * 10 * T
    fill = [0.0, 1.5 * T, 2 * T, 3 * T, 3 * T]
    out = run_partition([arr], [fill], [4])
    assert np.array_equal(out.finish[0] - arr, np.full(50, 1.5 * T))


def test_available_and_horizon():
    arr = np.arange(20) * T
    out = run_partition([arr], [T / 2], [4], available_s=8 * T, horizon_s=12 * T)
    assert out.start[0][0] == 8 * T  # nothing served before the partition is available
    assert np.isnan(out.start[0][-1])  # not dispatched before the horizon
    assert np.nanmax(out.start[0]) < 12 * T


def test_multi_process_partition():
    """Two processes, batch 1, execution 2T, one arrival per T: the two servers alternate, no queueing."""
    arr = np.arange(100) * T
    out = run_partition([arr], [2 * T], [1], procs=2)
    assert np.array_equal(out.finish[0] - arr, np.full(100, 2 * T))


# ------------------------------------------------------------------------------------------ naive reference
def reference(arrivals, exec_by_fill, batches, available=0.0):
    """Round robin written the slow, obvious way: explicit queues, time advances event by event."""
    k = len(arrivals)
    pending = [deque(enumerate(a)) for a in arrivals]
    finish = [np.full(len(a), np.nan) for a in arrivals]
    queues = [deque() for _ in range(k)]
    t, turn = available, 0
    while any(pending) or any(queues):
        for j in range(k):  # admit everything that has arrived by t
            while pending[j] and pending[j][0][1] <= t:
                queues[j].append(pending[j].popleft())
        served = False
        for step in range(k):
            j = (turn + step) % k
            if queues[j]:
                take = [queues[j].popleft() for _ in range(min(batches[j], len(queues[j])))]
                d = exec_by_fill[j][len(take)]
                for idx, _ in take:
                    finish[j][idx] = t + d
                t += d
                turn = (j + 1) % k
                served = True
                break
        if not served:
            t = max(t, min(p[0][1] for p in pending if p))
    return finish


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_engine_matches_reference(data):
    k = data.draw(st.integers(1, 3))
    arrivals, fills, batches = [], [], []
    for _ in range(k):
        n = data.draw(st.integers(0, 40))
        gaps = data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
        arrivals.append(np.cumsum(np.array(gaps, dtype=float)) * T)
        b = data.draw(st.integers(1, 4))
        batches.append(b)
        fills.append([0.0] + [float(data.draw(st.integers(1, 8))) * T for _ in range(b)])
    if sum(len(a) for a in arrivals) == 0:
        arrivals[0] = np.array([0.0])
    available = data.draw(st.integers(0, 5)) * T
    out = run_partition(arrivals, fills, batches, available_s=available)
    ref = reference(arrivals, fills, batches, available)
    for j in range(k):
        assert np.array_equal(out.finish[j], ref[j])


# ------------------------------------------------------------------------------------------ routing
@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.01, 10.0), min_size=1, max_size=5), st.integers(1, 3000))
def test_interleave_shares_are_exact(weights, n):
    which = assign(n, weights, "interleave")
    w = np.array(weights) / sum(weights)
    for prefix in (n // 3, n):
        counts = np.bincount(which[:prefix], minlength=len(w))
        assert np.all(np.abs(counts - prefix * w) <= len(w))


def test_random_routing_shares():
    which = assign(100_000, [1.0, 3.0], "random", np.random.default_rng(1))
    assert abs((which == 1).mean() - 0.75) < 0.01


def test_routing_rejects_bad_weights():
    with pytest.raises(ValueError):
        assign(10, [1.0, -1.0])
