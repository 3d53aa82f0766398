"""The slowest batches of an executor run, as the simulator draws them again (session 16, issue 15).

The measured batch-time ratios were kept at 0, 1, ..., 100 % and drawn by linear interpolation, so the draws above
the 99th percentile were spread evenly up to the slowest batch of the run: one stall in 5,000 batches came back in
half a percent of the draws, and the predicted p99 of a queue was too heavy."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

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
