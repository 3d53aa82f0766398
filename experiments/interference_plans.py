"""Plans for a model never co-run (issue 19), simulated against its measured co-run slowdowns.

For each data set with co-runs and each victim model v held out, the latency model is fitted without v's co-run
rows (its solo profile kept) and calibrated on the other victims (`uncertainty.with_predictive`).  The instance
serves four services of v (SLO 3, 4, 6, 8 x its solo latency at its largest co-run batch <= 8 on the largest
profiled partition; each at half of that partition's throughput there; Poisson margin late_share 0.05 (or
`--late-share`); at most
two partitions per GPU, the layout the co-run grid measured; batches and partition sizes from v's co-run grid plus
the whole GPU).  The heuristic's min-gpus plan is made with the interference of:

- `none` (no interference), `mean` (the form's point prediction), `q0.9` (its calibrated 0.9 quantile; another
  quantile Q with `--target-attainment`, then named `qQ`);
- `probes-k` (k = 1..4): k probes planned by `probes.plan_probes` taken from v's measured rows, the form refitted
  with them, v's sensitivity adapted (for one-model instances it is carried exactly by scaling the form's
  coefficients: the forms used here are 1 + sum c_i f_i), at the same quantile calibrated with k probes where the
  data set has two or more other victims (else the 0-probe calibration).

Each plan is simulated for 60 s of Poisson arrivals with every batch of a partition that has a neighbour charged
a slowdown drawn from v's *measured* co-run slowdowns at the tenant's (batch, partition) (nearest grid point by
|log2 batch|, then partition; any co-runner), instead of the planned one.  Reported: GPUs and SLO attainment, and
the worst service's attainment and whether it has a neighbour anywhere (else its misses are queueing, not
interference); `queue_only_attainment`, the same plan on the same arrivals with its planned slowdowns exactly (the
misses the Poisson margin's late share leaves: 1 - it are queueing misses, the rest down to `slo_attainment` is
interference), and `exceed_share`, the rate-weighted share of measured draws above the planned slowdown.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from stsched.data.loaders import load_profile
from stsched.devices import DEVICES, mps_mechanism, sm_mechanism
from stsched.interference import QUANTILE_SUFFIX
from stsched.latency.evaluate import _Frames, measured_slowdowns
from stsched.latency.grid import interference_for, tables_for
from stsched.latency.model import corun_data, default_form, fit
from stsched.latency.probes import axis_weights, fit_with_probes, plan_probes, probe_mask
from stsched.latency.uncertainty import probed_key, with_predictive
from stsched.plan import Plan
from stsched.problem import Device, Instance, Interference, Margin, Service
from stsched.simulation import ArrivalSpec, SimOptions, simulate
from stsched.simulation.simulator import PartitionTiming
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.timing import gpu_timings

log = logging.getLogger("interference_plans")
SLO_FACTORS = (3.0, 4.0, 6.0, 8.0)
RATE_SHARE = 0.5
DURATION_S, SEED, GPUS = 60.0, 0, 16
LINEAR_FORMS = ("igniter", "stsched-contention", "stsched-regime", "stsched-elastic")  # 1 + sum c_i f_i


def _device(prof) -> Device:
    meta = prof.meta
    if meta.mechanism == "sm":
        return Device(meta.device, meta.memory_mb, meta.sm_count)
    return DEVICES[meta.device]


#: the Poisson margin's late share of the plans (`Margin.late_share`): 0.05 lets up to 5 % of a tenant's requests
#: wait a cycle, which alone can spend a 99 % attainment target on a tenant whose SLO is near 2 e (interference_eval
#: --late-share reruns the plans with another)
LATE_SHARE = 0.05
#: the interference quantile of the quantile and probe plans (the issue's 0.9; interference_eval --target-attainment
#: takes both from `stsched.latency.miss_budget.MissBudget`)
QUANTILE = 0.9


def victim_instance(prof, model, victim: str, interference: Interference, late_share: float = LATE_SHARE) -> Instance:
    rows = prof.corun[prof.corun["victim"] == victim]
    device = _device(prof)
    full = float(model.capacity)
    sizes = tuple(sorted({float(p) for p in rows["victim_partition"]} | {full}))
    batches = tuple(sorted(int(b) for b in rows["victim_batch"].unique()))
    if prof.meta.mechanism == "sm":
        mech = replace(sm_mechanism(device, 8, max_partitions=2, max_tenants=3), sizes=sizes)
    else:
        mech = mps_mechanism(sizes, max_partitions=2, max_tenants=3)
    tables = tables_for(model, [victim], batches, sizes)
    ref_b = max(b for b in batches if b <= 8) if min(batches) <= 8 else min(batches)
    at = [e for e in tables[0].entries if e.batch == ref_b]
    lat = max(at, key=lambda e: e.size).latency_ms  # the largest profiled size (V100: 100 % only at batch 1)
    services = tuple(Service(f"{victim}-{i}", victim, round(RATE_SHARE * 1000.0 * ref_b / lat, 3),
                             round(f * lat, 3)) for i, f in enumerate(SLO_FACTORS))
    return Instance(f"{prof.name}-{victim}-heldout", services, device, mech, GPUS, batches, tables,
                    Margin(late_share=late_share), interference)


def _cells(inst: Instance, plan: Plan, table: pd.DataFrame) -> dict[tuple[int, int], tuple[np.ndarray, float, float]]:
    """Per (GPU, partition) beside another busy partition: the victim's measured co-run slowdowns at the tenant's
    (batch, partition) (`table`: rows with victim_batch, victim_partition, slowdown; nearest grid point by
    |log2 batch|, then partition; any co-runner), the slowdown the plan was made with (the partition's least
    slowed tenant) and the partition's planned request rate."""
    pts = table.groupby(["victim_batch", "victim_partition"])["slowdown"].apply(np.asarray)
    keys = list(pts.index)
    cells: dict[tuple[int, int], tuple[np.ndarray, float, float]] = {}
    for gi, gpu in enumerate(plan.gpus):
        busy = [qi for qi, p in enumerate(gpu.partitions) if p.tenants]
        if len(busy) < 2:
            continue
        timings = gpu_timings(inst, gpu)
        for qi in busy:
            part = gpu.partitions[qi]
            j = int(np.argmin([t.slowdown for t in timings[qi]]))
            b, p = part.tenants[j].batch, part.size
            key = min(keys, key=lambda k: (abs(np.log2(k[0]) - np.log2(b)), abs(k[1] - p)))
            cells[(gi, qi)] = (pts[key], timings[qi][j].slowdown, sum(t.rate for t in part.tenants))
    return cells


def measured_factors(inst: Instance, plan: Plan, table: pd.DataFrame, cells: dict | None = None):
    """`batch_factors` drawing each batch's slowdown from the victim's measured co-run slowdowns (`table`: rows
    with victim_batch, victim_partition, slowdown), divided by the slowdown the plan was made with; `cells`: the
    plan's `_cells` of `table` when the caller has them."""
    ratio = _cells(inst, plan, table) if cells is None else cells

    def draw(pt: PartitionTiming, n: int, rng: np.random.Generator):
        if (pt.gpu, pt.partition) not in ratio:
            return None
        values, planned, _ = ratio[(pt.gpu, pt.partition)]
        return rng.choice(values, size=n) / planned

    return draw


def exceed_share(inst: Instance, plan: Plan, table: pd.DataFrame, cells: dict | None = None) -> float:
    """The share of the measured draws above the planned slowdown, weighted by the partitions' planned rates, over
    the partitions the simulation charges (0 when none has a neighbour): how often a batch runs slower than the
    plan assumed -- about 1 - Q where the Q-quantile is calibrated for the cells the plan uses; `cells` as in
    `measured_factors`."""
    cells = _cells(inst, plan, table) if cells is None else cells
    if not cells:
        return 0.0
    shares = [(float(np.mean(v > planned * (1 + 1e-9))), rate) for v, planned, rate in cells.values()]
    total = sum(r for _, r in shares)
    return sum(s * r for s, r in shares) / total if total > 0 else 0.0


def _scaled(inter: Interference, sensitivity: float) -> Interference:
    """A quantile twin whose base coefficients are scaled by the adapted sensitivity."""
    coef = inter.coef[:-1] if inter.form.endswith(QUANTILE_SUFFIX) else inter.coef
    scaled = tuple(c * sensitivity for c in coef)
    return Interference(inter.form, (*scaled, inter.coef[-1]) if inter.form.endswith(QUANTILE_SUFFIX) else scaled)


def _run(inst: Instance, measured: pd.DataFrame) -> dict[str, Any]:
    """Plan (heuristic min-gpus), then simulate it twice on the same arrivals: with the planned slowdowns exactly
    (`queue_only_attainment`: what the Poisson margin alone leaves) and with the victim's measured slowdowns."""
    judged = run_solver("heuristic", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=20))
    plan = judged.result.plan
    if plan is None or not judged.report.valid:
        return {"gpus": None, "slo_attainment": None, "queue_only_attainment": None, "exceed_share": None,
                "worst_service": None, "worst_service_attainment": None, "worst_service_neighbour": None,
                "note": judged.result.message}
    options = SimOptions(duration_s=DURATION_S, seed=SEED)
    cells = _cells(inst, plan, measured)  # read once for both uses below
    sim = simulate(inst, plan, ArrivalSpec(), options, batch_factors=measured_factors(inst, plan, measured, cells))
    queue = simulate(inst, plan, ArrivalSpec(), options)
    used = sum(1 for g in plan.gpus if any(p.tenants for p in g.partitions))
    worst = min(sim.summary.per_service, key=lambda x: x.attainment)
    return {"gpus": used, "slo_attainment": sim.summary.slo_attainment,
            "queue_only_attainment": queue.summary.slo_attainment,
            "exceed_share": exceed_share(inst, plan, measured, cells), "worst_service": worst.name,
            "worst_service_attainment": worst.attainment,
            "worst_service_neighbour": any(_has_neighbour(g, worst.name) for g in plan.gpus), "note": ""}


def _has_neighbour(gpu, service: str) -> bool:
    """Whether `service` is a tenant of one of the GPU's partitions while another partition is busy (so the
    simulation charges it a measured slowdown there)."""
    busy = [p for p in gpu.partitions if p.tenants]
    return len(busy) >= 2 and any(t.service == service for p in busy for t in p.tenants)


def plan_rows(ds: str, probes: tuple[int, ...] = (1, 2, 3, 4), late_share: float = LATE_SHARE,
              quantile: float = QUANTILE) -> list[dict[str, Any]]:
    """One row per held-out victim and plan kind (`none`, `mean`, `q<quantile>`, `probes-k`), every plan with the
    margin's `late_share` and the quantile plans at `quantile` (`stsched.latency.miss_budget` derives both from a
    target attainment)."""
    prof = load_profile(ds)
    corun = prof.corun.assign(victim=prof.corun["victim"].astype(str).str.lower(),
                              corunner=prof.corun["corunner"].astype(str).str.lower())
    rows = []
    for victim in sorted(corun["victim"].unique()):
        train = corun[corun["victim"] != victim].reset_index(drop=True)
        held = corun[corun["victim"] == victim].reset_index(drop=True)
        frames = _Frames(prof.solo, train, prof.meta)
        model = with_predictive(fit(frames), train)
        form = default_form(model)
        if form not in LINEAR_FORMS:
            raise ValueError(f"{form}: the sensitivity is carried by scaling coefficients only for {LINEAR_FORMS}")
        measured = measured_slowdowns(held, prof.solo, model)
        variants: list[tuple[str, Interference]] = [
            ("none", Interference("none")), ("mean", interference_for(model, form)),
            (f"q{quantile:g}", interference_for(model, form, quantile))]
        tdata = corun_data(model, train)
        weights = axis_weights(tdata.rows, tdata.slowdown)
        for k in probes:
            chosen = held[probe_mask(held, plan_probes(victim, held, k, weights=weights))]
            adapted = fit_with_probes(frames, chosen)
            a = adapted.adapted[victim].sensitivity
            key = probed_key(form, k) if probed_key(form, k) in adapted.predictive else form
            inter = interference_for(adapted, form, quantile)
            factor = float(adapted.predictive[key].log_factor(quantile))
            inter = Interference(inter.form, (*inter.coef[:-1], factor))
            variants.append((f"probes-{k}", _scaled(inter, a)))
        for name, inter in variants:
            inst = victim_instance(prof, model, victim, inter, late_share)
            rows.append({"dataset": ds, "victim": victim, "plan": name, "form": inter.form, "late_share": late_share,
                         "quantile": quantile if name not in ("none", "mean") else "", "services": len(inst.services),
                         **_run(inst, measured)})
            log.info("%s %s %s: %s", ds, victim, name, rows[-1])
    return rows
