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
        cores = _cores()
        setups, offset = [], 0
        for s in sizes:
            n = int(s)
            mine = tuple(cores[offset:offset + n]) if self.pin else ()
            offset += n
            setups.append(ProcessSetup(size=float(n), device="cpu", threads=n, affinity=mine,
                                       env=(("OMP_NUM_THREADS", str(n)), ("MKL_NUM_THREADS", str(n)))))
        workers = start_processes(setups)
        return PartitionSet(list(workers), {"backend": self.name})
