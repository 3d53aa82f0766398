"""CUDA MPS partitions: a partition of p % is a worker process with `CUDA_MPS_ACTIVE_THREAD_PERCENTAGE=p`.

The environment variable limits the share of SMs a client context may use (NVIDIA MPS documentation, "Volta MPS
execution resource provisioning"); it is read once when the process creates its CUDA context, hence one process
per partition, as gpulet (Choi et al., USENIX ATC'22) does.  This backend only runs when an MPS control daemon is
already running: it never starts or stops daemons and never changes GPU settings.  Without MPS, kernels of
different processes time-slice rather than share the GPU, and the measurement would not mean what it says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

from profiler.partitions.base import (Availability, PartitionBackend, PartitionSet, ProcessSetup, slug,
                                      start_processes)


def mps_pipe_dir() -> Path:
    return Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY", "/tmp/nvidia-mps"))


def nvidia_smi(fields: str) -> list[str] | None:
    """One read-only `nvidia-smi --query-gpu` line of GPU 0, split; None when nvidia-smi is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    line = out.strip().splitlines()[0] if out.strip() else ""
    return [x.strip() for x in line.split(",")] if line else None


@dataclass
class MpsBackend(PartitionBackend):
    """MPS partitions of GPU `device_index`; sizes are percentages that sum to at most 100."""

    device_index: int = 0
    name = "mps"
    mechanism = "mps"
    units = "percent"

    def availability(self) -> Availability:
        try:
            metadata.version("torch")
        except metadata.PackageNotFoundError:
            return Availability(False, "torch is not installed")
        if nvidia_smi("name") is None:
            return Availability(False, "no NVIDIA GPU visible (nvidia-smi absent or failing)")
        control = mps_pipe_dir() / "control"
        if not control.exists():
            return Availability(False, f"no MPS control daemon is running (no {control}); this tool never starts "
                                       "one: start it yourself (nvidia-cuda-mps-control -d) or use --backend sm")
        return Availability(True)

    @property
    def capacity(self) -> float:
        return 100.0

    def describe(self) -> dict[str, Any]:
        q = nvidia_smi("name,driver_version,memory.total") or ["unknown", "unknown", "0"]
        return {"backend": self.name, "mechanism": self.mechanism, "units": self.units, "device": slug(q[0]),
                "device_name": q[0], "driver": q[1], "memory_mb": float(q[2] or 0), "capacity": self.capacity,
                "torch": metadata.version("torch"), "mps_pipe_directory": str(mps_pipe_dir()),
                "timer": "cuda_events"}

    def units_for(self, fraction: float) -> float:
        return float(max(1, min(100, round(fraction * 100))))

    def open(self, sizes: Sequence[float]) -> PartitionSet:
        self.require()
        self.check_sizes(sizes)
        setups = [ProcessSetup(size=float(s), device=f"cuda:{self.device_index}",
                               env=(("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", f"{float(s):g}"),))
                  for s in sizes]
        workers = start_processes(setups)
        return PartitionSet(list(workers), {"backend": self.name})
