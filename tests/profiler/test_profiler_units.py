"""Profiler pieces that need no worker process: the zoo, timing, the runner in this process, backend facts."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.errors import InputError

torch = pytest.importorskip("torch")

from profiler import zoo  # noqa: E402
from profiler.measure import CpuClock, Timing, TimingOptions, measure, now, run_window  # noqa: E402
from profiler.partitions import BackendUnavailable, get_backend  # noqa: E402
from profiler.partitions.base import slug  # noqa: E402
from profiler.partitions.runner import Runner  # noqa: E402


def test_zoo_parameter_counts_are_exact():
    for name, spec in zoo.ZOO.items():
        model = zoo.build(name, "meta")
        assert sum(p.numel() for p in model.parameters()) == spec.params, name


def test_realistic_models_match_the_reference_weight_sizes():
    from stsched.data import model_weights_mb

    for ours, theirs in (("resnet50", "resnet50"), ("vgg16", "vgg16"), ("mobilenetv2", "mobilenet"),
                         ("bert-base", "bert")):
        assert zoo.resolve(ours).weights_mb == pytest.approx(model_weights_mb(theirs), abs=1e-3), ours


def test_zoo_names_aliases_and_errors():
    assert zoo.resolve("mobilenet").name == "mobilenetv2"
    assert zoo.resolve("BERT").name == "bert-base"
    assert all(n == n.lower() for n in zoo.ZOO)
    with pytest.raises(InputError, match="unknown model"):
        zoo.resolve("alexnet")
    with pytest.raises(InputError):
        zoo.make_input("resnet-tiny", 0)


@pytest.mark.parametrize("name", [n for n, s in zoo.ZOO.items() if s.tiny])
def test_tiny_models_run_and_are_seeded(name):
    x = zoo.make_input(name, 3)
    spec = zoo.resolve(name)
    assert tuple(x.shape) == (3, *spec.input_shape)
    assert x.dtype == (torch.int64 if spec.tokens else torch.float32)
    with torch.inference_mode():
        y1 = zoo.build(name, seed=1)(x)
        y2 = zoo.build(name, seed=1)(x)
    assert y1.shape[0] == 3 and torch.isfinite(y1).all()
    assert torch.equal(y1, y2)


def test_imports_stay_free_of_torch():
    code = ("import sys, stsched.cli, stsched.simulation, stsched.executor, stsched.commands.profile, "
            "profiler.zoo, profiler.partitions, profiler.sweep; "
            "from profiler.partitions import get_backend; get_backend('cpu').describe(); "
            "profiler.zoo.resolve('resnet50'); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_measure_reports_the_median_of_the_repeats():
    values = iter([100.0, 200.0, 5.0, 1.0, 3.0, 2.0])  # two warm-up values are dropped
    t = measure(lambda: None, lambda fn: next(values), TimingOptions(warmup=2, repeats=4))
    assert t.samples_ms == (5.0, 1.0, 3.0, 2.0)
    assert t.median_ms == 2.5 and t.mean_ms == 2.75
    with pytest.raises(InputError):
        TimingOptions(warmup=-1)
    with pytest.raises(RuntimeError, match="non-positive"):
        measure(lambda: None, lambda fn: 0.0, TimingOptions(0, 2))


def test_cpu_clock_and_window_measure_real_time():
    clock = CpuClock()
    assert clock(lambda: time.sleep(0.01)) >= 10.0
    start = now() + 0.02
    t = run_window(lambda: time.sleep(0.01), clock, start, start + 0.1)
    assert 1 <= len(t.samples_ms) <= 10
    assert now() >= start + 0.1
    assert all(s >= 10.0 for s in t.samples_ms)


def test_runner_measures_and_serves_round_robin():
    torch.set_num_threads(1)
    r = Runner("cpu")
    out = r.measure("vgg-tiny", 2, warmup=1, repeats=3)
    assert len(out["samples_ms"]) == 3 and min(out["samples_ms"]) > 0
    a = np.array([0.0, 0.001, 0.002, 0.003, 0.004, 0.05, 0.051])
    b = np.array([0.0, 0.02, 0.06])
    tenants = [{"model": "vgg-tiny", "batch": 2, "arrivals": a.tolist()},
               {"model": "resnet-tiny", "batch": 1, "arrivals": b.tolist()}]
    r.prepare([("vgg-tiny", 2), ("resnet-tiny", 1)], warmup=1)
    res = r.serve(tenants, t0=now() + 0.05, horizon_s=30.0)
    for i, arr in enumerate((a, b)):
        start, finish = np.array(res["start"][i]), np.array(res["finish"][i])
        assert not np.isnan(finish).any()
        assert (start >= arr).all() and (finish > start).all()
    sizes = np.array(res["batch_size"])
    tenant = np.array(res["batch_tenant"])
    assert sizes.sum() == len(a) + len(b)
    assert (sizes[tenant == 0] <= 2).all() and (sizes[tenant == 1] <= 1).all()
    bs, bd = np.array(res["batch_start"]), np.array(res["batch_dur"])
    assert (bs[1:] >= bs[:-1] + bd[:-1] - 1e-9).all()  # one batch at a time
    # the first two turns alternate: both tenants have a request at time 0
    assert list(tenant[:2]) == [0, 1]


def test_runner_horizon_leaves_late_requests_unserved():
    torch.set_num_threads(1)
    r = Runner("cpu")
    res = r.serve([{"model": "vgg-tiny", "batch": 1, "arrivals": [0.0, 5.0]}], t0=now(), horizon_s=0.2)
    assert not math.isnan(res["finish"][0][0]) and math.isnan(res["finish"][0][1])


def test_backends_explain_themselves():
    cpu = get_backend("cpu")
    assert cpu.availability().ok
    facts = cpu.describe()
    assert facts["mechanism"] == "cpu" and facts["device"].startswith("cpu-") and facts["capacity"] >= 1
    assert cpu.units_for(1.0) == cpu.capacity and cpu.units_for(1e-6) == 1.0
    with pytest.raises(InputError):
        cpu.check_sizes([cpu.capacity + 1])
    with pytest.raises(InputError):
        get_backend("tpu")
    if not torch.cuda.is_available():
        for name in ("sm", "gpu", "mps"):
            a = get_backend(name).availability()
            assert not a.ok and a.reason
            with pytest.raises(BackendUnavailable, match=name):
                get_backend(name).require()
    assert slug("NVIDIA H100 80GB HBM3") == "h100-80gb-hbm3"


def test_timing_dataclass_summaries():
    t = Timing((1.0, 2.0, 4.0))
    assert t.to_dict()["median_ms"] == 2.0 and t.spread == pytest.approx(1.5)


@settings(max_examples=6, deadline=None)
@given(st.lists(st.floats(0.0, 0.08), min_size=0, max_size=12), st.lists(st.floats(0.0, 0.08), max_size=6),
       st.integers(1, 3), st.booleans())
def test_serve_invariants_on_random_arrivals(a, b, batch, pad):
    torch.set_num_threads(1)
    runner = _RUNNER.setdefault("r", Runner("cpu"))
    arrs = [np.sort(np.array(a)), np.sort(np.array(b))]
    tenants = [{"model": "vgg-tiny", "batch": batch, "arrivals": arrs[0].tolist()},
               {"model": "vgg-tiny", "batch": 1, "arrivals": arrs[1].tolist()}]
    res = runner.serve(tenants, t0=now(), horizon_s=10.0, pad=pad)
    for i, arr in enumerate(arrs):
        start, finish = np.array(res["start"][i]), np.array(res["finish"][i])
        assert not np.isnan(finish).any() and (start >= arr).all() and (finish > start).all()
        # first come, first served within a tenant
        assert (np.diff(start) >= 0).all()
    sizes, tenant = np.array(res["batch_size"], dtype=int), np.array(res["batch_tenant"], dtype=int)
    assert sizes.sum() == len(a) + len(b)
    assert (sizes[tenant == 0] <= batch).all() and (sizes[tenant == 1] <= 1).all()


_RUNNER: dict[str, Runner] = {}
