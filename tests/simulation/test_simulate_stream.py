"""The streaming, sharded simulator: windows resume exactly, shards merge exactly, the histogram's quantiles are
within 0.5 % of the exact ones, and it agrees with the simulator (random routing) within noise."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.cli import main as cli_main
from stsched.io import save_instance, save_plan
from stsched.registry import SolveOptions, run_solver
from stsched.scenarios import random_instance
from stsched.simulation import ArrivalSpec, SimOptions, run_partition, simulate, sketch
from stsched.simulation.stream import PartitionStream, StreamOptions, shard_gpus, simulate_stream


@pytest.fixture(scope="module")
def case():
    inst = random_instance(16, 2, 5).with_gpus(12)
    plan = run_solver("heuristic", inst, SolveOptions(time_limit_s=30, seed=5)).result.plan
    return inst, plan


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), tenants=st.integers(1, 3), procs=st.integers(1, 3),
       window=st.floats(0.05, 3.0))
def test_a_partition_cut_into_windows_runs_the_batches_of_one_run(seed, tenants, procs, window):
    procs = procs if tenants == 1 else 1
    rng = np.random.default_rng(seed)
    duration = 5.0
    arrs = [np.sort(rng.uniform(0, duration, rng.integers(0, 60))) for _ in range(tenants)]
    batches = [int(b) for b in rng.integers(1, 5, tenants)]
    exec_s = [tuple([0.0] + sorted(rng.uniform(0.01, 0.2, b).tolist())) for b in batches]
    whole = run_partition(arrs, exec_s, batches, procs)
    sim = PartitionStream(exec_s, batches, procs)
    got = [([], []) for _ in arrs]
    edges = [*np.arange(window, duration, window), duration]
    lo = 0.0
    for hi in [*edges, math.inf]:
        new = [a[(a >= lo) & (a < hi)] if hi != math.inf else a[:0] for a in arrs]
        served, _, _ = sim.step(new, hi)
        for j, (a, s, f) in enumerate(served):
            got[j][0].append(s)
            got[j][1].append(f)
        lo = hi
    for j in range(tenants):
        assert np.array_equal(np.concatenate(got[j][0]), whole.start[j])
        assert np.array_equal(np.concatenate(got[j][1]), whole.finish[j])


def test_histogram_quantiles_are_within_half_a_percent():
    rng = np.random.default_rng(1)
    lat = rng.lognormal(3, 1.5, 50_000)
    hist = sketch.counts(lat)
    for q in (0.5, 0.9, 0.99):
        exact = np.sort(lat)[min(len(lat) - 1, math.ceil(q * len(lat)) - 1)]
        assert abs(sketch.quantile(hist, 0, q) / exact - 1) <= 0.0051
    assert sketch.quantile(hist, len(lat), 0.99) == math.inf  # half never completed: p99 is infinite


def test_shards_merge_to_the_single_process_summary(case):
    inst, plan = case
    one = simulate_stream(inst, plan, StreamOptions(duration_s=30, seed=2, noise_cv=0.1))
    assert one.shards == 1 and one.summary.requests > 10_000
    for k in (2, 3):
        assert len(shard_gpus(inst, plan, k)) == k
        res = simulate_stream(inst, plan, StreamOptions(duration_s=30, seed=2, noise_cv=0.1, shards=k))
        assert res.shards == k and res.summary.to_dict() == one.summary.to_dict()
    other = simulate_stream(inst, plan, StreamOptions(duration_s=30, seed=3, noise_cv=0.1))
    assert other.summary.requests != one.summary.requests  # the seed matters


def test_records_when_asked_match_the_summary(case):
    inst, plan = case
    res = simulate_stream(inst, plan, StreamOptions(duration_s=10, seed=1, records=True, shards=2))
    s = res.summary
    assert len(res.records) == s.requests
    lat = res.records.latency_ms()
    slo = np.array([inst.service(n).slo_ms for n in res.records.services])
    assert int((lat <= slo[res.records.service] * (1 + 1e-9)).sum()) == s.within_slo
    exact = np.sort(lat)[math.ceil(0.99 * len(lat)) - 1]
    assert abs(s.p99_ms / exact - 1) <= 0.0051


def test_agrees_with_the_simulator_under_random_routing_within_noise(case):
    inst, plan = case
    a = [simulate_stream(inst, plan, StreamOptions(duration_s=60, seed=s)).summary for s in (1, 2)]
    b = [simulate(inst, plan, ArrivalSpec(), SimOptions(duration_s=60, seed=s, routing="random")).summary
         for s in (1, 2)]
    mean = lambda xs, f: sum(f(x) for x in xs) / len(xs)  # noqa: E731
    assert abs(mean(a, lambda x: x.requests) / mean(b, lambda x: x.requests) - 1) < 0.01
    assert abs(mean(a, lambda x: x.slo_attainment) - mean(b, lambda x: x.slo_attainment)) < 0.02
    assert abs(mean(a, lambda x: x.gpu_utilisation) / mean(b, lambda x: x.gpu_utilisation) - 1) < 0.02


def test_cli_shards(case, tmp_path, capsys):
    inst, plan = case
    save_instance(inst, tmp_path / "i.json")
    save_plan(plan, tmp_path / "p.json")
    outs = []
    for shards in ("1", "2"):
        assert cli_main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--duration", "10",
                         "--seed", "3", "--shards", shards, "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0]["requests"] == outs[1]["requests"] > 0 and outs[0]["per_service"] == outs[1]["per_service"]
    assert outs[1]["shards"] == 2 and outs[1]["requests_per_s"] > 0
    records = tmp_path / "records.csv"  # the records and text paths too (a bug once left them without imports)
    assert cli_main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--duration", "10",
                     "--seed", "3", "--shards", "2", "--records", str(records)]) == 0
    assert "SLO attainment" in capsys.readouterr().out
    assert len(records.read_text().splitlines()) == outs[1]["requests"] + 1
    assert cli_main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--shards", "2",
                     "--arrivals", "gamma:2"]) == 2
    assert "poisson" in capsys.readouterr().err


def test_memory_does_not_grow_with_the_duration(case):
    import tracemalloc

    inst, plan = case
    peaks = []
    for duration in (20, 80):
        tracemalloc.start()
        res = simulate_stream(inst, plan, StreamOptions(duration_s=duration, seed=1, window_s=5))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert res.records is None
    assert peaks[1] < 1.25 * peaks[0]  # 4 x the requests, about the same peak (one window of one partition)


def test_a_large_jobs_forks_no_more_workers_than_shards(case, monkeypatch):
    """`stsched simulate --shards 2 --jobs 99999` forked 99,999 workers (a fork pool starts them all at once)."""
    import stsched.simulation.stream as stream

    inst, plan = case
    seen = []
    real = stream.ProcessPoolExecutor

    def spy(*args, **kwargs):
        seen.append(kwargs["max_workers"])
        return real(*args, **kwargs)

    monkeypatch.setattr(stream, "ProcessPoolExecutor", spy)
    res = simulate_stream(inst, plan, StreamOptions(duration_s=1.0, shards=2, jobs=8))
    assert res.shards == 2 and seen == [2]
