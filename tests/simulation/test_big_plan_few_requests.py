"""A big plan given few requests (session 13, hostile tester): `stsched simulate --allow-invalid` on a plan of
100,000 GPUs ran > 100 s for 30 requests: the event simulator timed every partition (the checker's timings and the
batch fill table of every tenant), ran the engine on every partition even where no request went, and the
interleaved routing built one array per partition of a service.  Now it times and runs only the partitions that
get requests; the others are idle (busy 0, free when available) and give the same summary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import stsched.simulation.simulator as sim_mod
from stsched.errors import InputError
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.simulation import ArrivalSpec, SimOptions, simulate
from stsched.simulation.routing import _interleave
from tests.conftest import make_mps_instance

GPU = GpuLayout((Partition(50.0, (Tenant("s0", 4, 0.5), Tenant("s1", 2, 0.25)), 24.0),))


def test_only_partitions_with_requests_are_timed_and_run(monkeypatch):
    inst = make_mps_instance(rates=(0.5, 0.25))
    calls = {"timed": 0, "run": 0}
    timings, run = sim_mod.gpu_timings, sim_mod.run_partition

    def counted_timings(*a, **k):
        calls["timed"] += 1
        return timings(*a, **k)

    def counted_run(*a, **k):
        calls["run"] += 1
        return run(*a, **k)

    monkeypatch.setattr(sim_mod, "gpu_timings", counted_timings)
    monkeypatch.setattr(sim_mod, "run_partition", counted_run)
    big = simulate(inst, Plan((GPU,) * 5000), ArrivalSpec(), SimOptions(duration_s=40.0, seed=3))
    n = big.summary.requests
    assert 0 < n < 100
    assert calls["run"] <= n and calls["timed"] <= n, calls
    assert len(big.summary.partition_utilisation) == 5000  # every partition with tenants is counted, idle ones at 0
    assert sum(b > 0 for _, _, b in big.summary.partition_utilisation) == calls["run"]
    assert big.summary.slo_attainment == 1.0


def test_the_summary_is_that_of_timing_every_partition():
    """Two GPUs of a different layout each, one of them given no request: idle partitions change nothing."""
    inst = make_mps_instance(rates=(100.0, 50.0))
    busy = GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),))
    idle = GpuLayout((Partition(60.0, (Tenant("s0", 2, 0.0),)),))
    one = simulate(inst, Plan((busy,)), ArrivalSpec(), SimOptions(duration_s=5.0)).summary
    two = simulate(inst, Plan((busy, idle)), ArrivalSpec(), SimOptions(duration_s=5.0)).summary
    assert two.requests == one.requests and two.p99_ms == one.p99_ms and two.slo_attainment == one.slo_attainment
    assert [u for u in two.partition_utilisation if u[0] == 0] == list(one.partition_utilisation)
    assert (1, 0, 0.0) in two.partition_utilisation
    assert two.gpu_utilisation == pytest.approx(one.gpu_utilisation / 2)  # two GPUs in use, one of them idle


def test_an_idle_partition_without_a_profile_entry_is_still_refused():
    inst = make_mps_instance(rates=(0.5, 0.25))
    bad = GpuLayout((Partition(50.0, (Tenant("s0", 16, 0.0),)),))  # batch 16: not profiled
    with pytest.raises(InputError, match=r"gpus\[1\].partitions\[0\]: no latency for 's0' at batch 16"):
        simulate(inst, Plan((GPU, bad)), ArrivalSpec(), SimOptions(duration_s=40.0))


def _interleave_reference(n: int, weights: np.ndarray) -> np.ndarray:
    """The rule as written in stsched.simulation.routing's docstring, one array per partition."""
    out = np.empty(n, dtype=np.int64)
    order = np.argsort(-weights, kind="stable")
    rest, remaining = np.arange(n), float(weights.sum())
    for j in order[:-1]:
        if len(rest) == 0:
            break
        f = min(1.0, float(weights[j]) / remaining) if remaining > 0 else 0.0
        k = np.arange(len(rest), dtype=float)
        take = np.floor((k + 1) * f + 0.5) > np.floor(k * f + 0.5)
        out[rest[take]] = j
        rest = rest[~take]
        remaining -= float(weights[j])
    out[rest] = order[-1]
    return out


@settings(max_examples=150, deadline=None)
@given(hs.integers(0, 120), hs.lists(hs.floats(0.0, 1e3, allow_nan=False), min_size=2, max_size=40))
def test_interleave_skips_a_partition_only_where_the_rule_takes_none(n, weights):
    w = np.asarray(weights)
    assert (_interleave(n, w) == _interleave_reference(n, w)).all()
