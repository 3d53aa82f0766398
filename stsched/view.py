"""A plan as a user reads it: one row per GPU, its partitions to scale, each partition's duty cycle to scale.

`plan_view(instance, plan)` gathers what a picture or a table shows from the checker's own quantities
(`stsched.timing`, `stsched.checker`): per partition its size and label (MPS %, SMs, MIG slice at its start slot),
per tenant its batch, execution time, served rate against its capacity (`stsched.checker.capacities`: what the
checker credits it with, under a Poisson margin at its share of its service's requests), worst-case latency
against the SLO; per service the rate served against the rate offered and, given a simulation summary, the
simulated attainment.
`format_text` prints it as a terminal table; `render` draws it (`stsched.view_picture`: matplotlib, imported lazily).

`check_plan_fits` refuses a plan made for another instance (unknown service, a partition size the mechanism does
not have, a batch outside the instance's grid, no table entry, more GPUs than the instance) as bad input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from stsched.checker import Report, capacities, check, duty_of
from stsched.errors import InputError
from stsched.plan import Plan
from stsched.problem import Instance, MechanismKind
from stsched.timing import TimingMemo


@dataclass(frozen=True)
class TenantView:
    """One tenant of a partition: its share of the duty cycle and what it serves."""

    service: str
    batch: int
    exec_ms: float
    slowdown: float
    rate: float  # req/s served here
    capacity: float  # req/s the throughput rule credits it with here
    latency_ms: float  # worst case: duty cycle + own execution
    slo_ms: float  # the budget the checker compares against (margin applied)

    @property
    def slack_ms(self) -> float:
        return self.slo_ms - self.latency_ms

    @property
    def load(self) -> float:
        return self.rate / self.capacity if self.capacity > 0 else math.inf


@dataclass(frozen=True)
class PartitionView:
    gpu: int
    index: int
    size: float
    start: float  # where it is drawn on the GPU's axis (MIG: its start slot; mps/sm: the sum of the sizes before)
    procs: int
    label: str  # "50 %", "32 SMs", "3g@4"
    duty_ms: float
    tenants: tuple[TenantView, ...]

    @property
    def busy_ms(self) -> float:
        return sum(t.exec_ms for t in self.tenants)

    @property
    def load(self) -> float:
        """Busy share of the partition's time at the planned rates (the checker's measure: each tenant's share of
        the cycle times its rate over its capacity)."""
        if self.duty_ms <= 0:
            return 0.0
        return min(1.0, sum(min(1.0, t.load) * t.exec_ms / self.duty_ms for t in self.tenants))

    @property
    def idle_share(self) -> float:
        """Share of the duty cycle in which no tenant's batch runs."""
        return max(0.0, 1.0 - self.busy_ms / self.duty_ms) if self.duty_ms > 0 else 1.0


@dataclass(frozen=True)
class ServiceView:
    name: str
    offered: float  # req/s the plan must serve (rate x plan scale)
    served: float
    worst_latency_ms: float | None
    slo_ms: float
    sim_attainment: float | None = None  # from a simulation summary, when given


@dataclass(frozen=True)
class PlanView:
    instance: str
    mechanism: MechanismKind
    capacity: float
    solver: str
    scale: float
    gpus: tuple[tuple[PartitionView, ...], ...]  # one entry per GPU of the plan with tenants
    services: tuple[ServiceView, ...]
    valid: bool
    violations: tuple[str, ...]
    sim_overall: float | None = None


def check_plan_fits(instance: Instance, plan: Plan, source: str) -> None:
    """A plan for another instance is bad input (one line naming the plan file, partition and what does not fit)."""
    mech = instance.mechanism
    if plan.gpus_used > instance.gpus:
        raise InputError(f"plan uses {plan.gpus_used} GPUs, instance {instance.name!r} has {instance.gpus} "
                         f"(a plan for another instance?)", source=source)
    for gi, g in enumerate(plan.gpus):
        for pi, p in enumerate(g.partitions):
            where = f"gpus[{gi}].partitions[{pi}]"
            if not any(abs(p.size - s) <= 1e-9 for s in mech.sizes):
                raise InputError(f"{where}: size {p.size:g} is not a {mech.kind.value} size of instance "
                                 f"{instance.name!r} (a plan for another instance?)", source=source)
            for t in p.tenants:
                if not instance.has_service(t.service):
                    raise InputError(f"{where}: unknown service {t.service!r} (instance {instance.name!r})",
                                     source=source)
                if t.batch not in instance.batches:
                    raise InputError(f"{where}: service {t.service!r} batch {t.batch} is not a batch of instance "
                                     f"{instance.name!r} {list(instance.batches)}", source=source)
                if instance.entry(t.service, t.batch, p.size, p.procs) is None:
                    raise InputError(f"{where}: service {t.service!r} has no latency at batch {t.batch}, size "
                                     f"{p.size:g}, {p.procs} procs in instance {instance.name!r}", source=source)


def partition_label(kind: MechanismKind, size: float, start: int | None, procs: int) -> str:
    if kind is MechanismKind.MPS:
        text = f"{size:g} %"
    elif kind is MechanismKind.SM:
        text = f"{size:g} SMs"
    else:
        text = f"{size:g}g@{'?' if start is None else start}"
    return text + (f" x{procs}" if procs > 1 else "")


def sim_attainment(summary: Any, source: str) -> tuple[dict[str, float], float | None]:
    """Per-service and overall attainment from a `stsched simulate --out` summary (parsed JSON)."""
    if not isinstance(summary, dict) or not isinstance(summary.get("per_service"), dict):
        raise InputError("per_service: missing (expected the JSON of `stsched simulate --out`)", source=source)
    out: dict[str, float] = {}
    for name, row in summary["per_service"].items():
        v = row.get("attainment") if isinstance(row, dict) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise InputError(f"per_service.{name}.attainment: expected a number in [0, 1], got {v!r}", source=source)
        out[name] = float(v)
    overall = summary.get("slo_attainment")
    return out, float(overall) if isinstance(overall, (int, float)) and not isinstance(overall, bool) else None


def plan_view(instance: Instance, plan: Plan, report: Report | None = None,
              sim: Mapping[str, float] | None = None, sim_overall: float | None = None) -> PlanView:
    """What `show` draws, from the checker's quantities (`report`: the checker's report, computed when None)."""
    report = report if report is not None else check(instance, plan)
    kind = instance.mechanism.kind
    gpus: list[tuple[PartitionView, ...]] = []
    timings_of = TimingMemo(instance)  # a plan repeats a few layouts: each timed once, as the checker does
    caps = capacities(instance, plan, timings_of)  # the checker's own count (late_share: at each tenant's share)
    for gi, g in enumerate(plan.gpus):
        if not g.used:
            continue
        starts = report.mig_starts[gi] if gi < len(report.mig_starts) else tuple(p.start for p in g.partitions)
        x = 0.0
        parts: list[PartitionView] = []
        for qi, (p, times) in enumerate(zip(g.partitions, timings_of(g))):
            if not p.tenants:
                continue
            duty = duty_of(p, times)
            tenants = []
            for ti, (t, tt) in enumerate(zip(p.tenants, times)):
                exec_ms = tt.exec_ms if tt.exec_ms is not None else 0.0
                tenants.append(TenantView(t.service, t.batch, exec_ms, tt.slowdown, t.rate, caps[(gi, qi, ti)],
                                          duty + exec_ms, instance.slo_budget_ms(t.service)))
            start = starts[qi] if kind is MechanismKind.MIG and qi < len(starts) else None
            left = float(start) if start is not None else x
            parts.append(PartitionView(gi, qi, p.size, left, p.procs, partition_label(kind, p.size, start, p.procs),
                                       duty, tuple(tenants)))
            x += p.size
        gpus.append(tuple(parts))
    stats = report.stats
    services = tuple(ServiceView(s.name, s.rate * plan.scale, stats.served.get(s.name, 0.0),
                                 stats.worst_latency_ms.get(s.name), instance.slo_budget_ms(s.name),
                                 None if sim is None else sim.get(s.name)) for s in instance.services)
    return PlanView(instance.name, kind, instance.mechanism.capacity, plan.solver, plan.scale, tuple(gpus), services,
                    report.valid, tuple(str(v) for v in report.violations), sim_overall)


# ---------------------------------------------------------------------------------------------- text
def format_text(view: PlanView) -> str:
    """The plan as a terminal table: one block per GPU, one line per tenant, then one line per service."""
    unit = {MechanismKind.MPS: "% of SMs", MechanismKind.SM: "SMs", MechanismKind.MIG: "compute slices"}[view.mechanism]
    head = (f"{view.instance}: {len(view.gpus)} GPU{'s' if len(view.gpus) != 1 else ''} ({view.mechanism.value}, capacity {view.capacity:g} {unit}), "
            f"solver {view.solver or '-'}, scale {view.scale:.3g}, {'VALID' if view.valid else 'INVALID'}")
    if view.sim_overall is not None:
        head += f", simulated attainment {view.sim_overall:.2%}"
    lines = [head, f"{'gpu':>4} {'partition':>11} {'cycle ms':>9} {'idle':>5} {'load':>5}  {'service':<22} "
                   f"{'batch':>5} {'exec ms':>8} {'share':>6} {'rate/cap':>15} {'load':>5} {'latency/SLO ms':>16} "
                   f"{'slack':>7}"]
    for parts in view.gpus:
        for p in parts:
            for ti, t in enumerate(p.tenants):
                first = ti == 0
                lines.append(
                    f"{p.gpu if first else '':>4} {p.label if first else '':>11} "
                    f"{f'{p.duty_ms:.2f}' if first else '':>9} {f'{p.idle_share:.0%}' if first else '':>5} "
                    f"{f'{p.load:.0%}' if first else '':>5}  "
                    f"{t.service:<22} {t.batch:>5} {t.exec_ms:>8.2f} {t.exec_ms / p.duty_ms:>6.0%} "
                    f"{f'{t.rate:.1f}/{t.capacity:.1f}':>15} {t.load:>5.0%} "
                    f"{f'{t.latency_ms:.1f}/{t.slo_ms:.1f}':>16} {t.slack_ms:>7.1f}")
    lines.append(f"{'service':<22} {'served/offered req/s':>22} {'worst latency/SLO ms':>21}"
                 + ("  sim attainment" if any(s.sim_attainment is not None for s in view.services) else ""))
    for s in view.services:
        lat = "-" if s.worst_latency_ms is None else f"{s.worst_latency_ms:.1f}/{s.slo_ms:.1f}"
        row = f"{s.name:<22} {f'{s.served:.1f}/{s.offered:.1f}':>22} {lat:>21}"
        if s.sim_attainment is not None:
            row += f"  {s.sim_attainment:14.2%}"
        lines.append(row)
    lines += [f"  {v}" for v in view.violations]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- picture
def render(view: PlanView, path: str | Path) -> None:
    """Draw the plan to `path` (.png or .svg; `stsched.view_picture`, matplotlib imported there)."""
    from stsched.view_picture import render as draw

    draw(view, path)
