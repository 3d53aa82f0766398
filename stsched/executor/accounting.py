"""Where an executor run's batch time went: on the worker's core, off it, in page faults, in slow spells.

The worker reads its thread's CPU clock right before and after every batch's timed call, and its page faults and
involuntary context switches outside that (`profiler.partitions.runner.thread_counters`; the executor's batch
rows `cpu_ms`, `faults`, `switches`).  From those rows:

- `off_core_share`: the share of the batches' summed time the worker thread was not running (exec - cpu, each
  batch's from 0 up: the CPU clock's two reads lie just outside the timed call's, so a batch that never left its
  core may show a CPU time a fraction of a microsecond above its clock time): taken off its core by another task of the machine (`preempted_share`: batches with an involuntary switch) or by the
  hypervisor (steal: a kernel with CONFIG_PARAVIRT_TIME_ACCOUNTING, as the 2-vCPU guests of these sessions,
  leaves it out of the thread's CPU time; without it the worker is charged for it, and /proc/stat's steal ticks,
  `stsched.executor.cpustat`, show it; interrupts are charged to the worker unless IRQ_TIME_ACCOUNTING is set).
  The CPU backend's only: on a GPU backend (sm, mps, gpu) the worker waits for the device inside the batch
  (`stream.synchronize()`), so exec - cpu is the device's time, not time off the core: both shares are NaN there;
- `faults_per_batch`: page faults (minor and major) per batch: a batch that touches memory it has not touched
  before (an allocator that hands pages back to the OS and takes them again);
- `slow_share`: the share of `WINDOW_S` windows of the run whose median batch is more than `SLOW_FACTOR` x its
  tenant's fast level (the `FAST_QUANTILE` quantile of the tenant's measured / table ratios in this run).  On
  the quiet runs of session 16 (docs/RESULTS.md, "CPU executor vs simulator", session 17) a run's p99 followed
  this share (Pearson 0.90 over 24 runs of 20 s) and the slow windows came in spells of 0.1-3 s that slowed both
  tenants at once, at different instants in repetitions of the same arrivals: the host's, not the workload's.
  The three constants were chosen on those runs (/tmp/evs16b, /tmp/evs16c of that session) and are not tuned
  to a target.

A batch slower than the table with `cpu_ms` close to `exec_ms`, no switch and no fault ran its own code the whole
time, only slower: its core, cache or memory bandwidth was shared with work the worker cannot see (the other
core's, or another guest's on the host).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

WINDOW_S = 0.1
SLOW_FACTOR = 1.25
FAST_QUANTILE = 0.2


@dataclass(frozen=True)
class BatchAccounting:
    """One run's batches (module docstring): how many, the off-core share of their time, the share preempted,
    page faults per batch (NaN where the rows have no usage columns) and the share of windows in a slow spell."""

    batches: int
    off_core_share: float
    preempted_share: float
    faults_per_batch: float
    slow_share: float

    @staticmethod
    def of(batches: pd.DataFrame, backend: str = "cpu") -> "BatchAccounting":
        """From the executor's batch rows (`stsched.executor.run.BATCH_COLUMNS`; rows of an older run without the
        usage columns give NaN for those) on partition backend `backend` (not cpu: off-core and preempted shares
        NaN, module docstring)."""
        n = len(batches)
        nan = float("nan")
        if n == 0:
            return BatchAccounting(0, nan, nan, nan, nan)
        if {"cpu_ms", "faults", "switches"} <= set(batches.columns):
            cpu, fl, sw = (batches[c].to_numpy(dtype=float) for c in ("cpu_ms", "faults", "switches"))
            known = np.isfinite(cpu) & (sw >= 0) & (fl >= 0)
        else:
            known = np.zeros(n, dtype=bool)
        if known.any():
            ex = batches["exec_ms"].to_numpy(dtype=float)[known]
            off = float(np.clip(ex - cpu[known], 0.0, None).sum() / ex.sum()) if ex.sum() > 0 else nan
            pre, flt = float((sw[known] > 0).mean()), float(fl[known].mean())
            if backend != "cpu":  # the worker waited for the device: exec - cpu is not time off the core
                off = pre = nan
        else:
            off = pre = flt = nan
        return BatchAccounting(n, off, pre, flt, slow_share(batches))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        def pct(x: float) -> str:
            return "n/a" if math.isnan(x) else f"{100 * x:.1f} %"
        fl = "n/a" if math.isnan(self.faults_per_batch) else f"{self.faults_per_batch:.3f}"
        return (f"batch time: {pct(self.off_core_share)} off the worker's core, {pct(self.preempted_share)} of "
                f"{self.batches} batches preempted, {fl} page faults per batch; {pct(self.slow_share)} of the "
                f"{WINDOW_S * 1e3:.0f} ms windows in a slow spell (median batch > {SLOW_FACTOR} x its tenant's fast "
                f"level)")


def slowness(batches: pd.DataFrame) -> pd.Series:
    """Per `WINDOW_S` window of every (gpu, partition) (index: gpu, partition, window number): the median over the
    window's batches of measured / table time divided by its tenant's fast level in this run."""
    if batches.empty:
        return pd.Series(dtype=float)
    b = batches.assign(ratio=batches["exec_ms"] / batches["model_ms"],
                       window=np.floor(batches["start_s"] / WINDOW_S).astype(int))
    fast = b.groupby(["gpu", "partition", "service"])["ratio"].transform(lambda r: r.quantile(FAST_QUANTILE))
    b = b.assign(norm=b["ratio"] / fast)
    return b.groupby(["gpu", "partition", "window"])["norm"].median()


def slow_share(batches: pd.DataFrame) -> float:
    """The share of windows (with a batch) whose `slowness` exceeds `SLOW_FACTOR` (NaN: no batch)."""
    s = slowness(batches)
    return float((s > SLOW_FACTOR).mean()) if len(s) else float("nan")
