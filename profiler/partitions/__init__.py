"""Partition backends: one interface (`PartitionBackend`), one implementation per mechanism.

    from profiler.partitions import get_backend
    backend = get_backend("cpu")            # cpu | mps | sm | gpu
    backend.availability()                   # Availability(ok, reason)
    with backend.open([1, 1]) as pset:       # two partitions, alive at once
        pset.workers[0].call("measure", model="resnet-tiny", batch=2)

Nothing here imports torch at import time; the cpu and mps backends never import it in the calling process.
"""

from __future__ import annotations

from typing import Any, Callable

from profiler.partitions.base import (Availability, BackendUnavailable, PartitionBackend, PartitionSet,
                                      ProcessWorker, ThreadWorker, Worker)
from stsched.errors import InputError


def _cpu(**kw: Any) -> PartitionBackend:
    from profiler.partitions.cpu import CpuBackend
    return CpuBackend(**kw)


def _mps(**kw: Any) -> PartitionBackend:
    from profiler.partitions.mps import MpsBackend
    return MpsBackend(**kw)


def _sm(**kw: Any) -> PartitionBackend:
    from profiler.partitions.sm import SmBackend
    return SmBackend(**kw)


def _gpu(**kw: Any) -> PartitionBackend:
    from profiler.partitions.sm import GpuBackend
    return GpuBackend(**kw)


BACKENDS: dict[str, Callable[..., PartitionBackend]] = {"cpu": _cpu, "mps": _mps, "sm": _sm, "gpu": _gpu}


def get_backend(name: str, **options: Any) -> PartitionBackend:
    """A backend by name with its options (e.g. `get_backend("sm", impl="torch")`)."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    try:
        return BACKENDS[name](**options)
    except TypeError as e:
        raise InputError(f"backend {name}: bad option ({e})") from None


__all__ = ["Availability", "BACKENDS", "BackendUnavailable", "PartitionBackend", "PartitionSet", "ProcessWorker",
           "ThreadWorker", "Worker", "get_backend"]
