"""The green-context driver wrapper's buffer handling, against a fake libcuda (no GPU needed)."""

import ctypes

import pytest

from profiler.partitions.cudriver import (CU_DEV_RESOURCE_TYPE_SM, SM_COUNT_OFFSET, CudaDriverError, Driver,
                                          Resource)


class FakeLib:
    """Writes a split's groups as an array of `stride`-byte CUdevResource records, as libcuda does."""

    def __init__(self, stride: int, sms: int = 132, granularity: int = 8) -> None:
        self.stride, self.sms, self.granularity = stride, sms, granularity

    def cuDevSmResourceSplitByCount(self, result, n_ref, source, rest, flags, min_count):
        count = -(-min_count.value // self.granularity) * self.granularity
        groups = min(n_ref._obj.value, self.sms // count)
        base = ctypes.addressof(result)
        for i in range(groups):
            rec = CU_DEV_RESOURCE_TYPE_SM.to_bytes(4, "little") + bytes(92) + count.to_bytes(4, "little")
            ctypes.memmove(base + i * self.stride, rec, len(rec))
        n_ref._obj.value = groups
        return 0


def _driver(lib: FakeLib) -> Driver:
    d = Driver.__new__(Driver)
    d.lib = lib
    return d


def _whole(sms: int) -> Resource:
    r = Resource()
    ctypes.memmove(r.buf, CU_DEV_RESOURCE_TYPE_SM.to_bytes(4, "little") + bytes(92) + sms.to_bytes(4, "little"),
                   SM_COUNT_OFFSET + 4)
    return r


@pytest.mark.parametrize("stride", [144, 152, 200])
def test_split_groups_finds_the_array_stride(stride):
    buf, n, found = _driver(FakeLib(stride)).split_groups(_whole(132), 8)
    assert (n, found) == (16, stride)


def test_split_groups_rejects_a_split_with_no_sm_groups():
    class Empty(FakeLib):
        def cuDevSmResourceSplitByCount(self, result, n_ref, *rest):
            n_ref._obj.value = 0
            return 0

    with pytest.raises(CudaDriverError, match="made 0 groups"):
        _driver(Empty(144)).split_groups(_whole(132), 8)
