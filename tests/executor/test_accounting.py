"""Where an executor run's batch time went (`stsched.executor.accounting`): off the core, preempted, page faults,
windows in a slow spell; rows without the usage columns (runs before session 17) still read."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from stsched.executor.accounting import SLOW_FACTOR, WINDOW_S, BatchAccounting, slowness


def _batches(n: int = 400, spell: slice = slice(0, 0)) -> pd.DataFrame:
    """Two tenants alternating every 5 ms over 2 s at ratio 1.1 (a) and 1.4 (b); batches in `spell` 1.8 x slower."""
    start = np.arange(n) * 0.005
    service = np.where(np.arange(n) % 2 == 0, "a", "b")
    model = np.where(service == "a", 1.0, 0.4)
    ratio = np.where(service == "a", 1.1, 1.4)
    ratio[spell] *= 1.8
    exec_ms = model * ratio
    return pd.DataFrame({"gpu": 0, "partition": 0, "service": service, "start_s": start, "exec_ms": exec_ms,
                         "requests": 1, "model_ms": model, "cpu_ms": exec_ms, "faults": 0, "switches": 0})


def test_a_spell_that_slows_both_tenants_is_counted_by_windows():
    quiet = BatchAccounting.of(_batches())
    assert quiet.slow_share == 0.0  # each tenant at its own steady level: nothing slow
    # batches 100..159 (0.5..0.8 s): three of the twenty 100 ms windows
    spell = BatchAccounting.of(_batches(spell=slice(100, 160)))
    assert math.isclose(spell.slow_share, 3 / 20)
    s = slowness(_batches(spell=slice(100, 160)))
    assert (s.loc[(0, 0, 5)] > SLOW_FACTOR) and (s.loc[(0, 0, 4)] < SLOW_FACTOR) and len(s) == round(2 / WINDOW_S)


def test_off_core_time_preemptions_and_faults():
    b = _batches()
    b.loc[b.index[:40], "cpu_ms"] = b["exec_ms"][:40] / 2  # 40 batches half off their core
    b.loc[b.index[:10], "switches"] = 1
    b.loc[b.index[-4:], "faults"] = 25
    a = BatchAccounting.of(b)
    assert math.isclose(a.off_core_share, (b["exec_ms"][:40] / 2).sum() / b["exec_ms"].sum())
    assert math.isclose(a.preempted_share, 10 / 400) and math.isclose(a.faults_per_batch, 100 / 400)
    assert "off the worker's core" in a.line()


def test_rows_without_usage_columns_give_nan_not_an_error():
    a = BatchAccounting.of(_batches().drop(columns=["cpu_ms", "faults", "switches"]))
    assert math.isnan(a.off_core_share) and math.isnan(a.faults_per_batch) and a.slow_share == 0.0
    assert "n/a" in a.line()
    empty = BatchAccounting.of(_batches().iloc[:0])
    assert empty.batches == 0 and math.isnan(empty.slow_share)


def test_a_gpu_backend_has_no_off_core_share():
    """On sm/mps/gpu the worker waits in `stream.synchronize()`, so exec - cpu is the device's time: `stsched
    execute` printed it as "off the worker's core" (and --json kept it) for every backend."""
    from types import SimpleNamespace

    from stsched.executor.host import measure_host

    b = _batches()
    b.loc[b.index[:40], "cpu_ms"] = b["exec_ms"][:40] / 2
    b.loc[b.index[:10], "switches"] = 1
    for backend in ("sm", "mps", "gpu"):
        a = BatchAccounting.of(b, backend)
        assert math.isnan(a.off_core_share) and math.isnan(a.preempted_share), backend
        assert "n/a off the worker's core" in a.line() and "n/a of 400 batches preempted" in a.line()
        assert a.faults_per_batch == 0.0
    assert BatchAccounting.of(b, "cpu").off_core_share > 0
    # measure_host takes the backend from the result it measures
    from tests.executor.test_ratio_tail import _run_with_one_stall

    run, inst, plan, _, _ = _run_with_one_stall(200)
    usage = run.batches.assign(cpu_ms=run.batches["exec_ms"] / 2, faults=0, switches=0)
    for backend, nan in (("sm", True), ("cpu", False)):
        got = measure_host(SimpleNamespace(records=run.records, batches=usage, backend={"backend": backend}), inst,
                           plan, "fixed").accounting
        assert math.isnan(got.off_core_share) == nan and math.isclose(got.faults_per_batch, 0.0)
