"""Which SMs does work on a stream actually run on?  An independent check of green-context partitions.

A Triton kernel whose every program writes the `%smid` register (PTX special register: the SM the thread runs on)
after a short dependent spin, launched with many more programs than the GPU has SMs, on a given stream.  The set
of SM ids seen is what the stream's context really uses: its size should equal the SM count the driver reports for
a green context, and two partitions of one layout should see disjoint sets.  GPU only (Triton + CUDA).
"""

from __future__ import annotations

from typing import Any


def observed_sms(stream: Any, programs: int = 2048, spin: int = 20000, device: str = "cuda") -> set[int]:
    """SM ids that `programs` Triton programs launched on `stream` ran on."""
    import torch
    import triton
    import triton.language as tl

    @triton.jit
    def _smid(in_ptr, out_ptr, spin: tl.constexpr):
        pid = tl.program_id(0)
        x = tl.load(in_ptr + pid)
        acc = x
        for _ in range(spin):
            acc = acc * 0.999 + 1.0
        sm = tl.inline_asm_elementwise("mov.u32 $0, %smid;", "=r,r", [x], dtype=tl.int32, is_pure=False,
                                       pack=1)
        tl.store(out_ptr + pid, sm + (acc < -1.0).to(tl.int32))  # keeps the spin alive; acc is never < -1

    with torch.cuda.stream(stream):
        x = torch.zeros(programs, device=device, dtype=torch.float32)
        out = torch.full((programs,), -1, device=device, dtype=torch.int32)
        _smid[(programs,)](x, out, spin)
    stream.synchronize()
    return set(out.cpu().tolist())
