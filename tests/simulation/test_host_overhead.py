"""The host's overhead in the simulator: a dispatch gap per batch and a wake-up delay after idling, as modelled."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.errors import InputError
from stsched.executor.host import delays
from stsched.simulation.engine import run_partition
from stsched.simulation.host import (LEGACY_LEVELS, LEVELS, BatchTimeQuantiles, HostOverhead, parse_host_overhead,
                                     read_batch_quantiles)


def test_an_idle_partition_adds_the_wake_up_and_the_gap_to_every_latency():
    arr = np.array([0.1, 0.2, 0.3])  # far apart: the partition idles before each
    e, gap, wake = 0.004, 0.0005, 0.002
    plain = run_partition([arr], [e], [4])
    host = run_partition([arr], [e], [4], gap_s=gap, wake_s=wake)
    np.testing.assert_allclose(plain.finish[0] - arr, e)
    np.testing.assert_allclose(host.start[0] - arr, wake)
    np.testing.assert_allclose(host.finish[0] - arr, wake + e + gap)


def test_a_busy_partition_pays_the_gap_once_per_batch():
    arr = np.zeros(6)  # all queued at 0 (not an idle end: no wake-up), batch 2: three batches back to back
    e, gap = 0.01, 0.001
    out = run_partition([arr], [e], [2], gap_s=gap, wake_s=0.5)
    np.testing.assert_allclose(out.batch_start, [0.0, e + gap, 2 * (e + gap)])
    np.testing.assert_allclose(out.finish[0], np.repeat([1, 2, 3], 2) * (e + gap))


def test_round_robin_and_several_processes_model_it_too():
    a, b = np.array([0.0, 0.0]), np.array([0.0, 1.0])
    out = run_partition([a, b], [0.01, 0.02], [2, 1], gap_s=0.001, wake_s=0.003)
    # a's batch (0..0.011), b's first (0.011..0.032), idle, b's second woken at 1.003
    np.testing.assert_allclose(out.finish[0], [0.011, 0.011])
    np.testing.assert_allclose(out.finish[1], [0.032, 1.003 + 0.021])
    multi = run_partition([np.array([0.0, 0.0, 1.0])], [0.01], [1], procs=2, gap_s=0.001, wake_s=0.003)
    np.testing.assert_allclose(multi.finish[0], [0.011, 0.011, 1.014])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 2), min_size=1, max_size=40), st.floats(0, 0.01), st.floats(0, 0.01),
       st.integers(1, 4))
def test_every_request_pays_the_gap_and_the_first_the_wake_up(xs, gap, wake, batch):
    # (not monotone per request: a later dispatch may batch a request that would otherwise wait a turn)
    arr = np.sort(np.array(xs) + 1e-3)
    host = run_partition([arr], [0.005], [batch], gap_s=gap, wake_s=wake)
    lat = host.finish[0] - arr
    assert np.isfinite(lat).all() and (lat >= 0.005 + gap - 1e-12).all()
    assert lat[0] == pytest.approx(wake + 0.005 + gap)
    assert (np.diff(host.batch_start) >= 0.005 + gap - 1e-12).all()


def test_simulate_adds_the_modelled_overhead_to_latency():
    from stsched.plan import GpuLayout, Partition, Plan, Tenant
    from stsched.simulation import ArrivalSpec, SimOptions, simulate
    from tests.conftest import make_mps_instance

    inst = make_mps_instance(rates=(10.0,), slos=(50.0,), memory=(1000.0,))
    plan = Plan((GpuLayout((Partition(100.0, (Tenant("s0", 1, 10.0),)),)),))
    spec = ArrivalSpec.parse("deterministic")  # 100 ms apart: every request finds the partition idle
    base = simulate(inst, plan, spec, SimOptions(duration_s=5.0)).summary
    host = simulate(inst, plan, spec, SimOptions(duration_s=5.0, host=HostOverhead(0.001, 0.002))).summary
    assert base.p50_ms == pytest.approx(3.0)  # (2 + 1 x 1) ms at 100 %
    assert host.p50_ms == pytest.approx(3.0 + 1.0 + 2.0) and host.p99_ms == pytest.approx(6.0)
    with pytest.raises(InputError):
        SimOptions(host=0.001)


def test_the_executor_measures_gaps_and_wake_ups_the_way_the_engine_adds_them():
    arr = np.array([0.0, 0.0, 0.0, 0.5])
    gap, wake = 0.001, 0.004
    out = run_partition([arr], [0.01], [1], gap_s=gap, wake_s=wake)
    # what the executor records: the model call alone (duration e), after the host's dispatch gap
    starts = out.batch_start + gap
    g, w = delays(starts, np.full(4, 0.01), np.r_[0.0, 0.0, 0.0, 0.5])
    np.testing.assert_allclose(g, [gap, gap, gap])
    np.testing.assert_allclose(w, [wake + gap])


def test_parse_a_number_a_pair_or_an_execute_json(tmp_path):
    assert parse_host_overhead("0.001") == HostOverhead(0.001, 0.0, "given")
    assert parse_host_overhead("0.001,0.002") == HostOverhead(0.001, 0.002, "given")
    f = tmp_path / "exec.json"
    f.write_text(json.dumps({"host": {"overhead": {"batch_s": 1e-4, "wake_s": 3e-3, "source": "measured"}}}))
    assert parse_host_overhead(str(f)) == HostOverhead(1e-4, 3e-3, str(f))
    for bad in ("-1", "nan", "1,2,3", str(tmp_path / "missing.json")):
        with pytest.raises(InputError):
            parse_host_overhead(bad)
    f.write_text(json.dumps({"host": {}}))
    with pytest.raises(InputError, match="batch_s"):
        parse_host_overhead(str(f))


def test_measured_batch_time_quantiles_round_trip_and_draw_inside_their_range(tmp_path):
    q = tuple(np.interp(LEVELS, [0.0, 100.0], [1.0, 2.0]).tolist())  # uniform on [1, 2]
    bq = BatchTimeQuantiles({(0, 1): q}, {(0, 1): 50})
    f = tmp_path / "exec.json"
    f.write_text(json.dumps({"host": {"exec_ratio": bq.to_dict()}}))
    back = read_batch_quantiles(str(f))
    assert back.ratios == bq.ratios and back.batches == bq.batches and back.levels == LEVELS
    assert bq.to_dict()["partitions"][0]["mean"] == pytest.approx(1.5)

    class PT:
        gpu, partition = 0, 1

    x = back.batch_factors()(PT, 20000, np.random.default_rng(0))
    assert x.min() >= 1.0 and x.max() <= 2.0 and abs(x.mean() - 1.5) < 0.02
    # a file written before the levels were kept (101 quantiles at 0, 1, ..., 100 %, no `levels`) still reads
    f.write_text(json.dumps({"host": {"exec_ratio": {"partitions": [
        {"gpu": 0, "partition": 1, "batches": 50, "quantiles": np.linspace(1.0, 2.0, 101).tolist()}]}}}))
    old = read_batch_quantiles(str(f))
    assert old.levels == LEGACY_LEVELS
    x = old.batch_factors()(PT, 20000, np.random.default_rng(0))
    assert x.min() >= 1.0 and x.max() <= 2.0 and abs(x.mean() - 1.5) < 0.02
    for bad in ([0.0, 50.0], [0.0, 60.0, 50.0, 100.0], [0.0, float("nan"), 100.0], "x"):
        f.write_text(json.dumps({"host": {"exec_ratio": {"levels": bad, "partitions": [
            {"gpu": 0, "partition": 1, "batches": 50, "quantiles": [1.0, 2.0]}]}}}))
        with pytest.raises(InputError, match="levels"):
            read_batch_quantiles(str(f))
    f.write_text(json.dumps({"host": {"exec_ratio": {"partitions": [{"gpu": 0, "partition": 0, "batches": 1,
                                                                      "quantiles": [2.0, 1.0]}]}}}))
    with pytest.raises(InputError, match="quantiles"):
        read_batch_quantiles(str(f))


def test_stsched_simulate_takes_the_host_overhead(tmp_path, capsys):
    from stsched.cli import main
    from stsched.io import save_instance, save_plan
    from stsched.plan import GpuLayout, Partition, Plan, Tenant
    from tests.conftest import make_mps_instance

    save_instance(make_mps_instance(rates=(10.0,), slos=(50.0,), memory=(1000.0,)), tmp_path / "i.json")
    save_plan(Plan((GpuLayout((Partition(100.0, (Tenant("s0", 1, 10.0),)),)),)), tmp_path / "p.json")
    base = ["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--arrivals", "deterministic",
            "--duration", "5", "--json"]
    assert main(base + ["--host-overhead", "0.001,0.002"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["host_overhead"]["batch_s"] == 0.001 and out["p50_ms"] == pytest.approx(6.0)
    assert main(base + ["--host-overhead", "-0.001"]) == 2
    assert "--host-overhead '-0.001'" in capsys.readouterr().err
    assert main(base + ["--host-overhead", "0.001", "--shards", "2", "--arrivals", "poisson"]) == 2


def test_a_mixture_of_measured_ratio_distributions_weighs_each_equally():
    from stsched.simulation.host import mixture_quantiles, quantile_at

    lo = tuple(np.interp(LEVELS, [0.0, 100.0], [1.0, 2.0]).tolist())  # uniform on [1, 2]
    hi = tuple(np.interp(LEVELS, [0.0, 100.0], [3.0, 4.0]).tolist())  # uniform on [3, 4]
    np.testing.assert_allclose(mixture_quantiles([lo, lo]), lo)
    mix = mixture_quantiles([lo, hi])
    assert quantile_at(mix, 25.0) == pytest.approx(1.5) and quantile_at(mix, 75.0) == pytest.approx(3.5)
    assert mix[0] == pytest.approx(1.0) and mix[-1] == pytest.approx(4.0)
