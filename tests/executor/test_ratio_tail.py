"""What the executor measures of its host, as the simulator draws it again (session 16, issue 15).

The measured batch-time ratios were kept at 0, 1, ..., 100 % and drawn by linear interpolation, so the draws above
the 99th percentile were spread evenly up to the slowest batch of the run: one stall in 5,000 batches came back in
half a percent of the draws, and the predicted p99 of a queue was too heavy."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from stsched.executor.host import measure_host
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.simulation.simulator import partition_timings
from stsched.simulation.summary import RequestRecords
from tests.conftest import make_mps_instance


def _run_with_one_stall(n: int = 5000, stall: float = 100.0):
    """An executor run of n batches of one request each, a second apart, every batch at the table's time except one
    `stall` times slower."""
    inst = make_mps_instance(rates=(10.0,), slos=(50.0,), memory=(1000.0,))
    plan = Plan((GpuLayout((Partition(100.0, (Tenant("s0", 1, 10.0),)),)),))
    pt = partition_timings(inst, plan, "fixed")[0]
    e = pt.exec_s[0][1]
    ratio = np.ones(n)
    ratio[n // 2] = stall
    start = np.arange(n, dtype=float)
    arrival = start - 1e-4
    batches = pd.DataFrame({"gpu": 0, "partition": 0, "service": "s0", "start_s": start, "exec_ms": ratio * e * 1e3,
                            "requests": 1, "model_ms": e * 1e3})
    zeros = np.zeros(n, dtype=np.int32)
    records = RequestRecords(inst.service_names, zeros, arrival, start, start + ratio * e, zeros, zeros)
    return SimpleNamespace(records=records, batches=batches), inst, plan, pt, ratio


def test_the_drawn_ratios_keep_the_measured_share_of_slow_batches():
    run, inst, plan, pt, ratio = _run_with_one_stall()
    drawn = measure_host(run, inst, plan, "fixed").exec_ratio.batch_factors()(pt, 200_000, np.random.default_rng(3))
    drawn = drawn[0, 0]  # the tenant's row for back-to-back batches (per tenant, not by class: the same draws)
    # measured: 1 batch in 5,000 above 2 x the table, mean 1.0198; drawn from 0..100 % alone: 0.99 % of the draws
    # above 2 (evenly between the 99th percentile, 1.0, and the stall, 100) and a mean of 1.495
    assert (drawn > 2.0).mean() < 5 * (ratio > 2.0).mean()
    assert abs(drawn.mean() - ratio.mean()) < 0.02


def test_the_wake_up_runs_from_the_arrival_that_ended_the_idle_not_from_the_request_served_first():
    """Session 16: a worker that woke late found a second tenant's request too and served it first (round robin);
    its delay was measured from that later arrival and the first tenant's wait counted as queueing (under load,
    the mean wake-up was 10 % short)."""
    inst = make_mps_instance(rates=(10.0, 10.0), slos=(50.0, 80.0), memory=(1000.0, 1000.0))
    plan = Plan((GpuLayout((Partition(100.0, (Tenant("s0", 1, 10.0), Tenant("s1", 1, 10.0))),)),))
    e0, e1 = (x[1] for x in partition_timings(inst, plan, "fixed")[0].exec_s)
    # s0's request arrives at 1.000 s, s1's at 1.001 s; the worker wakes at 1.002 s and runs s1's, then s0's
    arrival = np.array([1.000, 1.001])
    start = np.array([1.002 + e1 + 1e-5, 1.002])
    finish = start + np.array([e0, e1])
    records = RequestRecords(inst.service_names, np.array([0, 1], dtype=np.int32), arrival, start, finish,
                             np.zeros(2, dtype=np.int32), np.zeros(2, dtype=np.int32))
    batches = pd.DataFrame({"gpu": 0, "partition": 0, "service": ["s1", "s0"], "start_s": start[::-1],
                            "exec_ms": [e1 * 1e3, e0 * 1e3], "requests": 1, "model_ms": [e1 * 1e3, e0 * 1e3]})
    host = measure_host(SimpleNamespace(records=records, batches=batches), inst, plan, "fixed")
    assert host.wake.count == 1 and host.wake.mean_s == pytest.approx(0.002)  # from 1.000 s, not 1.001 s
    assert host.gap.count == 1 and host.gap.mean_s == pytest.approx(1e-5)
    from stsched.executor.host import waiting_since

    np.testing.assert_allclose(waiting_since(start, arrival, start[::-1]), [1.000, 1.000])
