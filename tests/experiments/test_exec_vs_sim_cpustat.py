"""exec_vs_sim's /proc/stat sampling and its files (session 17 review): the sampler runs on a core no worker of
the plan is pinned to or not at all, each sample names the layout that was serving, and a study cut short keeps
the runs it finished."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from experiments import exec_vs_sim as evs
from profiler.partitions import cpu
from profiler.partitions import get_backend
from stsched.executor.accounting import BatchAccounting
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.simulation.summary import RequestRecords
from tests.conftest import make_mps_instance

ONE = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0),)),)),))  # one worker on half of the cores
TWO = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0),)), Partition(50.0, (Tenant("s1", 2, 50.0),)))),))


def test_the_sampler_gets_a_core_no_worker_is_pinned_to_or_none(monkeypatch):
    """The sampler took the last core of the affinity whatever the plan: two size-1 partitions on 2 vCPUs (or
    --no-pin) put a worker on the sampler's core."""
    monkeypatch.setattr(cpu, "_cores", lambda: [0, 1])
    inst = make_mps_instance()
    pinned, free = get_backend("cpu"), get_backend("cpu", pin=False)
    assert pinned.affinities([1, 1]) == [(0,), (1,)] and free.affinities([1, 1]) == [(), ()]
    assert evs.sampler_cores(inst, ONE, pinned) == (1,)
    assert evs.sampler_cores(inst, TWO, pinned) == ()  # every core a worker's: not sampled
    assert evs.sampler_cores(inst, ONE, free) == ()  # the OS places the worker anywhere: not sampled


def test_each_sample_is_on_the_clock_of_the_layout_serving():
    """cpustat was aligned to the first layout's t0 only: a plan of two GPUs (run one after the other) had its
    second GPU's samples on the wrong clock, with no column to tell them apart."""
    frame = pd.DataFrame({"t_s": [9.0, 12.0, 25.0], "cpu": 0})
    got = evs.by_layout(frame, ({"gpu": 0, "t0": 10.0}, {"gpu": 2, "t0": 20.0}))
    assert got["gpu"].tolist() == [0, 0, 2] and got["t_s"].tolist() == [-1.0, 2.0, 5.0]


@pytest.mark.parametrize("no_cpustat", [False, True])
def test_an_interrupted_study_keeps_the_runs_it_finished(tmp_path, monkeypatch, no_cpustat):
    """rows, rule, batches, requests and cpustat were written only after every run: a 15-minute judging run lost
    everything on Ctrl-C or a crash.  And the sampling could not be switched off (`--no-cpustat`)."""
    import stsched.executor as executor
    import stsched.executor.cpustat as cpustat
    import stsched.executor.host as host
    import stsched.io as io
    import stsched.judge as judge
    import stsched.simulation.noise as noise

    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    monkeypatch.setattr(cpu, "_cores", lambda: [0, 1])
    inst = make_mps_instance()
    monkeypatch.setattr(io, "load_instance", lambda path: inst)
    monkeypatch.setattr(io, "load_plan", lambda path: ONE)
    monkeypatch.setattr(judge, "judge_plan", lambda *a, **k: None)
    monkeypatch.setattr(noise, "measured_noise", lambda path: SimpleNamespace(cv=0.0, rows=0))
    pinned_to = []

    class Sampler:  # no thread: records the cores it was given and gives one sample
        def __init__(self, period_s, cores=None):
            pinned_to.append(tuple(cores or ()))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def frame(self, t0=0.0):
            return pd.DataFrame({"t_s": [time.monotonic() - t0], "cpu": [0], "user": [1]})

    monkeypatch.setattr(cpustat, "CpuSampler", Sampler)
    seeds = []

    def execute(inst_, plan, backend, options):
        seeds.append(options.seed)
        if len(seeds) > 1:
            raise KeyboardInterrupt  # Ctrl-C in the first compared run, after the calibration run
        rec = RequestRecords(inst.service_names, np.zeros(1, dtype=np.int32), np.array([0.1]), np.array([0.1]),
                             np.array([0.11]), np.zeros(1, dtype=np.int32), np.zeros(1, dtype=np.int32))
        batches = pd.DataFrame({"gpu": [0], "partition": [0], "service": ["s0"], "start_s": [0.1],
                                "exec_ms": [10.0], "requests": [1], "model_ms": [9.0]})
        return SimpleNamespace(records=rec, batches=batches, layouts=({"gpu": 0, "t0": time.monotonic()},))

    monkeypatch.setattr(executor, "execute", execute)
    measured = SimpleNamespace(gap=SimpleNamespace(mean_s=1e-4), wake=SimpleNamespace(mean_s=1e-3, count=1),
                               exec_ratio=SimpleNamespace(to_dict=lambda: {"partitions": [{"median": 1.1}]}),
                               accounting=BatchAccounting(1, 0.0, 0.0, 0.0, 0.0))
    monkeypatch.setattr(host, "measure_host", lambda *a, **k: measured)
    with pytest.raises(KeyboardInterrupt):
        evs.main(["--instance", "i.json", "--plan", "p.json", "--profile", "prof", "--seeds", "2", "--duration", "1",
                  *(["--no-cpustat"] if no_cpustat else [])])
    d = tmp_path / "exec_vs_sim"
    assert pd.read_csv(d / "rows.csv")["side"].tolist() == ["calibration"]
    assert pd.read_csv(d / "batches.csv.gz")["seed"].tolist() == [102]
    assert pd.read_csv(d / "requests.csv.gz")["seed"].tolist() == [102]
    assert not (d / "rule.csv").exists()  # no seed finished: no verdict
    assert seeds == [102, 2] and pinned_to == ([] if no_cpustat else [(1,), (1,)])
    if no_cpustat:
        assert not (d / "cpustat.csv.gz").exists()
        return
    stat = pd.read_csv(d / "cpustat.csv.gz")
    assert stat["sampler_cores"].astype(str).tolist() == ["1"] and stat["gpu"].tolist() == [0]
