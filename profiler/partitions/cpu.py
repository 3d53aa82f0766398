"""CPU partitions: a partition of size n is a worker process with n torch threads pinned to n dedicated cores.

This is the CPU stand-in for spatial GPU sharing: partitions of one layout get disjoint cores (Linux
`sched_setaffinity`), so they interfere only through shared caches and memory bandwidth, as GPU partitions do
through L2 and DRAM.  Rows are written with mechanism `cpu` (partition = a count of CPU threads on dedicated cores)
and `partition` = threads.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Sequence

from profiler.partitions.base import (Availability, PartitionBackend, PartitionSet, ProcessSetup, slug,
                                      start_processes)
from stsched.errors import InputError


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cores() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@dataclass
class CpuBackend(PartitionBackend):
    """`pin`: pin every partition to its own cores (default); off, the OS schedules the threads freely."""

    pin: bool = True
    name = "cpu"
    mechanism = "cpu"
    units = "threads"

    def availability(self) -> Availability:
        try:
            metadata.version("torch")
        except metadata.PackageNotFoundError:
            return Availability(False, "torch is not installed (pip install torch==2.13.0)")
        return Availability(True)

    @property
    def capacity(self) -> float:
        return float(len(_cores()))

    def describe(self) -> dict[str, Any]:
        model = _cpu_model()
        return {"backend": self.name, "mechanism": self.mechanism, "units": self.units,
                "device": f"cpu-{slug(model)}", "device_name": model, "capacity": self.capacity,
                "sm_count": int(self.capacity), "cores": _cores(), "pinned": self.pin,
                "torch": metadata.version("torch"), "python": platform.python_version(),
                "machine": platform.machine(), "timer": "perf_counter"}

    def open(self, sizes: Sequence[float]) -> PartitionSet:
        self.require()
        self.check_sizes(sizes)
        if any(float(s) != int(s) for s in sizes):
            raise InputError(f"backend cpu: sizes are thread counts (integers), got {list(sizes)}")
        setups = [ProcessSetup(size=float(int(s)), device="cpu", threads=int(s), affinity=mine,
                               env=(("OMP_NUM_THREADS", str(int(s))), ("MKL_NUM_THREADS", str(int(s)))))
                  for s, mine in zip(sizes, self.affinities(sizes))]
        workers = start_processes(setups)
        return PartitionSet(list(workers), {"backend": self.name})

    def affinities(self, sizes: Sequence[float]) -> list[tuple[int, ...]]:
        """The cores `open(sizes)` pins each worker to: the process's affinity handed out from its first core up,
        `int(size)` cores each (() each when not pinning: the OS places the worker anywhere)."""
        cores, out, offset = _cores(), [], 0
        for s in sizes:
            out.append(tuple(cores[offset:offset + int(s)]) if self.pin else ())
            offset += int(s)
        return out

    def free_cores(self, sizes: Sequence[float]) -> tuple[int, ...]:
        """The cores of the process's affinity that no worker of `open(sizes)` can run on (none when not
        pinning): where a thread that must not disturb the workers (`stsched.executor.cpustat`) may run."""
        if not self.pin:
            return ()
        taken = {c for mine in self.affinities(sizes) for c in mine}
        return tuple(c for c in _cores() if c not in taken)
