"""The plan: for every GPU its layout, for every partition its tenants with batch size and served rate.

A `Plan` is plain data; `stsched.check.check(instance, plan)` is its judge.  Helpers here compute the
quantities that the rules use (execution time, duty cycle) so that solvers, the checker and the simulator agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

from stsched.errors import InputError


@dataclass(frozen=True)
class Tenant:
    """A service time-sharing a partition: one batch of `batch` requests per duty cycle, serving `rate` req/s."""

    service: str
    batch: int
    rate: float

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise InputError(f"tenant {self.service!r}: batch must be >= 1, got {self.batch}")
        if not self.rate >= 0:
            raise InputError(f"tenant {self.service!r}: rate must be >= 0, got {self.rate}")


@dataclass(frozen=True)
class Partition:
    """A spatial share of one GPU and the tenants that time-share it round robin.

    `duty_ms` is the duty cycle (None: the shortest legal one, the sum of the tenants' execution times).
    `procs` > 1 (MIG with MPS inside, ParvaGPU's segments) runs that many processes of its single tenant.
    `start` is the MIG start slot (None: the checker finds a legal placement).
    """

    size: float
    tenants: tuple[Tenant, ...]
    duty_ms: float | None = None
    procs: int = 1
    start: int | None = None

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise InputError(f"partition size must be > 0, got {self.size}")
        if self.procs < 1:
            raise InputError(f"partition procs must be >= 1, got {self.procs}")
        if self.duty_ms is not None and not self.duty_ms > 0:
            raise InputError(f"partition duty_ms must be > 0, got {self.duty_ms}")

    @property
    def services(self) -> frozenset[str]:
        """The services of its tenants (what a tenant change changes)."""
        return frozenset(t.service for t in self.tenants)


@dataclass(frozen=True)
class GpuLayout:
    """The partitions of one GPU (its layout) with their tenants."""

    partitions: tuple[Partition, ...] = ()

    @property
    def used(self) -> bool:
        return any(p.tenants for p in self.partitions)

    def sizes(self) -> tuple[float, ...]:
        return tuple(sorted((p.size for p in self.partitions), reverse=True))


@dataclass(frozen=True)
class Plan:
    """A deployment: one layout per GPU.  `scale` is the factor alpha the rates are served at (max-scale)."""

    gpus: tuple[GpuLayout, ...]
    scale: float = 1.0
    solver: str = ""
    notes: str = ""

    @property
    def gpus_used(self) -> int:
        return sum(1 for g in self.gpus if g.used)

    def compact(self) -> "Plan":
        """The same plan without unused GPUs and without partitions that have no tenants."""
        gpus = tuple(GpuLayout(tuple(p for p in g.partitions if p.tenants)) for g in self.gpus if g.used)
        return replace(self, gpus=gpus)

    def placements(self) -> Iterator[tuple[int, int, Partition, Tenant]]:
        """(gpu index, partition index, partition, tenant) for every tenant of the plan."""
        for gi, g in enumerate(self.gpus):
            for pi, p in enumerate(g.partitions):
                for t in p.tenants:
                    yield gi, pi, p, t

    def served(self) -> dict[str, float]:
        """Rate served per service (req/s), summed over its partitions."""
        out: dict[str, float] = {}
        for _, _, _, t in self.placements():
            out[t.service] = out.get(t.service, 0.0) + t.rate
        return out

    def layouts(self) -> tuple[tuple[float, ...], ...]:
        """The layout of every GPU as sorted partition sizes (what a reconfiguration changes)."""
        return tuple(g.sizes() for g in self.gpus)


@dataclass(frozen=True)
class PlanStats:
    """Per-plan metrics that the checker reports."""

    gpus_used: int
    served: dict[str, float] = field(default_factory=dict)
    worst_latency_ms: dict[str, float] = field(default_factory=dict)
    partition_busy: tuple[tuple[int, int, float], ...] = ()  # (gpu, partition, busy fraction of time)
    capacity_used: float = 0.0  # share of the used GPUs' capacity that is allocated to partitions
    busy_capacity: float = 0.0  # capacity-weighted busy fraction over used GPUs
