"""The plan: for every GPU its layout, for every partition its tenants with batch size and served rate.

A `Plan` is plain data; `stsched.checker.check(instance, plan)` is its judge.  Helpers here compute the
quantities that the rules use (execution time, duty cycle) so that solvers, the checker and the simulator agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterator

from stsched.errors import FieldError
from stsched.problem import BATCH, PROCS, RATE, SIZE, START
from stsched.validate import Range, field_name, field_parts, field_real


@dataclass(frozen=True)
class Tenant:
    """A service time-sharing a partition: one batch of `batch` requests per duty cycle, serving `rate` req/s."""

    service: str
    batch: int
    rate: float

    def __post_init__(self) -> None:
        field_name(self.service, "tenant service")
        # the ranges are the problem's (`stsched.problem`); a number already in range is kept, no label built
        if not BATCH.plain(self.batch):
            object.__setattr__(self, "batch", BATCH.checked(self.batch, f"tenant {self.service!r}: batch"))
        if not RATE.plain(self.rate):
            object.__setattr__(self, "rate", RATE.checked(self.rate, f"tenant {self.service!r}: rate"))


MAX_DUTY_MS = 24 * 3600 * 1000.0  # a duty cycle beyond a day serves nothing any SLO allows (1e300 printed 300 digits)
DUTY_MS = Range(minimum=0, strict=True, maximum=MAX_DUTY_MS)


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
        # the ranges are the problem's (`stsched.problem`) and DUTY_MS; a number already in range is kept
        if not SIZE.plain(self.size):
            object.__setattr__(self, "size", SIZE.checked(self.size, "partition size"))
        if type(self.tenants) is not tuple or not all(type(t) is Tenant for t in self.tenants):
            object.__setattr__(self, "tenants", field_parts(self.tenants, f"partition of size {self.size:g}: tenants",
                                                            Tenant))
        if not PROCS.plain(self.procs):
            object.__setattr__(self, "procs", PROCS.checked(self.procs, "partition procs"))
        if self.start is not None and not START.plain(self.start):
            object.__setattr__(self, "start", START.checked(self.start, "partition start"))
        if self.duty_ms is not None and not DUTY_MS.plain(self.duty_ms):
            object.__setattr__(self, "duty_ms", DUTY_MS.checked(self.duty_ms, "partition duty_ms (at most a day)"))

    @property
    def services(self) -> frozenset[str]:
        """The services of its tenants (what a tenant change changes)."""
        return frozenset(t.service for t in self.tenants)


@dataclass(frozen=True)
class GpuLayout:
    """The partitions of one GPU (its layout) with their tenants."""

    partitions: tuple[Partition, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", field_parts(self.partitions, "gpu layout: partitions", Partition))

    @property
    def used(self) -> bool:
        return any(p.tenants for p in self.partitions)

    def sizes(self) -> tuple[float, ...]:
        """Sorted sizes of every partition, with tenants or not (the GPU's geometry)."""
        return tuple(sorted((p.size for p in self.partitions), reverse=True))

    def layout(self) -> tuple[float, ...]:
        """The GPU's layout as a reconfiguration sees it: sorted sizes of its partitions with tenants (empty: the
        GPU is off).  An empty partition costs nothing to drop or add, so it is not part of the layout."""
        return tuple(sorted((float(p.size) for p in self.partitions if p.tenants), reverse=True))


@dataclass(frozen=True)
class Plan:
    """A deployment: one layout per GPU.  `scale` is the factor alpha the rates are served at (max-scale)."""

    gpus: tuple[GpuLayout, ...]
    scale: float = 1.0
    solver: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        # a NaN or negative scale passed the checker (it reads the rates at scale x offered) and reached the
        # simulator as a NaN arrival rate.  Scale 0 stays: the checker then judges the layouts alone, no coverage
        # (`solvers.baselines.common.gpu_violations`); a plan file refuses it (`stsched.io`), and `run_solver` judges
        # and returns a min-gpus or adapt plan below scale 1 at scale 1 (`stsched.registry._as_asked`)
        object.__setattr__(self, "gpus", field_parts(self.gpus, "plan: gpus", GpuLayout))
        object.__setattr__(self, "scale", field_real(self.scale, "plan: scale", minimum=0))
        for name in ("solver", "notes"):
            if not isinstance(getattr(self, name), str):
                raise FieldError(f"plan: {name}: expected a string, got {type(getattr(self, name)).__name__} "
                                 f"{getattr(self, name)!r:.60}")

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
        """The layout of every GPU (`GpuLayout.layout`): what a reconfiguration changes."""
        return tuple(g.layout() for g in self.gpus)


# ------------------------------------------------------------------------------------------ reconfiguration
# The one definition of the reconfiguration measure (docs/RULES.md, "Re-planning"): GPUs are matched by index; a GPU
# whose layout (`GpuLayout.layout`) differs is one layout reconfiguration (switching a GPU on or off counts); on a GPU
# whose layout is kept, a partition whose set of tenant services changed is one tenant change (a model loaded into or
# dropped from a partition that stays).


def gpu_layout(g: GpuLayout) -> tuple[float, ...]:
    """`g.layout()`, as a function (for sorting and mapping)."""
    return g.layout()


def _layout_pairs(old: Plan, new: Plan) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    """(layout in `old`, layout in `new`) of every GPU index of either plan (() where a GPU is off or absent)."""
    n = max(len(old.gpus), len(new.gpus))
    a = [g.layout() for g in old.gpus] + [()] * (n - len(old.gpus))
    b = [g.layout() for g in new.gpus] + [()] * (n - len(new.gpus))
    return list(zip(a, b))


def layout_changes(old: Plan, new: Plan) -> int:
    """GPUs whose layout differs between two plans, matched by GPU index (on/off counts as a change)."""
    return sum(1 for x, y in _layout_pairs(old, new) if x != y)


def layout_change_kinds(old: Plan, new: Plan) -> tuple[int, int, int]:
    """`layout_changes` split by what each changed GPU did: (switched on, switched off, rebuilt: on before and after
    with another layout); the three add up to `layout_changes`.  The GPU counts before and after do not tell them
    apart (one GPU off and another on is +0 / -0 with two changes)."""
    pairs = _layout_pairs(old, new)
    on = sum(1 for x, y in pairs if not x and y)
    off = sum(1 for x, y in pairs if x and not y)
    return on, off, sum(1 for x, y in pairs if x and y and x != y)


def changed_partitions(old: GpuLayout, new: GpuLayout) -> int:
    """Partitions of `new` with tenants whose (size, set of tenant services) is not one of `old`'s."""
    before = [(p.size, p.services) for p in old.partitions if p.tenants]
    out = 0
    for p in new.partitions:
        if not p.tenants:
            continue
        key = (p.size, p.services)
        if key in before:
            before.remove(key)
        else:
            out += 1
    return out


def kept_layout(old: Plan, new: Plan, k: int) -> bool:
    """GPU k is in use in `new` with the layout it had in `old`."""
    return k < len(old.gpus) and bool(new.gpus[k].layout()) and new.gpus[k].layout() == old.gpus[k].layout()


def tenant_changes(old: Plan, new: Plan) -> int:
    """Partitions, on GPUs whose layout is kept, whose set of tenant services changed."""
    return sum(changed_partitions(old.gpus[k], new.gpus[k]) for k in range(len(new.gpus)) if kept_layout(old, new, k))


def changed_gpus(old: Plan, new: Plan) -> list[int]:
    """Indices of the GPUs in use in `new` whose layout differs from the same index in `old` (they go down)."""
    out = []
    for k, g in enumerate(new.gpus):
        before = old.gpus[k].layout() if k < len(old.gpus) else ()
        if g.layout() and g.layout() != before:
            out.append(k)
    return out


@dataclass(frozen=True)
class Reconfiguration:
    """What moving from one plan to another changes (the adapt objective's terms)."""

    layout_changes: int
    tenant_changes: int
    changed_gpus: tuple[int, ...]
    gpus_before: int
    gpus_after: int

    @classmethod
    def between(cls, old: Plan, new: Plan) -> "Reconfiguration":
        return cls(layout_changes(old, new), tenant_changes(old, new), tuple(changed_gpus(old, new)),
                   old.gpus_used, new.gpus_used)

    def to_dict(self) -> dict:
        return {"layout_changes": self.layout_changes, "tenant_changes": self.tenant_changes,
                "changed_gpus": list(self.changed_gpus), "gpus_before": self.gpus_before,
                "gpus_after": self.gpus_after}


@dataclass(frozen=True)
class PlanStats:
    """Per-plan metrics that the checker reports."""

    gpus_used: int
    served: dict[str, float] = field(default_factory=dict)
    worst_latency_ms: dict[str, float] = field(default_factory=dict)
    partition_busy: tuple[tuple[int, int, float], ...] = ()  # (gpu, partition, busy fraction of time)
    capacity_used: float = 0.0  # share of the used GPUs' capacity that is allocated to partitions
    busy_capacity: float = 0.0  # capacity-weighted busy fraction over used GPUs
