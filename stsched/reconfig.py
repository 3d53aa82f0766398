"""Reconfiguration cost: which GPUs change layout between two plans, and what a change costs per mechanism.

A GPU whose layout (multiset of partition sizes with tenants) changes, or that is switched on or off, is one layout
reconfiguration (`stsched.plan.layout_changes`, the one definition, GPUs matched by index).  Changing tenants, batches or rate
shares inside a kept layout is free (docs/RULES.md).  A reconfigured GPU that is in use afterwards serves nothing
for the mechanism's cost in seconds (`downtime="stop"`), or, with gpulet-style double buffering
(`downtime="standby"`), keeps serving its old layout while the new one is built beside it, which needs the memory
of both layouts on that GPU for that time; a GPU where both do not fit, and every MIG GPU (slices cannot overlap),
falls back to stopping.

Default costs (seconds per reconfiguration of one GPU), replaced by measured ones when a profile provides them:
  mps  15.0  gpulet (Choi et al., USENIX ATC'22) reports 10-15 s to repartition with MPS (restart the MPS
             clients with new active-thread percentages and reload the models); we take the upper end.
  mig  15.0  an assumption, not a measurement: destroying and re-creating MIG instances takes seconds and the
             models are reloaded afterwards, so we charge the same as MPS until the profiler measures it.
  sm   0.01  an expectation, not a measurement: CUDA green contexts re-split SMs inside one process without
             reloading models; expected in milliseconds, to be measured by the profiler.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from stsched.checker import gpu_memory_limit_mb, partition_memory_mb
from stsched.errors import InputError
from stsched.layouts import fits
from stsched.plan import GpuLayout, Plan, changed_gpus, changed_partitions, gpu_layout, kept_layout, layout_changes, tenant_changes
from stsched.problem import Instance, MechanismKind

DEFAULT_SECONDS = {"mps": 15.0, "mig": 15.0, "sm": 0.01}
MAX_SECONDS = 86400.0  # a reconfiguration of a day at most: 1e308 s made the downtime inf (printed null)
DEFAULT_SOURCES = {
    "mps": "gpulet (USENIX ATC'22): 10-15 s per MPS repartition, upper end",
    "mig": "assumed equal to MPS (MIG instance re-creation + model reload), not measured",
    "sm": "expected milliseconds for a green-context re-split, not measured",
}


@dataclass(frozen=True)
class ReconfigCosts:
    """Seconds of downtime per layout reconfiguration of one GPU, per mechanism, with where each number comes
    from."""

    seconds: tuple[tuple[str, float], ...] = tuple(DEFAULT_SECONDS.items())
    sources: tuple[tuple[str, str], ...] = tuple(DEFAULT_SOURCES.items())

    def __post_init__(self) -> None:
        for k, v in self.seconds:
            if k not in DEFAULT_SECONDS:
                raise InputError(f"reconfiguration cost: unknown mechanism {k!r} (mps, mig, sm)")
            if not (isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= MAX_SECONDS):
                raise InputError(f"reconfiguration cost of {k}: expected seconds from 0 to {MAX_SECONDS:g} (a day), "
                                 f"got {v!r}")

    def of(self, kind: MechanismKind | str) -> float:
        key = kind.value if isinstance(kind, MechanismKind) else str(kind)
        return dict(self.seconds)[key]

    def source(self, kind: MechanismKind | str) -> str:
        key = kind.value if isinstance(kind, MechanismKind) else str(kind)
        return dict(self.sources).get(key, "")

    def replaced(self, measured: dict[str, float], source: str) -> "ReconfigCosts":
        """These costs with measured values for some mechanisms (e.g. from the profiler)."""
        sec = dict(self.seconds)
        src = dict(self.sources)
        for k, v in measured.items():
            sec[k] = float(v)
            src[k] = source
        return ReconfigCosts(tuple(sec.items()), tuple(src.items()))

    @classmethod
    def parse(cls, text: str) -> "ReconfigCosts":
        """A number (seconds for every mechanism) or a JSON file: `{"mps": 11.2, ...}`, or a profile's meta.json
        with such a mapping under `reconfig_s`."""
        try:
            value = float(text)
        except ValueError:
            return cls.load(text)
        try:
            return cls().replaced({k: value for k in DEFAULT_SECONDS}, "given on the command line")
        except InputError as e:  # the one range check, __post_init__'s, named for the flag
            raise InputError(f"--reconfig-cost {text!r}: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> "ReconfigCosts":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise InputError("no such file", source=str(path)) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read reconfiguration costs (a JSON file expected): {e}",
                             source=str(path)) from None
        if isinstance(data, dict) and "reconfig_s" in data:
            data = data["reconfig_s"]
            if isinstance(data, dict) and not data:
                raise InputError("no measured reconfiguration seconds in reconfig_s (a CPU run of `stsched "
                                 "reconfig-cost` measures none: its numbers say nothing about a GPU); give seconds "
                                 "or a GPU run's file", source=str(path))
        if not isinstance(data, dict) or not data:
            raise InputError("expected an object {mechanism: seconds}", source=str(path))
        measured = {}
        for k, v in data.items():
            if isinstance(v, dict):
                v = v.get("seconds")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InputError(f"{k}: expected seconds, got {v!r}", source=str(path))
            try:
                measured[str(k)] = float(v)
            except OverflowError:  # a 400-digit integer: no float holds it (a traceback before)
                raise InputError(f"{k}: {str(v)[:20]}... ({len(str(v))} digits) is out of range for seconds",
                                 source=str(path)) from None
        try:
            return cls().replaced(measured, f"measured ({path})")
        except InputError as e:
            raise InputError(str(e), source=str(path)) from None


_MOVED_SLICES = 10**6  # weight of a GPU placed where the partitions' start positions differ


def _placement(g: GpuLayout) -> list[tuple[float, int]]:
    """Sizes and start positions (MIG; -1 where none) of a GPU's partitions with tenants."""
    return sorted((float(p.size), -1 if p.start is None else int(p.start)) for p in g.partitions if p.tenants)


def keep_tenants(old: Plan, new: Plan) -> Plan:
    """`new` with the contents of its kept GPUs (same layout as at the same index in `old`) permuted among the kept
    GPUs of each layout so that the fewest partitions change tenants (an assignment problem per layout).  Whole
    GPUs move, so every GPU's layout by index, hence `layout_changes`, the GPUs in use and validity, stay the
    same: a solver that places equal layouts in arbitrary order (the milp's adapt objective counts kept GPUs per
    layout) loads no model it could have left where it was."""
    groups: dict[tuple[float, ...], list[int]] = {}
    for k in range(len(new.gpus)):
        if kept_layout(old, new, k):
            groups.setdefault(gpu_layout(new.gpus[k]), []).append(k)
    gpus = list(new.gpus)
    for slots in groups.values():
        if len(slots) < 2:
            continue
        # a MIG GPU moves only where the old GPU had the same start slices (else its slices would be re-made)
        cost = np.array([[changed_partitions(old.gpus[j], new.gpus[i])
                          + _MOVED_SLICES * (_placement(old.gpus[j]) != _placement(new.gpus[i]))
                          for j in slots] for i in slots])
        rows, cols = linear_sum_assignment(cost)
        if cost[rows, cols].sum() < np.trace(cost):
            for i, j in zip(rows, cols):
                gpus[slots[j]] = new.gpus[slots[i]]
    return replace(new, gpus=tuple(gpus))


def align(old: Plan, new: Plan) -> Plan:
    """`new` with its GPUs permuted onto `old`'s indices so that identical layouts stay in place (the matching
    that minimises `layout_changes` for a plan built from scratch); remaining GPUs in use fill the slots of old
    GPUs in use first, then the free ones.  Unused GPUs are dropped, empty slots padded."""
    used = [g for g in new.gpus if gpu_layout(g)]
    slots: list[GpuLayout | None] = [None] * max(len(old.gpus), len(used))
    pending = list(used)
    for k, g in enumerate(old.gpus):
        key = gpu_layout(g)
        if not key:
            continue
        for j, h in enumerate(pending):
            if gpu_layout(h) == key:
                slots[k] = pending.pop(j)
                break
    order = [k for k in range(len(slots)) if k < len(old.gpus) and gpu_layout(old.gpus[k])]
    order += [k for k in range(len(slots)) if k not in set(order)]
    for k in order:
        if slots[k] is None and pending:
            slots[k] = pending.pop(0)
    gpus = tuple(s if s is not None else GpuLayout() for s in slots)
    while gpus and not gpu_layout(gpus[-1]) and len(gpus) > len(old.gpus):
        gpus = gpus[:-1]
    return Plan(gpus, new.scale, new.solver, new.notes)


def gpu_memory_mb(instance: Instance, g: GpuLayout) -> float:
    """Memory a GPU's layout needs (the checker's rule, `stsched.checker.partition_memory_mb`: context per process
    plus each tenant's weights and activations at its batch, per process), its empty partitions left out."""
    return sum(partition_memory_mb(instance, p.procs, [(t.service, t.batch) for t in p.tenants
                                                       if instance.has_service(t.service)])
               for p in g.partitions if p.tenants)


def standby_fits(instance: Instance, old: GpuLayout | None, new: GpuLayout) -> bool:
    """Whether the old and the new layout of one GPU fit in its memory together (double buffering)."""
    if instance.mechanism.kind is MechanismKind.MIG:
        return False
    before = gpu_memory_mb(instance, old) if old is not None else 0.0
    return fits(before + gpu_memory_mb(instance, new), gpu_memory_limit_mb(instance))  # (the memory rule's comparison)


@dataclass(frozen=True)
class Transition:
    """What one epoch boundary costs: layout reconfigurations, the GPUs that go down and until when."""

    reconfigurations: int
    down: dict[int, float] = field(default_factory=dict)  # new-plan GPU index -> seconds without service
    standby: tuple[int, ...] = ()  # GPUs switched with double buffering (no downtime)
    standby_extra_mb: float = 0.0  # largest extra memory held on one GPU while double-buffering
    prep_gpu_s: float = 0.0  # GPU-seconds of GPUs switched on early to be built in the background (standby)
    tenant_changes: int = 0  # partitions of kept layouts whose tenant services changed (free)

    @property
    def downtime_s(self) -> float:
        """GPU-seconds without service."""
        return sum(self.down.values())


def transition(instance: Instance, old: Plan, new: Plan, costs: ReconfigCosts, downtime: str = "stop") -> Transition:
    """The reconfigurations from `old` to `new` and the downtime they cause under `downtime` (stop | standby)."""
    if downtime not in ("stop", "standby"):
        raise InputError(f"downtime must be 'stop' or 'standby', got {downtime!r}")
    seconds = costs.of(instance.mechanism.kind)
    down: dict[int, float] = {}
    standby: list[int] = []
    extra = prep = 0.0
    for k in changed_gpus(old, new):
        before = old.gpus[k] if k < len(old.gpus) and gpu_layout(old.gpus[k]) else None
        if downtime == "standby" and standby_fits(instance, before, new.gpus[k]):
            standby.append(k)
            if before is not None:
                extra = max(extra, gpu_memory_mb(instance, new.gpus[k]))
            else:
                prep += seconds  # a GPU switched on is held `seconds` early while it is built
        elif seconds > 0:
            down[k] = seconds
    return Transition(layout_changes(old, new), down, tuple(standby), extra, prep, tenant_changes(old, new))
