"""What the machine's cores did while the executor served: /proc/stat sampled every `period_s` (Linux).

    with CpuSampler(0.1) as cs:
        result = execute(...)
    frame = cs.frame(t0)   # one row per sample and core: t_s after t0, the ticks of each state since the last

A run's batches can be slow because the worker's core, cache or memory is shared with work the worker cannot see
(`stsched.executor.accounting`).  Beside the batches, these rows show when the other cores of the guest were busy
(`user`, `nice`, `system`, ...) and when the hypervisor ran something else on a core (`steal`), so that a slow
spell can be laid beside them.  The sampler is a thread of the calling process; `cores` pins it so that it does
not wake on a worker's core: pass the cores no worker is pinned to (`profiler.partitions.cpu.CpuBackend.free_cores`,
as experiments/exec_vs_sim.py does; none free: do not sample).  The default, the last core of the process's
affinity, is away from the workers only while the plan leaves that core free (they are pinned from the first up).
Ticks are the kernel's USER_HZ (100 per second): a 100 ms sample holds about 10 per core.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Sequence

import pandas as pd

STATES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
Ticks = dict[str, tuple[int, ...]]  # core name (`cpu0`, ...) -> its cumulative ticks in `STATES`


def read_proc_stat(path: str = "/proc/stat") -> Ticks:
    """Per core (`cpu0`, `cpu1`, ...): its cumulative ticks in `STATES`."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                out[name] = tuple(int(v) for v in vals[:len(STATES)])
    return out


def tick_deltas(before: Ticks, after: Ticks) -> Ticks:
    """Per core of both snapshots (`read_proc_stat`), in `after`'s order: its ticks in each of `STATES` between
    them.  A core missing from either is left out: one that came online between the reads (hot-plug) or that a
    partial read missed holds its ticks since boot, not since `before`, and one gone from `after` has no end."""
    return {core: tuple(v - u for v, u in zip(ticks, before[core])) for core, ticks in after.items() if core in before}


def busy_cores(window_s: float = 0.3, path: str = "/proc/stat") -> float | None:
    """How many cores' worth of work the machine did over the next `window_s` (the ticks not idle nor iowait of
    the cores in both reads, over the ticks of one of them: `tick_deltas`), or None where /proc/stat cannot be
    read.  The executor calls it while its own workers wait, so what it counts is other work
    (`stsched.executor.run.spin_ms_for`)."""
    try:
        a = read_proc_stat(path)
        time.sleep(window_s)
        b = read_proc_stat(path)
    except OSError:
        return None
    idle = (STATES.index("idle"), STATES.index("iowait"))
    deltas = tick_deltas(a, b)
    busy = total = 0
    for d in deltas.values():
        total += sum(d)
        busy += sum(d) - sum(d[i] for i in idle)
    return None if not deltas or total <= 0 else busy / (total / len(deltas))


class CpuSampler:
    """Samples /proc/stat from a background thread between `__enter__` and `__exit__` (nothing where the file does
    not exist)."""

    def __init__(self, period_s: float = 0.1, cores: Sequence[int] | None = None, path: str = "/proc/stat") -> None:
        self.period_s = period_s
        self.path = path
        if cores is None and hasattr(os, "sched_getaffinity"):
            cores = [max(os.sched_getaffinity(0))]
        self.cores = tuple(cores or ())
        self._stop = threading.Event()
        self._samples: list[tuple[float, Ticks]] = []
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        if self.cores and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, self.cores)  # this thread only
        nxt = time.monotonic()
        while not self._stop.is_set():
            ticks = read_proc_stat(self.path)
            if ticks:  # (a file caught mid-write reads empty: its ticks would be lost across the gap)
                self._samples.append((time.monotonic(), ticks))
            nxt += self.period_s
            self._stop.wait(max(0.0, nxt - time.monotonic()))

    def __enter__(self) -> "CpuSampler":
        if os.path.exists(self.path):
            self._thread = threading.Thread(target=self._loop, name="stsched-cpustat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def frame(self, t0: float = 0.0) -> pd.DataFrame:
        """One row per sample after the first and core: `t_s` (the sample's end, seconds after `t0`, a
        `time.monotonic` instant: the clock of `profiler.measure.now`), `cpu` (the core's number) and the ticks
        of each of `STATES` since the sample before."""
        rows = []
        for (_, a), (t, b) in zip(self._samples, self._samples[1:]):
            for name, d in tick_deltas(a, b).items():
                rows.append({"t_s": t - t0, "cpu": int(name[3:]), **dict(zip(STATES, d))})
        return pd.DataFrame(rows, columns=["t_s", "cpu", *STATES])
