"""The few CUDA driver calls that green-context partitions need, through ctypes (no extra Python package).

Green contexts (CUDA 12.4+; NVIDIA CUDA Driver API, "Green Contexts"): take the device's SM resource, split off a
group of at least n SMs (`cuDevSmResourceSplitByCount`, which rounds n up to the architecture's granularity, 8 on
Hopper), make a descriptor, create a green context on it and a stream in that context.  Work launched on that
stream runs only on the group's SMs.  Splitting the remainder again gives disjoint groups, which is what spatial
partitions of one GPU need.  `sm_count` of every context is read back from the driver
(`cuGreenCtxGetDevResource`), never assumed.

`CUdevResource` is opaque except for its first field (the type, 4 bytes) and, after 92 bytes of internal padding,
the SM union whose first field is `smCount` (cuda.h, CUDA 12.4-13.x); it is handled as a raw buffer.

The outputs of a split cannot be split again (driver API: "without first creating a descriptor and a green
context with that descriptor"; seen on an H200, driver 580.159.04: splitting the remainder fails with
CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION).  A layout of several partitions is therefore made from ONE split of
the device into groups of `granularity` SMs: partition j gets the next ceil(n_j / granularity) groups, combined
into one descriptor (`cuDevResourceGenerateDesc` accepts several outputs of the same split).  The array stride of
the split's output (sizeof(CUdevResource)) is found from what the driver wrote, not assumed.  If combining is
refused, `layout_chain` splits one partition at a time, re-reading the remainder through a green context.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

from profiler.partitions.base import BackendUnavailable

RESOURCE_BYTES = 512  # larger than sizeof(CUdevResource) in every CUDA release so far (144 / 152 bytes)
SM_COUNT_OFFSET = 96
CU_DEV_RESOURCE_TYPE_SM = 1
CU_GREEN_CTX_DEFAULT_STREAM = 0x1
CU_STREAM_NON_BLOCKING = 0x1
CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16

GREEN_SYMBOLS = ("cuDeviceGetDevResource", "cuDevSmResourceSplitByCount", "cuDevResourceGenerateDesc",
                 "cuGreenCtxCreate", "cuGreenCtxGetDevResource", "cuGreenCtxStreamCreate", "cuGreenCtxDestroy")


class CudaDriverError(BackendUnavailable):
    """A CUDA driver call failed; the message names the call and the CUresult."""


class Resource:
    """A `CUdevResource` as a raw buffer."""

    def __init__(self) -> None:
        self.buf = ctypes.create_string_buffer(RESOURCE_BYTES)

    @property
    def sm_count(self) -> int:
        return int.from_bytes(self.buf.raw[SM_COUNT_OFFSET:SM_COUNT_OFFSET + 4], "little")

    @property
    def kind(self) -> int:
        return int.from_bytes(self.buf.raw[0:4], "little")


@dataclass
class GreenPartition:
    """A green context, its stream (raw `CUstream` handle) and the SM count read back from the driver."""

    context: int
    stream: int
    sm_count: int


class Driver:
    """libcuda through ctypes; every call checks its CUresult."""

    def __init__(self, path: str = "libcuda.so.1") -> None:
        try:
            self.lib = ctypes.CDLL(path)
        except OSError as e:
            raise CudaDriverError(f"cannot load the CUDA driver library {path}: {e}") from None
        self._check(self.lib.cuInit(ctypes.c_uint(0)), "cuInit")

    def missing(self) -> list[str]:
        """Green-context entry points this driver does not export."""
        return [s for s in GREEN_SYMBOLS if not hasattr(self.lib, s)]

    def _check(self, res: int, what: str) -> None:
        if res != 0:
            name = ctypes.c_char_p()
            text = f"CUresult {res}"
            if hasattr(self.lib, "cuGetErrorName") and self.lib.cuGetErrorName(res, ctypes.byref(name)) == 0:
                text = name.value.decode() if name.value else text
            raise CudaDriverError(f"{what} failed: {text}")

    def version(self) -> int:
        """The driver's CUDA API version, e.g. 12080 for 12.8."""
        v = ctypes.c_int()
        self._check(self.lib.cuDriverGetVersion(ctypes.byref(v)), "cuDriverGetVersion")
        return v.value

    def device(self, ordinal: int) -> int:
        d = ctypes.c_int()
        self._check(self.lib.cuDeviceGet(ctypes.byref(d), ctypes.c_int(ordinal)), "cuDeviceGet")
        return d.value

    def sm_count(self, dev: int) -> int:
        v = ctypes.c_int()
        self._check(self.lib.cuDeviceGetAttribute(ctypes.byref(v), CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                                  ctypes.c_int(dev)), "cuDeviceGetAttribute")
        return v.value

    def device_resource(self, dev: int) -> Resource:
        """The device's whole SM resource; checks the assumed struct layout against the device's SM count."""
        r = Resource()
        self._check(self.lib.cuDeviceGetDevResource(ctypes.c_int(dev), r.buf, CU_DEV_RESOURCE_TYPE_SM),
                    "cuDeviceGetDevResource")
        sms = self.sm_count(dev)
        if r.kind != CU_DEV_RESOURCE_TYPE_SM or r.sm_count != sms:
            raise CudaDriverError(f"unexpected CUdevResource layout: type {r.kind}, smCount {r.sm_count} at byte "
                                  f"{SM_COUNT_OFFSET}, device has {sms} SMs; cannot read SM counts back")
        return r

    def split(self, source: Resource, min_count: int) -> tuple[Resource, Resource]:
        """One group of at least `min_count` SMs split off `source`, and the remainder."""
        group, rest = Resource(), Resource()
        n = ctypes.c_uint(1)
        self._check(self.lib.cuDevSmResourceSplitByCount(group.buf, ctypes.byref(n), source.buf, rest.buf,
                                                         ctypes.c_uint(0), ctypes.c_uint(min_count)),
                    f"cuDevSmResourceSplitByCount({min_count})")
        if n.value != 1:
            raise CudaDriverError(f"cuDevSmResourceSplitByCount({min_count}) made {n.value} groups, expected 1")
        return group, rest

    def split_groups(self, source: Resource, count: int) -> tuple[Any, int, int]:
        """Split `source` into as many groups of `count` SMs as the driver makes in one call.

        Returns (buffer, number of groups, stride in bytes); group i starts at byte i * stride of the buffer.
        """
        want = max(1, source.sm_count // count)
        buf = ctypes.create_string_buffer(RESOURCE_BYTES * want)
        rest = Resource()
        n = ctypes.c_uint(want)
        self._check(self.lib.cuDevSmResourceSplitByCount(buf, ctypes.byref(n), source.buf, rest.buf,
                                                         ctypes.c_uint(0), ctypes.c_uint(count)),
                    f"cuDevSmResourceSplitByCount({count} x {want})")
        groups = n.value
        raw = buf.raw

        def field(off: int) -> int:
            return int.from_bytes(raw[off:off + 4], "little")

        first = field(SM_COUNT_OFFSET)
        if groups < 1 or field(0) != CU_DEV_RESOURCE_TYPE_SM or first < count:
            raise CudaDriverError(f"cuDevSmResourceSplitByCount({count}) made {groups} groups of {first} SMs")
        if groups == 1:
            return buf, 1, RESOURCE_BYTES
        for stride in range(SM_COUNT_OFFSET + 4, RESOURCE_BYTES + 1, 4):
            if all(field(i * stride) == CU_DEV_RESOURCE_TYPE_SM and field(i * stride + SM_COUNT_OFFSET) == first
                   for i in range(1, groups)):
                return buf, groups, stride
        raise CudaDriverError("cannot find the stride of the split's output array (sizeof(CUdevResource))")

    def layout_groups(self, dev: int, sizes: list[int], granularity: int) -> list[tuple[int, int, Any]]:
        """Disjoint partitions of at least `sizes` SMs from one split into groups of `granularity` SMs.

        Returns, per partition, (SMs, groups, descriptor handle)."""
        whole = self.device_resource(dev)
        buf, n, stride = self.split_groups(whole, granularity)
        per = int.from_bytes(buf.raw[SM_COUNT_OFFSET:SM_COUNT_OFFSET + 4], "little")
        need = [max(1, -(-s // per)) for s in sizes]
        if sum(need) > n:
            raise CudaDriverError(f"layout {sizes} needs {sum(need)} groups of {per} SMs; the device splits into {n}")
        out, first = [], 0
        for k in need:
            desc = ctypes.c_void_p()
            self._check(self.lib.cuDevResourceGenerateDesc(ctypes.byref(desc), ctypes.byref(buf, first * stride),
                                                           ctypes.c_uint(k)), f"cuDevResourceGenerateDesc({k} groups)")
            out.append((k * per, k, desc))
            first += k
        return out

    def layout_chain(self, dev: int, sizes: list[int]) -> tuple[list[Resource], list[GreenPartition]]:
        """Disjoint partitions split one at a time; each remainder is re-read through a temporary green context.

        Returns the partitions' resources and the temporary contexts (destroy them after the partitions)."""
        remaining: Resource | None = self.device_resource(dev)
        groups, temps = [], []
        for i, want in enumerate(sizes):
            if remaining is None or remaining.sm_count == 0:
                raise CudaDriverError(f"no SMs left for partition {i} of {want} SMs (layout {sizes})")
            if want >= remaining.sm_count:
                groups.append(remaining)
                remaining = None
                continue
            group, rest = self.split(remaining, want)
            groups.append(group)
            if i == len(sizes) - 1:
                break
            temp = self.green_partition(dev, rest, stream=False)
            temps.append(temp)
            remaining = Resource()
            self._check(self.lib.cuGreenCtxGetDevResource(ctypes.c_void_p(temp.context), remaining.buf,
                                                          CU_DEV_RESOURCE_TYPE_SM), "cuGreenCtxGetDevResource")
        return groups, temps

    def green_partition(self, dev: int, resource: Resource, stream: bool = True) -> GreenPartition:
        desc = ctypes.c_void_p()
        self._check(self.lib.cuDevResourceGenerateDesc(ctypes.byref(desc), resource.buf, ctypes.c_uint(1)),
                    "cuDevResourceGenerateDesc")
        return self.green_context(dev, desc, stream)

    def green_context(self, dev: int, desc: Any, stream: bool = True) -> GreenPartition:
        """A green context on a descriptor, its SM count read back, and (with `stream`) a stream in it."""
        ctx = ctypes.c_void_p()
        self._check(self.lib.cuGreenCtxCreate(ctypes.byref(ctx), desc, ctypes.c_int(dev),
                                              ctypes.c_uint(CU_GREEN_CTX_DEFAULT_STREAM)), "cuGreenCtxCreate")
        back = Resource()
        self._check(self.lib.cuGreenCtxGetDevResource(ctx, back.buf, CU_DEV_RESOURCE_TYPE_SM),
                    "cuGreenCtxGetDevResource")
        handle = ctypes.c_void_p()
        if stream:
            self._check(self.lib.cuGreenCtxStreamCreate(ctypes.byref(handle), ctx,
                                                        ctypes.c_uint(CU_STREAM_NON_BLOCKING), ctypes.c_int(0)),
                        "cuGreenCtxStreamCreate")
        return GreenPartition(int(ctx.value or 0), int(handle.value or 0), back.sm_count)

    def stream_sm_count(self, stream: int) -> int:
        """SMs of the (green) context that owns a stream (reads back torch's own green contexts)."""
        ctx, green = ctypes.c_void_p(), ctypes.c_void_p()
        r = Resource()
        if hasattr(self.lib, "cuStreamGetCtx_v2"):  # CUDA 12.5+: names the green context itself
            self._check(self.lib.cuStreamGetCtx_v2(ctypes.c_void_p(stream), ctypes.byref(ctx), ctypes.byref(green)),
                        "cuStreamGetCtx_v2")
            if green.value:
                self._check(self.lib.cuGreenCtxGetDevResource(green, r.buf, CU_DEV_RESOURCE_TYPE_SM),
                            "cuGreenCtxGetDevResource")
                return r.sm_count
        else:
            self._check(self.lib.cuStreamGetCtx(ctypes.c_void_p(stream), ctypes.byref(ctx)), "cuStreamGetCtx")
        self._check(self.lib.cuCtxGetDevResource(ctx, r.buf, CU_DEV_RESOURCE_TYPE_SM), "cuCtxGetDevResource")
        return r.sm_count

    def destroy(self, part: GreenPartition) -> None:
        if part.stream:
            self._check(self.lib.cuStreamDestroy_v2(ctypes.c_void_p(part.stream)), "cuStreamDestroy")
        if part.context:
            self._check(self.lib.cuGreenCtxDestroy(ctypes.c_void_p(part.context)), "cuGreenCtxDestroy")


def probe() -> dict[str, Any]:
    """What this machine's driver offers, without raising: loaded, version, missing green-context symbols."""
    try:
        d = Driver()
    except CudaDriverError as e:
        return {"loaded": False, "error": str(e)}
    except Exception as e:  # noqa: BLE001 - e.g. cuInit failing without a GPU
        return {"loaded": False, "error": f"{type(e).__name__}: {e}"}
    out: dict[str, Any] = {"loaded": True, "missing": d.missing()}
    try:
        out["version"] = d.version()
    except CudaDriverError as e:
        out["error"] = str(e)
    return out
