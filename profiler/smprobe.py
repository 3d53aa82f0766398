"""Which SMs does work on a stream actually run on?  An independent check of green-context partitions.

A probe kernel whose every block writes the `%smid` register (PTX special register: the SM the block runs on)
after a short dependent spin, launched with many more blocks than the GPU has SMs, on a given stream.  The set of
SM ids seen is what the stream's context really uses: its size should equal the SM count the driver reports for a
green context, and two partitions of one layout should see disjoint sets.

Two implementations of the same kernel, tried in order: CUDA C through CuPy (`cupy.RawKernel`, compiled by NVRTC)
and Triton (inline PTX).  With `graph=True` the probe is captured into a CUDA graph on the stream and the graph is
replayed, which checks that graph replays (how the profiler runs models) stay on the partition's SMs too.
GPU only.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_CUDA_SOURCE = r"""
extern "C" __global__ void stsched_smid(int* out, int spin) {
    unsigned int sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    float acc = (float)threadIdx.x;
    for (int i = 0; i < spin; ++i) acc = acc * 0.999f + 1.0f;
    if (threadIdx.x == 0) out[blockIdx.x] = (int)sm + (acc < -1.0f ? 1 : 0);
}
"""


def _launch_cupy(stream: Any, out: Any, programs: int, spin: int) -> None:
    import cupy

    kernel = cupy.RawKernel(_CUDA_SOURCE, "stsched_smid")
    with cupy.cuda.ExternalStream(stream.cuda_stream):
        kernel((programs,), (32,), (cupy.asarray(out).data.ptr, cupy.int32(spin)))


def _launch_triton(stream: Any, out: Any, programs: int, spin: int) -> None:
    import torch
    import triton
    import triton.language as tl

    @triton.jit
    def _smid(out_ptr, spin):
        pid = tl.program_id(0)
        offs = tl.arange(0, 32)
        acc = offs.to(tl.float32)
        for _ in range(spin):
            acc = acc * 0.999 + 1.0
        sm = tl.inline_asm_elementwise("mov.u32 $0, %smid;", "=r,r", [offs], dtype=tl.int32, is_pure=False,
                                       pack=1)
        tl.store(out_ptr + pid + offs * 0, sm + (acc < -1.0).to(tl.int32), mask=offs == 0)

    with torch.cuda.stream(stream):
        _smid[(programs,)](out, spin)


IMPLEMENTATIONS = {"cupy": _launch_cupy, "triton": _launch_triton}


def observed_sms(stream: Any, programs: int = 2048, spin: int = 20000, device: str = "cuda",
                 graph: bool = False, impl: str | None = None) -> set[int]:
    """SM ids that `programs` probe blocks launched on `stream` (a torch CUDA stream) ran on.

    `impl`: "cupy" or "triton"; None tries CuPy, then Triton.  `graph`: capture the launch into a CUDA graph on
    `stream` and replay it (the launch runs once eagerly first, so that compilation stays out of the capture).
    """
    import torch

    names = [impl] if impl else list(IMPLEMENTATIONS)
    errors = []
    for name in names:
        launch = IMPLEMENTATIONS[name]
        try:
            with torch.cuda.stream(stream):
                out = torch.full((programs,), -1, device=device, dtype=torch.int32)
            stream.synchronize()
            launch(stream, out, programs, spin)  # eager (also compiles)
            stream.synchronize()
            if graph:
                out.fill_(-1)
                torch.cuda.synchronize(device)
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g, stream=stream, capture_error_mode="thread_local"):
                    launch(stream, out, programs, spin)
                with torch.cuda.stream(stream):
                    g.replay()
                stream.synchronize()
            seen = out.cpu().tolist()
            if any(s < 0 for s in seen):
                raise RuntimeError(f"{sum(s < 0 for s in seen)} of {programs} probe blocks wrote nothing")
            return set(seen)
        except Exception as e:  # noqa: BLE001 - try the next implementation, report all if none works
            log.warning("SM probe via %s failed: %s", name, e)
            errors.append(f"{name}: {type(e).__name__}: {e}")
    raise RuntimeError("no SM probe could run: " + "; ".join(errors))
