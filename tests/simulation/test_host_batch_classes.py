"""Batch times by tenant and by class (back to back, after idling): measured by the executor, drawn by the
simulator (`stsched.simulation.host.BatchTimeQuantiles`, `run_partition`'s `noise` rows and `idle_noise`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stsched.simulation.engine import run_partition
from stsched.simulation.host import (LEVELS, MIN_CLASS_BATCHES, BatchTimeQuantiles, TenantRatios,
                                     read_batch_quantiles)


def test_after_idle_batches_take_the_idle_factor_back_to_back_ones_the_other():
    arr = np.array([0.0, 0.0, 0.0, 0.0, 1.0])  # batch 2: two batches back to back from 0, then one after idling
    n = len(arr) + 1
    out = run_partition([arr], [0.01], [2], noise=np.full(n, 2.0), idle_noise=np.full(n, 3.0))
    # the first batch: its requests were there when the partition became available (not an idle end)
    np.testing.assert_allclose(out.batch_dur, [0.02, 0.02, 0.03])
    first_idle = run_partition([arr + 0.5], [0.01], [2], noise=np.full(n, 2.0), idle_noise=np.full(n, 3.0))
    np.testing.assert_allclose(first_idle.batch_dur, [0.03, 0.02, 0.03])


def test_round_robin_and_processes_use_the_idle_factors_too():
    a, b = np.array([0.0, 0.0]), np.array([0.0, 1.0])
    n = 5
    out = run_partition([a, b], [0.01, 0.02], [2, 1], noise=np.ones(n), idle_noise=np.full(n, 5.0))
    np.testing.assert_allclose(out.batch_dur, [0.01, 0.02, 0.1])  # b's second batch ends an idle period
    multi = run_partition([np.array([0.0, 0.0, 1.0])], [0.01], [1], procs=2, noise=np.ones(4),
                          idle_noise=np.full(4, 2.0))
    np.testing.assert_allclose(sorted(multi.batch_dur), [0.01, 0.01, 0.02])


def test_one_row_of_factors_per_tenant():
    a, b = np.zeros(4), np.zeros(2)
    rows = np.stack([np.full(7, 2.0), np.full(7, 3.0)])
    out = run_partition([a, b], [0.01, 0.02], [2, 2], noise=rows)
    for t, d in zip(out.batch_tenant, out.batch_dur):
        assert d == pytest.approx(0.02 if t == 0 else 0.06)
    idle_rows = np.stack([np.full(7, 10.0), np.full(7, 20.0)])
    again = run_partition([a, b], [0.01, 0.02], [2, 2], noise=rows, idle_noise=idle_rows)
    np.testing.assert_allclose(again.batch_dur, out.batch_dur)  # nothing here ends an idle period
    with pytest.raises(ValueError, match="one row per tenant"):
        run_partition([a, b], [0.01, 0.02], [2, 2], noise=np.ones((3, 7)))
    with pytest.raises(ValueError, match="needs noise"):
        run_partition([a], [0.01], [2], idle_noise=np.ones(5))


def _q(lo: float, hi: float) -> tuple[float, ...]:
    return tuple(np.linspace(lo, hi, len(LEVELS)).tolist())


class _PT:
    gpu, partition = 0, 0

    class part:  # noqa: N801 - stands in for a PartitionTiming's partition
        tenants = (type("T", (), {"service": "a"}), type("T", (), {"service": "b"}))


def _measured(idle_batches: int = 50) -> BatchTimeQuantiles:
    tenants = {(0, 0, "a"): TenantRatios(_q(1, 2), _q(1.5, 2), _q(1, 1.1), 100, 100 - idle_batches, idle_batches),
               (0, 0, "b"): TenantRatios(_q(3, 4), _q(3, 4), _q(3, 4), 80, 40, 40)}
    return BatchTimeQuantiles({(0, 0): _q(1, 4)}, {(0, 0): 180}, "test", {(0, 0): _q(1, 4)}, {(0, 0): _q(1, 4)},
                              {(0, 0): 90}, {(0, 0): 90}, tenants)


def test_quantiles_by_tenant_and_class_round_trip_through_execute_json(tmp_path):
    bq = _measured()
    f = tmp_path / "exec.json"
    f.write_text(json.dumps({"host": {"exec_ratio": bq.to_dict()}}))
    back = read_batch_quantiles(str(f))
    assert back.tenants == bq.tenants and back.busy == bq.busy and back.conditioned


def test_factors_are_drawn_per_tenant_and_class():
    rng = np.random.default_rng(1)
    x = _measured().batch_factors(conditioned=True)(_PT, 5000, rng)
    assert x.shape == (2, 2, 5000)
    assert x[0, 0].min() >= 1.5 and x[0, 1].max() <= 1.1  # tenant a: back to back, after idling
    assert x[1].min() >= 3.0  # tenant b
    pooled = _measured().batch_factors()(_PT, 5000, rng)  # per tenant, not by class: the default
    assert pooled[0, 0].min() < 1.1 and pooled[0, 1].max() > 1.9  # a's batches pooled over both classes
    flat = _measured().batch_factors(conditioned=True, per_tenant=False)(_PT, 100, rng)
    assert flat.shape == (2, 100)
    assert _measured().batch_factors(False, False)(_PT, 100, rng).shape == (100,)


def test_a_class_with_few_batches_falls_back_to_the_tenants_pooled_quantiles():
    x = _measured(idle_batches=MIN_CLASS_BATCHES - 1).batch_factors(True)(_PT, 5000, np.random.default_rng(2))
    assert x[0, 1].max() > 1.5  # a's few after-idle batches: drawn from all of a's
