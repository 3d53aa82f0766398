"""The host's slow spells replayed (`stsched.simulation.replay.RatioTrace`): each tenant's latest measured ratio in
dispatch order, from a random offset, as the simulator's per-tenant factors."""

from __future__ import annotations

import numpy as np
import pytest
from tests.simulation.test_simulate import closed_form_instance

from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.simulation import ArrivalSpec, SimOptions, simulate
from stsched.simulation.replay import RatioTrace


class _PT:
    gpu, partition = 0, 0

    class part:  # noqa: N801 - stands in for a PartitionTiming's partition
        tenants = ("a", "b")


TRACE = RatioTrace({(0, 0): (1, 0, 0, 1, 0)}, {(0, 0): (9.0, 1.0, 2.0, 8.0, 3.0)}, "test")


def test_each_tenant_takes_its_latest_ratio_in_dispatch_order():
    fill = TRACE.filled((0, 0), 2)
    assert fill.tolist() == [[1.0, 1.0, 2.0, 2.0, 3.0],  # tenant 0: its first ratio before its first batch
                             [9.0, 9.0, 9.0, 8.0, 8.0]]
    assert TRACE.filled((0, 0), 3) is None and TRACE.filled((0, 1), 2) is None  # a tenant or partition unmeasured


def test_factors_replay_the_sequence_from_a_random_offset():
    draw = TRACE.batch_factors()
    fill = TRACE.filled((0, 0), 2)
    seen = set()
    for s in range(20):
        x = draw(_PT, 12, np.random.default_rng(s))
        assert x.shape == (2, 2, 12) and np.array_equal(x[:, 0], x[:, 1])  # one row for both classes
        o = next(o for o in range(5) if np.array_equal(x[:, 0, :5], np.roll(fill, -o, axis=1)))
        assert np.array_equal(x[:, 0], fill[:, (o + np.arange(12)) % 5])  # consecutive, wrapping around
        seen.add(o)
    assert len(seen) > 1
    assert draw(type("P", (), {"gpu": 1, "partition": 0, "part": _PT.part}), 4, np.random.default_rng(0)) is None


def test_a_trace_of_ones_is_the_table_and_a_slower_one_slows_every_batch():
    inst = closed_form_instance()
    plan = Plan((GpuLayout((Partition(100.0, (Tenant("s", 4, 256.0),)),)),))
    opts = SimOptions(duration_s=2.0, exec_model="fixed", seed=3)
    base = simulate(inst, plan, ArrivalSpec("poisson"), opts).summary
    ones = RatioTrace({(0, 0): (0,) * 7}, {(0, 0): (1.0,) * 7})
    same = simulate(inst, plan, ArrivalSpec("poisson"), opts, batch_factors=ones.batch_factors()).summary
    assert same.p99_ms == pytest.approx(base.p99_ms) and same.slo_attainment == base.slo_attainment
    slower = RatioTrace({(0, 0): (0,) * 7}, {(0, 0): (1.3,) * 7})
    slow = simulate(inst, plan, ArrivalSpec("poisson"), opts, batch_factors=slower.batch_factors()).summary
    assert slow.p50_ms > base.p50_ms * 1.2


def test_an_aligned_replay_starts_at_the_traces_first_batch_every_draw():
    """Session 16: `aligned` replays a run's own trace in its own order (exec_vs_sim's own/trace+host check)."""
    draw = TRACE.batch_factors(aligned=True)
    fill = TRACE.filled((0, 0), 2)
    for s in range(5):
        x = draw(_PT, 5, np.random.default_rng(s))
        assert np.array_equal(x[:, 0], fill) and np.array_equal(x[:, 0], x[:, 1])


def test_an_aligned_replay_beyond_the_trace_keeps_each_tenants_last_ratio():
    """An aligned replay asked for more batches than the trace holds (the simulator dispatched more than the
    executor did) wrapped silently to the trace's first batches, giving the extra batches the ratios of the run's
    start; the later batches are those after the trace's end, so each tenant keeps its last measured ratio."""
    x = TRACE.batch_factors(aligned=True)(_PT, 8, np.random.default_rng(0))
    fill = TRACE.filled((0, 0), 2)
    assert np.array_equal(x[:, 0, :5], fill)
    assert x[:, 0, 5:].tolist() == [[3.0] * 3, [8.0] * 3]
