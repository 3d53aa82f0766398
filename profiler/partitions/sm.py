"""SM partitions with CUDA green contexts, and the whole-GPU backend (no partitioning) beside them.

`SmBackend`: a partition of n SMs is a green context with (at least) n SMs and a stream in it; its worker is a
thread of this process (green contexts belong to one process; kernels of different processes would time-slice
without MPS).  Two implementations:

* `driver` (default): ctypes calls to the CUDA driver (`profiler.partitions.cudriver`).  The partitions of one
  layout are split one after another off the remainder of the device's SM resource, so they are disjoint.
* `torch`: `torch.cuda.green_contexts.GreenContext.create(num_sms=n)` (PyTorch 2.10+, beta).  PyTorch 2.13 always
  takes the first group of a fresh split, so two of its contexts would share SMs: this path runs one partition
  at a time (solo profiling), never a co-located layout.

Either way the SM count is read back from the driver and is the `partition` written to the profile.  With
`graphs` on (default), every (model, batch) runs as one CUDA-graph launch so that the threads contend for the
GIL once per batch.

`GpuBackend`: the whole GPU, mechanism `none`; several "partitions" are several streams of one context sharing
every SM (co-located streams, as the DISB data set measures them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

from profiler.partitions.base import (Availability, BackendUnavailable, PartitionBackend, PartitionSet,
                                      ThreadWorker, slug)
from profiler.partitions.mps import nvidia_smi
from stsched.errors import InputError

log = logging.getLogger(__name__)

IMPLEMENTATIONS = ("driver", "torch")


def _torch_cuda() -> tuple[Any, str]:
    """(torch, "") when torch sees a CUDA GPU, else (None, why not)."""
    try:
        import torch
    except ImportError:
        return None, "torch is not installed"
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__} sees no CUDA GPU"
    return torch, ""


def _gpu_facts(torch: Any, index: int) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(index)
    smi = nvidia_smi("driver_version") or ["unknown"]
    return {"device": slug(props.name), "device_name": props.name, "sm_count": props.multi_processor_count,
            "memory_mb": props.total_memory / 2 ** 20, "driver": smi[0], "cuda": str(torch.version.cuda),
            "torch": str(torch.__version__), "compute_capability": f"{props.major}.{props.minor}",
            "timer": "cuda_events"}


@dataclass
class SmBackend(PartitionBackend):
    device_index: int = 0
    impl: str = "driver"
    granularity: int = 8  # SMs; Hopper's green-context split granularity (the driver rounds up; read back)
    graphs: bool = True
    name = "sm"
    mechanism = "sm"
    units = "SMs"

    def __post_init__(self) -> None:
        if self.impl not in IMPLEMENTATIONS:
            raise InputError(f"sm backend: impl must be one of {', '.join(IMPLEMENTATIONS)}, got {self.impl!r}")

    def availability(self) -> Availability:
        torch, why = _torch_cuda()
        if torch is None:
            return Availability(False, why)
        if self.impl == "torch":
            from torch.cuda import green_contexts

            if not getattr(green_contexts, "SUPPORTED", False):
                return Availability(False, f"torch {torch.__version__} has no green-context support "
                                           "(torch.cuda.green_contexts.SUPPORTED is False; needs a CUDA 12.8+ build)")
        from profiler.partitions.cudriver import probe

        p = probe()
        if not p.get("loaded"):
            return Availability(False, f"CUDA driver library: {p.get('error')}")
        if p.get("missing"):
            return Availability(False, f"the CUDA driver lacks green-context calls {', '.join(p['missing'])} "
                                       f"(driver API version {p.get('version')}; needs 12.4+)")
        return Availability(True)

    @property
    def capacity(self) -> float:
        torch, why = _torch_cuda()
        if torch is None:
            raise BackendUnavailable(f"backend sm: {why}")
        return float(torch.cuda.get_device_properties(self.device_index).multi_processor_count)

    def describe(self) -> dict[str, Any]:
        torch, why = _torch_cuda()
        if torch is None:
            raise BackendUnavailable(f"backend sm: {why}")
        from profiler.partitions.cudriver import probe

        return {"backend": self.name, "mechanism": self.mechanism, "units": self.units, "impl": self.impl,
                "granularity": self.granularity, "graphs": self.graphs, "capacity": self.capacity,
                "driver_api": probe().get("version"), **_gpu_facts(torch, self.device_index)}

    def units_for(self, fraction: float) -> float:
        g = self.granularity
        cap = self.capacity
        return float(min(cap, max(g, round(fraction * cap / g) * g)))

    def open(self, sizes: Sequence[float]) -> PartitionSet:
        self.require()
        self.check_sizes(sizes)
        import torch

        from profiler.partitions.runner import Runner

        dev = torch.device(f"cuda:{self.device_index}")
        torch.cuda.set_device(dev)
        torch.zeros(1, device=dev)  # the primary context must exist before green contexts are made
        torch.cuda.synchronize(dev)
        pset = PartitionSet([], {"backend": self.name, "impl": self.impl})
        try:
            if self.impl == "driver":
                self._open_driver(torch, dev, sizes, pset, Runner)
            else:
                self._open_torch(torch, dev, sizes, pset, Runner)
            pset.on_close.append(lambda: torch.cuda.synchronize(dev))  # runs first: on_close is reversed
        except BaseException:
            pset.close()
            raise
        return pset

    def _open_driver(self, torch: Any, dev: Any, sizes: Sequence[float], pset: PartitionSet, Runner: Any) -> None:
        from profiler.partitions.cudriver import CudaDriverError, Driver

        drv = Driver()
        cudev = drv.device(self.device_index)
        whole = drv.device_resource(cudev)
        pset.info["device_sms_resource"] = whole.sm_count
        wants = [int(round(s)) for s in sizes]
        if sum(wants) > whole.sm_count:
            raise InputError(f"backend sm: layout {wants} asks for {sum(wants)} SMs; the device has {whole.sm_count}")
        parts, how = [], ""
        if len(wants) == 1:  # one partition: split it off the whole device (or take the whole device)
            group = whole if wants[0] >= whole.sm_count else drv.split(whole, wants[0])[0]
            parts, how = [(drv.green_partition(cudev, group), group.sm_count)], "split"
        else:
            try:
                for n, _, desc in drv.layout_groups(cudev, wants, self.granularity):
                    parts.append((drv.green_context(cudev, desc), n))
                how = f"groups of {self.granularity}"
            except CudaDriverError as e:
                log.warning("green contexts from one split into groups failed (%s); splitting one at a time", e)
                for part, _ in parts:
                    drv.destroy(part)
                groups, temps = drv.layout_chain(cudev, wants)
                pset.on_close.extend(lambda t=t: drv.destroy(t) for t in temps)  # destroyed after the partitions
                parts = [(drv.green_partition(cudev, g), g.sm_count) for g in groups]
                how = "chain"
        for want, (part, split_count) in zip(wants, parts):
            pset.on_close.append(lambda p=part: drv.destroy(p))
            stream = torch.cuda.get_stream_from_external(part.stream, dev)
            extra = {"sm_requested": want, "sm_count": part.sm_count, "sm_split_count": split_count,
                     "green_context": "driver", "split": how}
            pset.workers.append(ThreadWorker(float(part.sm_count), lambda st=stream, ex=extra: Runner(
                str(dev), stream=st, graphs=self.graphs, extra_info=ex)))
            log.info("green context: requested %d SMs, got %d (%s)", want, part.sm_count, how)

    def _open_torch(self, torch: Any, dev: Any, sizes: Sequence[float], pset: PartitionSet, Runner: Any) -> None:
        if len(sizes) != 1:
            raise InputError("backend sm (impl torch): PyTorch's green contexts would overlap; one partition at a "
                             "time only (use impl driver for co-located partitions)")
        from torch.cuda.green_contexts import GreenContext

        from profiler.partitions.cudriver import Driver

        want = int(round(sizes[0]))
        gc = GreenContext.create(num_sms=want, device_id=self.device_index)
        if not hasattr(gc, "Stream"):
            raise BackendUnavailable(f"torch {torch.__version__}: GreenContext has no Stream() (PyTorch 2.12+); "
                                     "use impl driver")
        stream = gc.Stream()
        got = Driver().stream_sm_count(stream.cuda_stream)
        pset.on_close.append(lambda g=gc: None)  # keeps the context alive until the set is closed
        extra = {"sm_requested": want, "sm_count": got, "green_context": "torch"}
        pset.workers.append(ThreadWorker(float(got), lambda: Runner(str(dev), stream=stream, graphs=self.graphs,
                                                                    extra_info=extra)))


@dataclass
class GpuBackend(PartitionBackend):
    """The whole GPU (mechanism `none`, partition 100); several sizes = several streams sharing every SM."""

    device_index: int = 0
    graphs: bool = True
    name = "gpu"
    mechanism = "none"
    units = "percent"

    def availability(self) -> Availability:
        torch, why = _torch_cuda()
        return Availability(torch is not None, why)

    @property
    def capacity(self) -> float:
        return 100.0

    def describe(self) -> dict[str, Any]:
        torch, why = _torch_cuda()
        if torch is None:
            raise BackendUnavailable(f"backend gpu: {why}")
        return {"backend": self.name, "mechanism": self.mechanism, "units": self.units, "capacity": 100.0,
                "graphs": self.graphs, **_gpu_facts(torch, self.device_index)}

    def units_for(self, fraction: float) -> float:
        return 100.0

    def check_sizes(self, sizes: Sequence[float]) -> None:
        if not sizes or any(float(s) != 100.0 for s in sizes):
            raise InputError(f"backend gpu: every partition is the whole GPU (size 100), got {list(sizes)}")

    def open(self, sizes: Sequence[float]) -> PartitionSet:
        self.require()
        self.check_sizes(sizes)
        import torch

        from profiler.partitions.runner import Runner

        dev = torch.device(f"cuda:{self.device_index}")
        torch.cuda.set_device(dev)
        pset = PartitionSet([], {"backend": self.name})
        try:
            for _ in sizes:
                stream = torch.cuda.Stream(dev)
                pset.workers.append(ThreadWorker(100.0, lambda st=stream: Runner(str(dev), stream=st,
                                                                                 graphs=self.graphs)))
        except BaseException:
            pset.close()
            raise
        return pset
