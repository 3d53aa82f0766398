"""gpulet's elastic partitioning (Choi et al., "Serving Heterogeneous Machine Learning Models on Multi-GPU Servers
with Spatio-Temporal Sharing", USENIX ATC'22), re-implemented from the paper and the public description of its
incremental scheduler.

Rules: at most two gpu-lets per GPU (a whole-GPU gpu-let is split into a size and its complement), sizes from
{20, 40, 50, 60, 80, 100} %, at most three tenants per gpu-let, latencies times the latency ratio (1.1 in gpulet;
here the instance margin's latency_factor), interference predicted by the instance's interference form (gpulet's
own linear L2/DRAM form where the instance carries it).  Services are scheduled one by one in increasing
rate x SLO; each one goes through gpulet's steps:

1. Estimate.  The "knee" size: among adjacent sizes (20-40, 40-50, 50-60, 60-80; gpulet never compares 80-100),
   the larger one of the pair with the highest throughput gain per percent, counting only gains of at least 5 %.
   The rate above the knee's saturated throughput gets saturated gpu-lets of the knee size (largest batch with
   2 L(b) <= SLO); the rest gets one residue gpu-let: the largest batch b with L(b) + b / r <= SLO at the knee, then
   the smallest size (scanning down from the knee) at which that batch still fits its collection time and SLO.
2. Fit.  The estimated gpu-lets, largest first, go to empty gpu-lets: a whole GPU is preferred (and split), else
   the tightest larger gpu-let (gpulet's tie rules: the last candidate wins), each only where its latency with
   interference and its neighbours' latencies stay within the SLOs (the interference check).  If some estimated
   gpu-let has no place, nothing is committed and the next step runs.
3. Readjust.  The rate left goes to the empty gpu-lets, largest first (whole GPUs split at the estimate's size),
   saturated while a gpu-let's throughput (with interference) does not exceed the rate left, then as a residue.
4. Merge.  The service's residue gpu-lets are merged into one gpu-let of the size of the least productive of them
   when its saturated throughput covers their summed rate; GPUs left empty become one whole gpu-let again.
5. Time share.  The rate still left joins a partly idle gpu-let (most occupied first, at most three tenants): the
   largest batch whose duty cycle d = b / r does not exceed the gpu-let's, with d + L(b) < SLO and L(b) / d below its
   idle share; the other tenants' batches are re-derived for d, and every SLO must hold.
The scheduler works on a fixed number of GPUs and fails when a service cannot be placed; min-gpus is the smallest
GPU count on which it succeeds, max-scale the largest alpha (bisection) on instance.gpus GPUs.

Deviations that keep every plan valid (docs/BASELINES.md): rates below gpulet's 15 req/s slack are served, not
dropped (`slack` option); re-derived batches round up (gpulet's `int(d * r)` under-serves by up to one batch per
cycle); a residue whose batch cannot be collected in time gets a saturated gpu-let; a placement that would break a
neighbour (interference, memory) is refused rather than followed by gpulet's batch re-adjustment of the neighbour;
a failed residue merge is undone (gpulet loses the residues' rate).  Batches are the instance's allowed batches;
gpulet's latency model interpolates every integer batch (use `interpolate_batches` to reproduce that).

Options (`--param key=value`): `slack` (req/s, default 0), `max_tenants` (default 3), `max_lets` (default 2).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np

from stsched.bounds import lp_bound_gpus
from stsched.devices import GPULET_SIZES
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Instance, LatencyTable, ProfileEntry
from stsched.registry import Objective, SolveOptions, SolveResult, register
from stsched.timing import gpu_timings

from solvers.baselines.common import (TOL, budget, covering_batch, finish, full_size, gpu_ok, make_plan,
                                      scale_result, sizes_legal, solo_exec, within_time_limit)

log = logging.getLogger(__name__)

KNEE_MIN_GAIN = 1.05  # gpulet: a larger size counts only when it gives >= 5 % more throughput


@dataclass(eq=False)  # gpu-lets are compared by identity
class Let:
    """A gpu-let: its size, tenants [service, batch, rate served] and duty cycle (ms)."""

    size: float
    tenants: list[list] = field(default_factory=list)
    duty: float = 0.0


@dataclass(frozen=True)
class Est:
    size: float
    batch: int
    duty: float
    rate: float
    saturated: bool


@dataclass(frozen=True)
class GpuletConfig:
    """Options of the gpulet baseline (`--param key=value`).

    slack: req/s below which gpulet would drop a residue; stsched serves it anyway (default 0).
    max_tenants: services time-sharing one gpu-let (gpulet: 3).
    max_lets: gpu-lets per GPU (gpulet: 2).
    """

    slack: float = 0.0
    max_tenants: int = 3
    max_lets: int = 2

    def __post_init__(self) -> None:
        if self.slack < 0:
            raise ValueError(f"slack must be >= 0, got {self.slack}")
        if self.max_tenants < 1 or self.max_lets < 1:
            raise ValueError(f"max_tenants and max_lets must be >= 1, got {self.max_tenants}, {self.max_lets}")


class Gpulet:
    """gpulet's incremental elastic-partitioning scheduler on `gpus` GPUs."""

    def __init__(self, instance: Instance, gpus: int, config: GpuletConfig = GpuletConfig()):
        self.inst = instance
        self.cfg = config
        self.full = full_size(instance)
        own = sorted((s for s in instance.mechanism.sizes if s in GPULET_SIZES), reverse=True)
        self.sizes = own if len(own) >= 2 else sorted(instance.mechanism.sizes, reverse=True)
        limit = instance.mechanism.max_tenants
        self.max_tenants = min(config.max_tenants, limit) if limit else config.max_tenants
        lets = instance.mechanism.max_partitions
        self.max_lets = min(config.max_lets, lets) if lets else config.max_lets
        self.gpus: list[list[Let]] = [[Let(self.full)] for _ in range(gpus)]
        self._sat: dict[str, dict[float, tuple[int, float, bool]]] = {}

    # -- latency model -----------------------------------------------------------------------------------------
    def layout(self, gpu: list[Let]) -> GpuLayout:
        return GpuLayout(tuple(Partition(l.size, tuple(Tenant(s, b, r) for s, b, r in l.tenants),
                                         duty_ms=l.duty if l.tenants else None) for l in gpu))

    def latency(self, gi: int | None, let: Let, svc: str, batch: int) -> float | None:
        """L(b) of `svc` in `let` with the interference of the GPU's other gpu-lets (solo when gi is None)."""
        if gi is None or self.inst.interference.form == "none":
            return solo_exec(self.inst, svc, batch, let.size)
        probe = Let(let.size, [[svc, batch, 0.0]], 1.0)
        gpu = [probe if l is let else l for l in self.gpus[gi]]
        return gpu_timings(self.inst, self.layout(gpu))[gpu.index(probe)][0].exec_ms

    def max_batch(self, gi: int | None, let: Let, svc: str, rate: float, residue: bool) -> int:
        """gpulet's getMaxBatch: the largest batch with 2 L <= SLO (saturated) or L + b / r <= SLO (residue);
        for a residue rate too low for any batch to be collected in time, batch 1 when L(1) < 1 / r and
        2 L(1) <= SLO (gpulet's special case: that gpu-let then cycles every SLO - L(1), see `duty`)."""
        limit = budget(self.inst, svc)
        best = 0
        for b in sorted(self.inst.batches):
            lat = self.latency(gi, let, svc, b)
            if lat is None:
                continue
            wait = 1000.0 * b / rate if residue else lat
            if lat + wait <= limit * (1 + TOL):
                best = b
        if best == 0 and residue:
            b = min(self.inst.batches)
            lat = self.latency(gi, let, svc, b)
            if lat is not None and lat < 1000.0 * b / rate and 2 * lat <= limit * (1 + TOL):
                best = b
        return best

    def duty(self, svc: str, batch: int, rate: float, lat: float) -> float:
        """A residue gpu-let's duty cycle: the batch's collection time, capped at SLO - L (never below L)."""
        return max(lat, min(1000.0 * batch / rate, budget(self.inst, svc) - lat))

    def sat(self, svc: str) -> dict[float, tuple[int, float, bool]]:
        """Saturated (batch, throughput, feasible) per size, without interference (gpulet's saturate table)."""
        if svc not in self._sat:
            table = {}
            for size in self.sizes:
                let = Let(size)
                b = self.max_batch(None, let, svc, 1.0, residue=False)
                ok = b > 0
                b = b if ok else min(self.inst.batches)
                lat = solo_exec(self.inst, svc, b, size)
                table[size] = (b, 1000.0 * b / lat if lat else 0.0, ok and lat is not None)
            self._sat[svc] = table
        return self._sat[svc]

    def knee(self, svc: str) -> float:
        """gpulet's getMaxReturnPart."""
        parts, trp = self.sizes, {s: v[1] for s, v in self.sat(svc).items()}
        if len(parts) == 1:
            return parts[0]
        best, best_ret = parts[-1], 0.0
        for i in range(len(parts) - 1, 1, -1):
            low, high = parts[i], parts[i - 1]
            if trp[low] <= 0 or trp[high] / trp[low] < KNEE_MIN_GAIN:
                continue
            ret = (trp[high] - trp[low]) / (high - low)
            if ret > best_ret:
                best, best_ret = high, ret
        return best

    def estimate(self, svc: str, rate: float) -> list[Est] | None:
        """gpulet's estimateTrp: saturated gpu-lets of the knee size, then one residue gpu-let."""
        knee = self.knee(svc)
        b, trp, ok = self.sat(svc)[knee]
        if not ok:
            return None
        out = []
        while rate > trp * (1 + TOL):
            out.append(Est(knee, b, 1000.0 * b / trp, trp, True))
            rate -= trp
        if rate <= max(self.cfg.slack, TOL):
            return out
        rb = self.max_batch(None, Let(knee), svc, rate, residue=True)
        if rb == 0:
            out.append(Est(knee, b, 1000.0 * b / trp, rate, True))
            return out
        limit, size = budget(self.inst, svc), knee
        wait = self.duty(svc, rb, rate, solo_exec(self.inst, svc, rb, knee) or 0.0)
        for part in self.sizes:
            if part > knee:
                continue
            lat = solo_exec(self.inst, svc, rb, part)
            if lat is None or wait < lat or limit < lat + wait:
                break
            size = part
        lat = solo_exec(self.inst, svc, rb, size)
        if lat is None or lat > wait * (1 + TOL):  # the batch cannot be collected in time: saturated instead
            out.append(Est(knee, b, 1000.0 * b / trp, rate, True))
        else:
            out.append(Est(size, rb, wait, rate, False))
        return sorted(out, key=lambda e: -e.size)

    # -- state helpers -----------------------------------------------------------------------------------------
    def complement(self, gpu: list[Let], size: float) -> float | None:
        if self.max_lets < 2:
            return None
        rest = [s for s in self.sizes if s <= self.full - size + TOL]
        for s in sorted(rest, reverse=True):
            if sizes_legal(self.inst, [size, s]):
                return s
        return None

    def split(self, gi: int, let: Let, size: float) -> Let | None:
        """Split a whole-GPU gpu-let into `size` and its complement; returns the new empty gpu-let."""
        if size >= let.size - TOL:
            return None
        other = self.complement(self.gpus[gi], size)
        let.size = size
        if other is None:
            return None
        new = Let(other)
        self.gpus[gi].append(new)
        return new

    def ok(self, gi: int) -> bool:
        return gpu_ok(self.inst, self.layout(self.gpus[gi]))

    def occupancy(self, gi: int, let: Let) -> float:
        if not let.tenants or let.duty <= 0:
            return 0.0
        rows = gpu_timings(self.inst, self.layout(self.gpus[gi]))[self.gpus[gi].index(let)]
        return sum(t.exec_ms or 0.0 for t in rows) / let.duty

    def empty_lets(self) -> list[tuple[int, Let]]:
        found = [(gi, l) for gi, gpu in enumerate(self.gpus) for l in gpu if not l.tenants]
        return sorted(found, key=lambda x: -x.__getitem__(1).size)

    def place(self, gi: int, let: Let, svc: str, batch: int, saturated: bool, rate: float) -> float | None:
        """Put `svc` alone into `let` (batch fixed); returns the rate it serves, or None (state unchanged)."""
        lat = self.latency(gi, let, svc, batch)
        if lat is None:
            return None
        duty = lat if saturated else self.duty(svc, batch, rate, lat)
        served = min(rate, 1000.0 * batch / duty) if not saturated else 1000.0 * batch / duty
        let.tenants, let.duty = [[svc, batch, served]], duty
        if not self.ok(gi):
            let.tenants, let.duty = [], 0.0
            return None
        return served

    # -- gpulet's steps ----------------------------------------------------------------------------------------
    def best_fit(self, est: Est, svc: str) -> tuple[int, Let] | None:
        """gpulet's findBestFit with its SLO and interference checks (done on a trial placement)."""
        best, min_diff = None, math.inf
        fresh_fits = None  # every untouched GPU (one empty whole gpu-let) gives the same trial outcome
        for gi, gpu in enumerate(self.gpus):
            for let in gpu:
                if let.tenants or let.size < est.size - TOL:
                    continue
                fresh = len(gpu) == 1 and let.size >= self.full - TOL
                if fresh and fresh_fits is not None:
                    fits = fresh_fits
                else:
                    fits = self.trial_fits(gi, let, est, svc)
                    fresh_fits = fits if fresh else fresh_fits
                if not fits:
                    continue
                if let.size >= self.full - TOL:
                    best, min_diff = (gi, let), 0.0
                if min_diff >= let.size - est.size - TOL:
                    best, min_diff = (gi, let), let.size - est.size
        return best

    def trial_fits(self, gi: int, let: Let, est: Est, svc: str) -> bool:
        original = self.gpus[gi]
        trial = copy.deepcopy(original)
        self.gpus[gi] = trial
        try:
            return self.fit_into(gi, trial[original.index(let)], est, svc) is not None
        finally:
            self.gpus[gi] = original

    def fit_into(self, gi: int, let: Let, est: Est, svc: str) -> float | None:
        """gpulet's allocateFit for one estimated gpu-let: split a whole GPU, or re-batch for a larger gpu-let."""
        batch = est.batch
        if let.size >= self.full - TOL and est.size < self.full - TOL:
            self.split(gi, let, est.size)
        elif let.size > est.size + TOL:
            batch = self.max_batch(gi, let, svc, est.rate, residue=not est.saturated)
            if batch == 0:
                return None
        return self.place(gi, let, svc, batch, est.saturated, est.rate)

    def allocate_fit(self, svc: str, rate: float) -> float | None:
        """Place every estimated gpu-let or nothing; returns the rate left (None: some gpu-let has no place)."""
        ests = self.estimate(svc, rate)
        if ests is None:
            return None
        saved = copy.deepcopy(self.gpus)
        for est in ests:
            spot = self.best_fit(est, svc)
            served = None if spot is None else self.fit_into(spot[0], spot[1], est, svc)
            if served is None:
                self.gpus = saved
                return None
            rate -= served
        return max(rate, 0.0)

    def readjust(self, svc: str, rate: float) -> float:
        given = self.empty_lets()
        residue = False
        while rate > max(self.cfg.slack, TOL) and given:
            gi, let = given[0]
            batch = 0
            if let.size >= self.full - TOL and self.max_lets >= 2:  # split a whole GPU at the estimate's size
                ests = self.estimate(svc, rate)
                if ests:
                    batch = ests[0].batch
                    new = self.split(gi, let, ests[0].size)
                    if new is not None:
                        given = [given[0]] + sorted(given[1:] + [(gi, new)], key=lambda x: -x[1].size)
            if not residue:
                if batch == 0:
                    batch = self.max_batch(gi, let, svc, rate, residue=False) or min(self.inst.batches)
                lat = self.latency(gi, let, svc, batch)
                if lat is not None and 1000.0 * batch / lat > rate:
                    residue = True
                    continue
                served = self.place(gi, let, svc, batch, True, rate)
            else:
                batch = self.max_batch(gi, let, svc, rate, residue=True)
                if batch == 0:
                    break
                served = self.place(gi, let, svc, batch, False, rate)
            if served is not None:
                rate -= served
            given.pop(0)
        return max(rate, 0.0)

    def merge_residue(self, svc: str, rate: float) -> float:
        residues = [(gi, l) for gi, gpu in enumerate(self.gpus) for l in gpu
                    if len(l.tenants) == 1 and l.tenants[0][0] == svc and self.occupancy(gi, l) < 1.0 - 1e-6]
        total = rate + sum(l.tenants[0][2] for _, l in residues)
        if not residues or (len(residues) == 1 and total < self.cfg.slack):
            return rate
        sat = self.sat(svc)
        size = min((l.size for _, l in residues), key=lambda s: sat[s][1])
        if sat[size][1] < total:
            return rate
        saved = copy.deepcopy(self.gpus)
        for _, l in residues:
            l.tenants, l.duty = [], 0.0
        for gi, gpu in enumerate(self.gpus):
            for let in gpu:
                if let.tenants or abs(let.size - size) > TOL:
                    continue
                batch = self.max_batch(gi, let, svc, total, residue=True)
                if batch and self.place(gi, let, svc, batch, False, total) is not None:
                    for g in self.gpus:
                        if len(g) > 1 and not any(l.tenants for l in g):
                            g[:] = [Let(self.full)]
                    return max(total - let.tenants[0][2], 0.0)
        self.gpus = saved
        return rate

    def time_share(self, svc: str, rate: float) -> float:
        limit = budget(self.inst, svc)
        cands = [(gi, l) for gi, gpu in enumerate(self.gpus) for l in gpu
                 if l.tenants and len(l.tenants) < self.max_tenants and self.occupancy(gi, l) < 1.0]
        cands.sort(key=lambda x: -self.occupancy(*x))
        for gi, let in cands:
            if any(t[0] == svc for t in let.tenants):
                continue
            occ = self.occupancy(gi, let)
            top = int(let.duty * rate / 1000.0 + TOL)
            for b in sorted((b for b in self.inst.batches if b <= top), reverse=True):
                duty = 1000.0 * b / rate
                lat = self.latency(gi, let, svc, b)
                if lat is not None and duty + lat < limit and lat / duty < 1.0 - occ:
                    break
            else:
                continue
            old = copy.deepcopy(let.tenants), let.duty
            tenants = [[svc, b, rate]]
            for s, _, r in let.tenants:
                tb = covering_batch(self.inst, r, duty)
                if tb is None:
                    break
                tenants.append([s, tb, r])
            else:
                let.tenants, let.duty = tenants[1:] + tenants[:1], duty
                if self.ok(gi):
                    return 0.0
            let.tenants, let.duty = old
        return rate

    def add(self, svc: str, rate: float) -> bool:
        left = self.allocate_fit(svc, rate)
        if left is not None and left <= max(self.cfg.slack, TOL):
            return True
        if left is None:
            left = rate
        left = self.readjust(svc, left)
        left = self.merge_residue(svc, left)
        if left <= max(self.cfg.slack, TOL):
            return True
        return self.time_share(svc, left) <= max(self.cfg.slack, TOL)

    def run(self) -> bool:
        order = sorted(range(len(self.inst.services)),
                       key=lambda i: (self.inst.services[i].rate * self.inst.services[i].slo_ms, -i))
        for i in order:
            s = self.inst.services[i]
            if s.rate > 0 and not self.add(s.name, s.rate):
                log.debug("gpulet: %s could not be placed on %d GPUs", s.name, len(self.gpus))
                return False
        return True

    def plan(self) -> Plan:
        return make_plan(([p for p in self.layout(gpu).partitions if p.tenants] for gpu in self.gpus), "gpulet")


def gpulet_pack(instance: Instance, gpus: int, config: GpuletConfig = GpuletConfig()) -> Plan | None:
    """gpulet's plan on `gpus` GPUs, or None when its scheduler fails."""
    sched = Gpulet(instance, gpus, config)
    return sched.plan() if sched.run() else None


def interpolate_batches(instance: Instance, batches=tuple(range(1, 33))) -> Instance:
    """The instance with gpulet's latency model: latency (and L2/DRAM use) linearly interpolated between profiled
    batch sizes of the same size and process count, for every integer batch in `batches` within the profiled range."""
    tables = []
    for t in instance.tables:
        groups: dict[tuple[float, int], list[ProfileEntry]] = {}
        for e in t.entries:
            groups.setdefault((e.size, e.procs), []).append(e)
        entries = []
        for (size, procs), es in groups.items():
            es = sorted(es, key=lambda e: e.batch)
            xb = [e.batch for e in es]
            for b in batches:
                if b < xb[0] or b > xb[-1]:
                    continue
                lat = float(np.interp(b, xb, [e.latency_ms for e in es]))
                l2 = float(np.interp(b, xb, [e.l2_util for e in es])) if all(e.l2_util is not None for e in es) else None
                dram = (float(np.interp(b, xb, [e.dram_util for e in es]))
                        if all(e.dram_util is not None for e in es) else None)
                entries.append(ProfileEntry(int(b), size, procs, lat, None, l2, dram))
        tables.append(LatencyTable(t.model, tuple(entries)))
    return replace(instance, batches=tuple(batches), tables=tuple(tables),
                   notes=(instance.notes + "; " if instance.notes else "") + "batches interpolated (gpulet's model)")


@register("gpulet", "baseline", "gpulet (ATC'22): elastic partitioning into <= 2 gpu-lets with time sharing",
          (Objective.MIN_GPUS, Objective.MAX_SCALE), late_share=False, options=GpuletConfig)
class GpuletSolver:
    @within_time_limit
    def solve(self, instance: Instance, options: SolveOptions) -> SolveResult:
        config = options.typed(GpuletConfig, "gpulet")
        if options.objective is Objective.MAX_SCALE:
            return scale_result("gpulet", instance, lambda inst: gpulet_pack(inst, inst.gpus, config), options)
        low = lp_bound_gpus(instance)
        if math.isinf(low):
            return finish("gpulet", instance, None, options, "some service cannot meet its SLO")
        for g in range(int(low), instance.gpus + 1):
            plan = gpulet_pack(instance, g, config)
            if plan is not None:
                return finish("gpulet", instance, plan, options, f"smallest GPU count on which gpulet succeeds: {g}")
        return finish("gpulet", instance, None, options, f"gpulet fails on up to {instance.gpus} GPUs")
