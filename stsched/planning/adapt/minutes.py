"""What users feel during re-planning: the trace's minutes simulated one after another (`controller.run_adapt`).

`sampling="full"` simulates every minute.  `sampling="sampled"` (default) simulates in full every minute that can
hurt (a GPU down, some service offered more than `risky_load` x its planned rate, a backlog carried in) and carries
their queues and busy partitions into the next; every other minute is a sample of `sample_s` seconds after a
`warmup_s` warm-up whose per-service attainment is applied to the minute's expected requests (the controller's
docstring).  A minute in which the plan changed (the burst detector, `stsched.planning.adapt.detect`) is simulated
in full in spans on the arrivals of the unsplit minute, the queues carried from one span to the next: the plan in
force before the decision, then the new plan, whose GPUs rebuilt in use serve their old layout until the build ends
(`Builds`: a decision made on data of its own instant, an emergency's, could not build them before).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from stsched.plan import GpuLayout, Plan, changed_partitions, kept_layout
from stsched.problem import Instance
from stsched.simulation.arrivals import piecewise_poisson
from stsched.simulation.simulator import run_plan

if TYPE_CHECKING:
    from stsched.planning.adapt.controller import AdaptOptions


def planned(plan: Plan, names: tuple[str, ...]) -> np.ndarray:
    """The rate `plan` serves of each of `names` (0 where it serves none)."""
    served = plan.served()
    return np.array([served.get(n, 0.0) for n in names])


def loads(schedule: np.ndarray, m: int, names: tuple[str, ...], plan: Plan) -> np.ndarray:
    planned_rates = planned(plan, names)
    rates = schedule[:, m]
    return np.where(planned_rates > 0, rates / np.maximum(planned_rates, 1e-12), np.where(rates > 0, np.inf, 0.0))


@dataclass
class Minutes:
    """Simulates the minutes one after another (keeps queues and busy partitions of fully simulated minutes)."""

    schedule: np.ndarray
    names: tuple[str, ...]
    slo: np.ndarray
    options: "AdaptOptions"  # stsched.planning.adapt.controller's (sampling, seed, reroute)
    bin_s: float = 60.0
    carry: dict[str, np.ndarray] = field(default_factory=dict)
    free_at: dict[int, float] = field(default_factory=dict)
    simulated_requests: int = 0
    simulated_s: float = 0.0
    full_minutes: int = 0
    sampled_minutes: int = 0

    def _arrivals(self, t0: float, t1: float, tag: int) -> dict[str, np.ndarray]:
        return {n: piecewise_poisson(self.schedule[i], self.bin_s, t0, t1,
                                     np.random.default_rng([self.options.seed, tag, i]))
                for i, n in enumerate(self.names)}

    def _count(self, parts, t0: float, t1: float, dispatched_only: bool):
        """Requests and those within their SLO per service, among the arrivals in [t0, t1)."""
        k = len(self.names)
        n = np.zeros(k)
        good = np.zeros(k)
        for rec in parts:
            sel = (rec.arrival >= t0) & (rec.arrival < t1)
            if dispatched_only:  # requests still queued are carried into the next minute (unrouted ones are lost)
                sel &= ~(np.isnan(rec.start) & (rec.gpu >= 0))
            if not sel.any():
                continue
            svc = rec.service[sel]
            ok = rec.latency_ms()[sel] <= self.slo[svc] * (1 + 1e-9)
            n += np.bincount(svc, minlength=k)
            good += np.bincount(svc, weights=ok.astype(float), minlength=k)
        return n, good

    def _span(self, m: int, inst: Instance, plan: Plan, arr: dict[str, np.ndarray], down_until: dict[int, float],
              t0: float, t1: float, last: bool) -> tuple[np.ndarray, np.ndarray]:
        """Simulate [t0, t1) of minute `m` in full under `plan` with the arrivals `arr` of that span, the queues
        and busy partitions carried in and out; (requests, those within their SLO) per service."""
        o = self.options
        for n, old in self.carry.items():
            if len(old):
                arr[n] = np.concatenate([old, arr[n]])
        avail = {g: max(t0, self.free_at.get(g, t0), down_until.get(g, t0)) for g in range(len(plan.gpus))}
        run = run_plan(inst, plan, arr, available=avail, start_s=t0, horizon_s=math.inf if last else t1,
                       window=(t0, t1), reroute=o.reroute, seed=o.seed + m)
        left: dict[int, list[np.ndarray]] = {}
        for rec in run.parts:
            if len(rec) and rec.gpu[0] >= 0:
                waiting = np.isnan(rec.start)
                if waiting.any():
                    left.setdefault(int(rec.service[0]), []).append(rec.arrival[waiting])
        self.carry = {self.names[i]: np.sort(np.concatenate(a)) for i, a in left.items()}
        self.free_at = {}
        for (g, _), f in run.free_at.items():
            self.free_at[g] = max(self.free_at.get(g, t0), f)
        self.simulated_requests += sum(len(r) for r in run.parts)
        self.simulated_s += t1 - t0
        return self._count(run.parts, -math.inf, math.inf, dispatched_only=not last)

    def minute(self, m: int, inst: Instance, pieces: list[tuple[float, Plan, dict[int, float]]], t1: float,
               last: bool) -> tuple[np.ndarray, np.ndarray, bool]:
        """Minute `m` as `pieces` of (start, the plan serving from then, its GPUs' availability), the first at the
        minute's start: one piece is the minute under one plan; several (a decision within the minute, a build that
        ends within it) are simulated in full one after another on the arrivals of the unsplit minute."""
        t0, plan, down_until = pieces[0]
        if len(pieces) > 1:
            arr = self._arrivals(t0, t1, 2 * m)
            n = np.zeros(len(self.names))
            good = np.zeros(len(self.names))
            for i, (a, piece, down) in enumerate(pieces):
                b = pieces[i + 1][0] if i + 1 < len(pieces) else t1
                part = {name: x[np.searchsorted(x, a, side="left"):np.searchsorted(x, b, side="left")]
                        for name, x in arr.items()}
                dn, dg = self._span(m, inst, piece, part, down, a, b, last and i == len(pieces) - 1)
                n += dn
                good += dg
            self.full_minutes += 1
            return n, good, True
        o = self.options
        load = loads(self.schedule, m, self.names, plan).max(initial=0.0)
        rates = dict(zip(self.names, self.schedule[:, m]))
        backlog = any(len(a) > max(1.0, rates[n] * o.backlog_s) for n, a in self.carry.items())
        full = (o.sampling == "full" or backlog or load > o.risky_load
                or any(u > t0 for u in down_until.values()) or t1 - t0 < o.sample_s + o.warmup_s)
        if full:
            n, good = self._span(m, inst, plan, self._arrivals(t0, t1, 2 * m), down_until, t0, t1, last)
            self.full_minutes += 1
            return n, good, True
        self.free_at = {}
        s0 = t0 + o.warmup_s
        s1 = s0 + o.sample_s
        arr = self._arrivals(t0, s1, 2 * m + 1)
        for n, old in self.carry.items():  # a small leftover of the minute before: served first, counted as is
            arr[n] = np.concatenate([old, arr[n]])
        self.carry = {}
        run = run_plan(inst, plan, arr, start_s=t0, window=(s0, s1), reroute=o.reroute, seed=o.seed + m)
        n_c, good_c = self._count(run.parts, -math.inf, t0, dispatched_only=False)
        n_s, good_s = self._count(run.parts, s0, s1, dispatched_only=False)
        self.simulated_requests += sum(len(r) for r in run.parts)
        self.simulated_s += s1 - t0
        self.sampled_minutes += 1
        default = (planned(plan, self.names) > 0).astype(float)
        frac = np.where(n_s > 0, good_s / np.maximum(n_s, 1.0), default)
        expected = self.schedule[:, m] * (t1 - t0)
        return expected + n_c, frac * expected + good_c, False


@dataclass
class Builds:
    """GPUs that a decision made on data of its own instant (an emergency's) rebuilt while in use, or whose kept
    layout it gave new tenants (partitions that load a model): with standby each keeps serving its old layout (and
    tenants) until its new one is built; GPU index -> (build end, old layout)."""

    old: dict[int, tuple[float, GpuLayout]] = field(default_factory=dict)

    def record(self, t: float, before: Plan, after: Plan, standby: tuple[int, ...], down: tuple[int, ...],
               until: float | None) -> None:
        """A decision at `t` replaced `before` (the plan in force) by `after`, rebuilding `standby` beside their old
        layouts and stopping `down`; with `until` (built by then) a GPU in use on both sides, rebuilt or kept with
        changed tenants (`stsched.plan.changed_partitions`), serves its old layout (the one serving at `t`) until
        then."""
        serving = self.serving(before, t)
        self.old = {g: x for g, x in self.old.items() if x[0] > t and g not in standby and g not in down}
        if until is None:
            return
        for g, lay in enumerate(after.gpus):  # rebuilt, or kept with new tenants (a model to load: docs/SIMULATOR.md)
            if g < len(serving.gpus) and serving.gpus[g].used and lay.used and (g in standby or (
                    kept_layout(before, after, g) and changed_partitions(before.gpus[g], lay) > 0)):
                self.old[g] = (until, serving.gpus[g])

    def serving(self, plan: Plan, t: float) -> Plan:
        """`plan` as it serves at `t`: a GPU still being built carries its old layout."""
        live = {g: lay for g, (u, lay) in self.old.items() if u > t and g < len(plan.gpus)}
        if not live:
            return plan
        return replace(plan, gpus=tuple(live.get(g, lay) for g, lay in enumerate(plan.gpus)))

    def ends(self, t0: float, t1: float) -> list[float]:
        """The build ends strictly inside (t0, t1), in order."""
        return sorted({u for u, _ in self.old.values() if t0 < u < t1})

    def copy(self) -> "Builds":
        return Builds(dict(self.old))
