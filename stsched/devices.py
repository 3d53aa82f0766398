"""Devices and their partition mechanisms, as published by their vendors and used by the published systems."""

from __future__ import annotations

from stsched.problem import Device, Mechanism, MechanismKind, Placement

# NVIDIA A100/H100 MIG (80 GB parts): 7 compute slices, 8 memory slices.  A profile of g compute slices may start
# at the listed slots and occupies the listed memory slices.  A 3g slice spans 4 memory slices, so 3g+1g+3g is
# illegal while 4g+3g and 3g+3g are (NVIDIA MIG user guide, "A100 / H100 supported profiles").
_MIG_PLACEMENTS: tuple[Placement, ...] = (
    *(Placement(1, s, (s,)) for s in range(7)),
    *(Placement(2, s, (s, s + 1)) for s in (0, 2, 4)),
    Placement(3, 0, (0, 1, 2, 3)),
    Placement(3, 4, (4, 5, 6, 7)),
    Placement(4, 0, (0, 1, 2, 3)),
    Placement(7, 0, tuple(range(8))),
)
_MIG_MEMORY_80GB = ((1.0, 10_240.0), (2.0, 20_480.0), (3.0, 40_960.0), (4.0, 40_960.0), (7.0, 81_920.0))

DEVICES: dict[str, Device] = {
    "a100-80gb": Device("a100-80gb", 81_920.0, 108),
    "a100-40gb": Device("a100-40gb", 40_960.0, 108),
    "h100-80gb": Device("h100-80gb", 81_920.0, 132),
    "v100-16gb": Device("v100-16gb", 16_384.0, 80),
    "rtx2080ti": Device("rtx2080ti", 11_264.0, 68),
    "rtx3080": Device("rtx3080", 10_240.0, 68),
}

GPULET_SIZES = (20.0, 40.0, 50.0, 60.0, 80.0, 100.0)


def mig_mechanism(max_procs: int = 3) -> Mechanism:
    """A100/H100 MIG with up to `max_procs` MPS processes of one service per slice (ParvaGPU: 3)."""
    return Mechanism(MechanismKind.MIG, 7.0, (1.0, 2.0, 3.0, 4.0, 7.0), max_partitions=7, max_procs=max_procs,
                     placements=_MIG_PLACEMENTS, partition_memory_mb=_MIG_MEMORY_80GB)


def mps_mechanism(sizes: tuple[float, ...] = GPULET_SIZES, max_partitions: int | None = None,
                  max_tenants: int | None = None) -> Mechanism:
    """MPS active-thread percentage partitions (gpulet: sizes 20..100, 2 partitions, 3 tenants)."""
    return Mechanism(MechanismKind.MPS, 100.0, tuple(sorted(sizes)), max_partitions, max_tenants)


def sm_mechanism(device: Device, granularity: int = 8, max_partitions: int | None = None,
                 max_tenants: int | None = None) -> Mechanism:
    """Green-context SM partitions in multiples of `granularity` SMs (Hopper: 8), up to the whole GPU."""
    sizes = tuple(float(s) for s in range(granularity, device.sms + 1, granularity))
    if sizes[-1] != device.sms:
        sizes = sizes + (float(device.sms),)
    return Mechanism(MechanismKind.SM, float(device.sms), sizes, max_partitions, max_tenants)
