"""Scenario builders: the published workloads (ParvaGPU, gpulet, iGniter) and a seeded random generator.

Every builder returns an `Instance` whose latency tables come from the shipped profiles (measured points only)
unless a fitted latency model is given (then the table is that model evaluated on the instance's grid).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from stsched.devices import DEVICES, GPULET_SIZES, mig_mechanism, mps_mechanism
from stsched.errors import InputError, has_control
from stsched.problem import (Device, Instance, Interference, LatencyTable, Margin, Mechanism, MechanismKind,
                             ProfileEntry, Service, ThroughputRule)

log = logging.getLogger(__name__)


def _opt(x) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def tables_from_profile(solo: pd.DataFrame, models: Sequence[str], batches: Sequence[int], sizes: Sequence[float],
                        procs: Sequence[int] = (1,)) -> tuple[LatencyTable, ...]:
    """Measured latency tables of `models` restricted to the instance's grid (missing points stay missing)."""
    grid = solo[solo["batch"].isin(list(batches)) & solo["partition"].isin([float(s) for s in sizes])
                & solo["procs"].isin(list(procs))]
    tables = []
    for m in dict.fromkeys(models):
        rows = grid[grid["model"] == m]
        if rows.empty:
            raise InputError(f"model {m!r} has no profile rows on the grid (batches {list(batches)}, "
                             f"sizes {list(sizes)})")
        tables.append(LatencyTable.of(m, (ProfileEntry(int(r.batch), float(r.partition), int(r.procs),
                                                       float(r.latency_ms), _opt(r.throughput_rps), _opt(r.l2_util),
                                                       _opt(r.dram_util))
                                          for r in rows.itertuples(index=False))))
    return tuple(tables)


def _weights_mb(model: str) -> float:
    from stsched.data.loaders import model_weights_mb
    try:
        return float(model_weights_mb(model))
    except InputError:
        log.warning("no weights size known for model %s; memory counted as 0", model)
        return 0.0


def _load(name: str):
    from stsched.data.loaders import load_profile
    return load_profile(name)


# ----------------------------------------------------------------------------------------------- ParvaGPU
PARVAGPU_GPUS = {1: 2, 2: 3, 3: 5, 4: 7, 5: 13, 6: 17}  # its public scheduler, re-run at commit 5f3de1e (PROVENANCE)
PARVAGPU_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def parvagpu(row: int, rates_csv: str | Path | None = None, slos_csv: str | Path | None = None, *,
             max_procs: int = 3, gpus: int = 32, truncate_slo: bool = True) -> Instance:
    """ParvaGPU's scenario in data row `row` (from 1) of its rate/SLO CSV pair, on the A100-80GB MIG profiles.

    ParvaGPU's own rules: latency < 0.9 * SLO / 2 (margin slo_factor 0.9 with the one-cycle rule), up to
    `max_procs` MPS processes of one service per slice credited with the measured per-process throughput, SLOs
    truncated to integers as its loader does.  Memory: every profiled configuration ran, and out-of-memory points
    are absent from the table, so weights are not counted again (memory_mb 0).
    """
    from stsched.data.importers import read_parvagpu_scenarios
    prof = _load("a100-mig")
    default_dir = _dataset_dir("a100-mig") / "raw" / "SLO"
    rates_csv = Path(rates_csv) if rates_csv else default_dir / "SLO_req_rate.csv"
    slos_csv = Path(slos_csv) if slos_csv else default_dir / "SLO_latency.csv"
    scenarios = read_parvagpu_scenarios(rates_csv, slos_csv, truncate_slo=truncate_slo)
    if not 1 <= row <= len(scenarios):
        raise InputError(f"row {row} out of range: the file has rows 1..{len(scenarios)}", source=str(rates_csv))
    scen = scenarios[row - 1]
    services = tuple(Service(m, m, rate, slo) for m, (rate, slo) in scen.items())
    mech = mig_mechanism(max_procs)
    tables = tables_from_profile(prof.solo, [s.model for s in services], PARVAGPU_BATCHES, mech.sizes,
                                 range(1, max_procs + 1))
    return Instance(f"parvagpu-row{row}", services, DEVICES["a100-80gb"], mech, gpus, PARVAGPU_BATCHES, tables,
                    Margin(slo_factor=0.9), Interference("none"), ThroughputRule.MEASURED,
                    notes=f"ParvaGPU scenario row {row} of {rates_csv.name}/{slos_csv.name}; max_procs {max_procs}")


def _dataset_dir(name: str) -> Path:
    from stsched.data.loaders import DATA_DIR
    return Path(DATA_DIR) / "profiles" / name


# ----------------------------------------------------------------------------------------------- gpulet mixes
@dataclass(frozen=True)
class MixService:
    name: str
    model: str  # a model of the A100 MPS data set
    slo_ms: float
    weight: float = 1.0  # rate = weight * level


# gpulet's mixes rebuilt from the A100 MPS data set's ten models (PROVENANCE of gpulet: keep gpulet's SLO per model
# family).  Substitutions: googlenet -> inception (v3), bert -> resnet101 (no language model in the data set),
# mnasnet1_0 / mobilenet_v2 / ssd-mobilenetv1 / lenet -> mobilenet, densenet161 -> densenet201.
GPULET_MIXES: dict[str, tuple[MixService, ...]] = {
    "m1": (MixService("densenet121", "densenet121", 202.0), MixService("vgg16", "vgg16", 142.0)),
    "m2": (MixService("resnet50", "resnet50", 108.0), MixService("vgg16", "vgg16", 142.0),
           MixService("mobilenet", "mobilenet", 64.0)),
    "game": tuple(MixService(f"lenet{i}~mobilenet", "mobilenet", 108.0) for i in range(1, 7))
            + (MixService("resnet50", "resnet50", 108.0),),
    "traffic": (MixService("ssd~mobilenet", "mobilenet", 90.0), MixService("googlenet~inception", "inception", 112.0),
                MixService("vgg16", "vgg16", 112.0)),
    "scen1": (MixService("googlenet~inception", "inception", 66.0, 2.0), MixService("bert~resnet101", "resnet101", 22.0, 2.0),
              MixService("mnasnet~mobilenet", "mobilenet", 62.0), MixService("mobilenet_v2~mobilenet", "mobilenet", 64.0)),
    "scen2": (MixService("densenet161~densenet201", "densenet201", 202.0), MixService("vgg16", "vgg16", 142.0)),
    "scen3": (MixService("resnet50", "resnet50", 108.0), MixService("vgg16", "vgg16", 142.0),
              MixService("mobilenet_v2~mobilenet", "mobilenet", 64.0)),
    "scen4": (MixService("ssd~mobilenet", "mobilenet", 202.0), MixService("mnasnet~mobilenet", "mobilenet", 62.0),
              MixService("densenet161~densenet201", "densenet201", 202.0)),
    "scen5": (MixService("lenet1~mobilenet", "mobilenet", 5.0), MixService("ssd~mobilenet", "mobilenet", 202.0),
              MixService("vgg16", "vgg16", 142.0), MixService("mnasnet~mobilenet", "mobilenet", 62.0)),
}
GPULET_BATCHES = (1, 2, 4, 8, 16, 32)  # gpulet's max_batch is 32


def gpulet_mix(mix: str, gpus: int, rate: float | None = None, *, latency_factor: float = 1.0,
               interference: Interference | None = None, max_partitions: int = 2, max_tenants: int = 3,
               sizes: Sequence[float] = GPULET_SIZES, batches: Sequence[int] = GPULET_BATCHES,
               latency_model=None) -> Instance:
    """gpulet's application/scenario mix `mix` on the A100 MPS data, each service at weight * `rate` req/s.

    The default rate (10 req/s, scen1 50) makes alpha of max-scale equal gpulet's step i.  gpulet's own rules:
    at most `max_partitions` gpu-lets per GPU from `sizes`, at most `max_tenants` tenants each, latencies times
    `latency_factor` (gpulet: 1.1; its reference runs on this data used 1.0), 1230 MB context per process and 90 %
    of memory usable.
    """
    if mix not in GPULET_MIXES:
        raise InputError(f"unknown gpulet mix {mix!r} (known: {', '.join(GPULET_MIXES)})")
    level = rate if rate is not None else (50.0 if mix == "scen1" else 10.0)
    prof = _load("a100-mps")
    mech = mps_mechanism(tuple(sizes), max_partitions, max_tenants)
    services = tuple(Service(ms.name, ms.model, ms.weight * level, ms.slo_ms, _weights_mb(ms.model))
                     for ms in GPULET_MIXES[mix])
    models = [s.model for s in services]
    tables = (latency_model_tables(latency_model, models, batches, mech.sizes) if latency_model is not None
              else tables_from_profile(prof.solo, models, batches, mech.sizes))
    base = DEVICES[prof.meta.device] if prof.meta.device in DEVICES else DEVICES["a100-40gb"]
    device = Device(base.name, base.memory_mb, base.sms, 1230.0, 0.9)
    return Instance(f"gpulet-{mix}-{gpus}gpu", services, device, mech, gpus, tuple(batches), tables,
                    Margin(latency_factor=latency_factor), interference or Interference("none"),
                    notes=f"gpulet mix {mix} on the A100 MPS data (0909wlgur); level {level} req/s")


def latency_model_tables(latency_model, models, batches, sizes, procs=(1,)) -> tuple[LatencyTable, ...]:
    """Tables evaluated from a fitted latency model (stsched.latency) on the grid."""
    from stsched.latency import tables_for
    return tables_for(latency_model, list(models), list(batches), list(sizes), list(procs))


# ----------------------------------------------------------------------------------------------- iGniter
def mps_steps(step: float) -> tuple[float, ...]:
    """MPS sizes step, 2*step, ..., 100 (iGniter: 2.5 % steps, its `unit`)."""
    if not 0 < step <= 100:
        raise InputError(f"MPS step must lie in (0, 100], got {step}")
    n = int(round(100.0 / step))
    return tuple(round(step * i, 6) for i in range(1, n + 1) if step * i <= 100 + 1e-9)


IGNITER_EXAMPLE = (("alexnet", 500.0, 15.0), ("resnet50", 400.0, 40.0), ("vgg19", 200.0, 60.0))


def igniter_example(sizes: Sequence[float] | None = None, gpus: int = 1, latency_model=None,
                    batches: Sequence[int] = tuple(range(1, 33))) -> Instance:
    """iGniter's README workload on a V100: AlexNet, ResNet-50, VGG-19 at 500/400/200 req/s, SLOs 15/40/60 ms.

    With no latency model the partition sizes are the profiled MPS percentages; iGniter itself uses 2.5 % steps
    (pass `sizes` and a fitted `latency_model` to get them).
    """
    prof = _load("v100-mps")
    if sizes is None:
        sizes = sorted(set(prof.solo["partition"].astype(float)))
    mech = mps_mechanism(tuple(float(s) for s in sizes))
    services = tuple(Service(m, m, r, slo, _weights_mb(m)) for m, r, slo in IGNITER_EXAMPLE)
    models = [s.model for s in services]
    tables = (latency_model_tables(latency_model, models, batches, mech.sizes) if latency_model is not None
              else tables_from_profile(prof.solo, models, batches, mech.sizes))
    return Instance("igniter-example", services, DEVICES["v100-16gb"], mech, gpus, tuple(batches), tables,
                    notes="iGniter README example (V100)")


# ----------------------------------------------------------------------------------------------- random
RANDOM_DATASETS = {"a100-mps": "mps", "v100-mps": "mps", "a100-mig": "mig"}


def random_instance(services: int, gpus: int, seed: int, device: str = "a100-mps", *, load: float = 0.6,
                    slo_range: tuple[float, float] = (4.0, 12.0), arrivals: str = "poisson") -> Instance:
    """`services` services drawn from `device`'s profiled models, seeded, planned for `arrivals`: poisson (the
    default: the Poisson margin `late_share` `POISSON_LATE_SHARE`, docs/RULES.md) or deterministic (the papers' rule, which a
    plan at full load does not survive under random arrivals: docs/SIMULATOR.md).

    SLO: a factor drawn from `slo_range` times the model's batch-1 latency on the whole GPU (at least the
    smallest latency the table can reach, so every service is servable).  Rates: random shares of `load` times
    the instance's capacity, each share scaled by the service's best single-GPU throughput.
    """
    if device not in RANDOM_DATASETS:
        raise InputError(f"unknown device {device!r} for random scenarios (known: {', '.join(RANDOM_DATASETS)})")
    from stsched.validate import MAX_SERVICES, check_int, check_real

    check_int(services, "services", minimum=1, maximum=MAX_SERVICES)
    check_int(gpus, "gpus", minimum=1)
    check_int(seed, "seed", minimum=0)
    check_real(load, "load", minimum=0.0, strict=True)
    rng = np.random.default_rng(seed)
    prof = _load(device)
    solo = prof.solo
    if RANDOM_DATASETS[device] == "mig":
        mech: Mechanism = mig_mechanism(3)
        batches: tuple[int, ...] = PARVAGPU_BATCHES
        procs: tuple[int, ...] = (1, 2, 3)
        dev, rule, margin = DEVICES["a100-80gb"], ThroughputRule.MEASURED, Margin(slo_factor=0.9)
    else:
        sizes = tuple(sorted(set(solo["partition"].astype(float))))
        counts = solo.groupby("partition")["model"].nunique()
        sizes = tuple(s for s in sizes if counts.get(s, 0) == counts.max())  # sizes profiled for every model
        mech = mps_mechanism(sizes)
        batches = tuple(sorted(int(b) for b in set(solo["batch"]) if b <= 32))
        procs = (1,)
        dev = DEVICES["a100-40gb" if device == "a100-mps" else "v100-16gb"]
        rule, margin = ThroughputRule.CYCLE, Margin()
    models = sorted(set(solo["model"]))
    picks = [str(m) for m in rng.choice(models, size=services, replace=True)]
    full = mech.capacity
    out = []
    tables = tables_from_profile(solo, sorted(set(picks)), batches, mech.sizes, procs)
    by_model = {t.model: t for t in tables}
    shares = rng.dirichlet(np.ones(services))
    for i, m in enumerate(picks):
        entries = by_model[m].entries
        base = [e.latency_ms for e in entries if e.size == full and e.batch == 1 and e.procs == 1]
        lat1 = base[0] if base else min(e.latency_ms for e in entries)
        slo = max(float(rng.uniform(*slo_range)) * lat1, 2.2 * min(e.latency_ms for e in entries))
        best_gpu = max(1000.0 * e.batch / e.latency_ms * (full / e.size) for e in entries
                       if 2 * e.latency_ms <= slo * margin.slo_factor)
        with np.errstate(over="ignore"):
            rate = float(shares[i] * load * gpus * best_gpu)
        if not math.isfinite(rate):
            raise InputError(f"load {load:g} on {gpus} GPUs: service {m}-{i}'s rate overflows ({rate})")
        out.append(Service(f"{m}-{i}", m, round(max(rate, 1.0), 3), round(slo, 3), _weights_mb(m)))
    inst = Instance(f"random-{device}-{services}s-{gpus}g-seed{seed}", tuple(out), dev, mech, gpus, batches, tables,
                    margin, Interference("none"), rule, notes=f"random scenario, seed {seed}, load {load}, "
                                                              f"planned for {arrivals} arrivals")
    return inst.with_arrivals(arrivals)


# ----------------------------------------------------------------------------------------------- published plans
def parvagpu_published_plan(instance: Instance, deploy_csv: str | Path | None = None, row: int | None = None):
    """ParvaGPU's committed deployment map as a `Plan` on `instance` (a `parvagpu(...)` instance).

    The map gives per GPU its MIG slices, each with a model, batch and process count, but no rate shares: every
    service's rate is split over its segments in proportion to their measured capacity (procs x per-process
    throughput), which is the most favourable split.  The map's `Placement` column is ParvaGPU's internal slot
    index, not an NVIDIA start slot, so starts are left to the checker.
    """
    from stsched.data.importers import PARVAGPU_SHIPPED_SCENARIOS, read_parvagpu_deployment
    from stsched.plan import GpuLayout, Partition, Plan, Tenant

    if deploy_csv is None:
        if row is None or not 1 <= row <= len(PARVAGPU_SHIPPED_SCENARIOS):
            raise InputError(f"row must be 1..{len(PARVAGPU_SHIPPED_SCENARIOS)} for the shipped deployment maps")
        k = PARVAGPU_SHIPPED_SCENARIOS[row - 1]
        deploy_csv = _dataset_dir("a100-mig") / "raw" / "deployment" / f"SLO{k}" / f"SLO{k}_ParvaGPU_deploy.csv"
    df = read_parvagpu_deployment(deploy_csv)
    caps = []
    for r in df.itertuples(index=False):
        if not instance.has_service(r.model):
            raise InputError(f"deployment uses model {r.model!r}, which is not a service of {instance.name}",
                             source=str(deploy_csv))
        e = instance.entry(r.model, int(r.batch), float(r.instance_size), int(r.procs))
        caps.append(0.0 if e is None or e.throughput_rps is None else r.procs * e.throughput_rps)
    df = df.assign(capacity=caps)
    total = df.groupby("model")["capacity"].sum()
    gpus = []
    for _, g in df.groupby("gpu", sort=True):
        parts = []
        for r in g.itertuples(index=False):
            svc = instance.service(r.model)
            share = svc.rate * r.capacity / total[r.model] if total[r.model] > 0 else 0.0
            parts.append(Partition(float(r.instance_size), (Tenant(r.model, int(r.batch), share),),
                                   procs=int(r.procs)))
        gpus.append(GpuLayout(tuple(parts)))
    return Plan(tuple(gpus), solver="parvagpu-published", notes=f"from {Path(deploy_csv).name}")


# ----------------------------------------------------------------------------------------------- any profile
PROFILE_BATCHES = (1, 2, 4, 8, 16, 32)


def profile_mechanism(ps) -> tuple[Device, Mechanism, tuple[int, ...]]:
    """The device, partition mechanism and process counts an instance built from profile set `ps` uses: the
    profile's own partition sizes (those measured for every model), its device and memory.  Green contexts: at
    most 3 partitions of 3 tenants (the executor's build); CPU profiles (partition = cores) are planned like SM
    counts, which is how the executor maps them."""
    meta, solo = ps.meta, ps.solo
    counts = solo.groupby("partition")["model"].nunique()
    sizes = tuple(sorted(float(s) for s, n in counts.items() if n == counts.max()))
    if meta.mechanism == "mig":
        return DEVICES["a100-80gb"], mig_mechanism(int(solo["procs"].max())), tuple(sorted(set(solo["procs"])))
    if meta.mechanism == "mps":
        return Device(meta.device, meta.memory_mb or 40960.0, meta.sm_count or 108), mps_mechanism(sizes), (1,)
    if meta.mechanism in ("sm", "cpu"):
        capacity = float(meta.partition_capacity)
        device = Device(meta.device, meta.memory_mb or 4096.0, int(meta.sm_count or capacity))
        return device, Mechanism(MechanismKind.SM, capacity, sizes, 3, 3), (1,)
    raise InputError(f"profile {ps.name!r}: mechanism {meta.mechanism!r} cannot be planned (mps, sm, mig, cpu)")


def _profile_entry(r, model, inter: Interference | None) -> ProfileEntry:
    """A measured solo point; with a counter-free interference form, its SM elasticity from the fitted surface
    (what the form reads); L2/DRAM utilisation stays as measured."""
    base = ProfileEntry(int(r.batch), float(r.partition), int(r.procs), float(r.latency_ms), _opt(r.throughput_rps),
                        _opt(r.l2_util), _opt(r.dram_util))
    if inter is None or inter.form == "none" or model is None:
        return base
    from stsched.latency.model import predict_values

    el = float(predict_values(model, "elasticity", [r.model], [r.batch], [r.partition])[0][0])
    return ProfileEntry(base.batch, base.size, base.procs, base.latency_ms, base.throughput_rps, base.l2_util,
                        base.dram_util, min(1.0, max(0.0, el)) if el == el else None)


def solo_slo_ms(solo: pd.DataFrame, model: str, factor: float) -> float:
    """`factor` x the model's solo latency at its largest profiled batch <= 8 on the largest partition."""
    rows = solo[(solo["model"] == model) & (solo["procs"] == 1)]
    top = rows[rows["partition"] == rows["partition"].max()]
    small = top[top["batch"] <= 8]
    if small.empty:
        raise InputError(f"model {model!r}: no solo latency at a batch <= 8 on its largest partition")
    return round(factor * float(small.loc[small["batch"].idxmax(), "latency_ms"]), 2)


def profile_instance(ps, picks: Sequence[tuple[str, str, float, float]], gpus: int = 1, *,
                     interference: tuple[Interference, object] | None = None, latency_margin: float = 1.0,
                     name: str | None = None, notes: str = "") -> Instance:
    """An instance on profile set `ps` for the services `picks` = (name, model, rate, slo_ms); `interference` =
    (form, fitted latency model) makes it carry that form (its SM elasticity from the model); `latency_margin`
    multiplies every execution time (`Margin.latency_factor`)."""
    device, mech, procs = profile_mechanism(ps)
    inter, model = interference if interference is not None else (None, None)
    if inter is not None and inter.form != "none":
        from stsched.interference import get_form
        if get_form(inter.form).reads_util and ps.solo["l2_util"].isna().all():
            raise InputError(f"{ps.name}: interference form {inter.form!r} reads L2/DRAM utilisation, which this "
                             "profile does not have")
    batches = tuple(b for b in PROFILE_BATCHES if b in set(ps.solo["batch"]))
    models = sorted({m for _, m, _, _ in picks})
    unknown = sorted(set(models) - set(ps.solo["model"]))
    if unknown:
        raise InputError(f"model(s) {', '.join(unknown)} have no solo profile in {ps.name} "
                         f"(profiled: {', '.join(ps.models)})")
    grid = ps.solo[ps.solo["batch"].isin(batches) & ps.solo["partition"].isin(mech.sizes)
                   & ps.solo["procs"].isin(procs)]
    tables = tuple(LatencyTable.of(m, (_profile_entry(r, model, inter)
                                       for r in grid[grid["model"] == m].itertuples(index=False)),
                                   source=str(ps.path / "solo.csv"))
                   for m in models)
    services = tuple(Service(n, m, rate, slo, _weights_mb(m) if m in _known_models() else 0.0)
                     for n, m, rate, slo in picks)
    return Instance(name or f"{ps.name}-{len(services)}s", services, device, mech, gpus, batches, tables,
                    Margin(latency_margin), interference=inter or Interference(), notes=notes)


@dataclass(frozen=True)
class ProfileDraw:
    """Services drawn from a profile set, everything but their (common) rate: `instance(rate)` builds it."""

    profile: object  # stsched.data.loaders.ProfileSet
    names: tuple[str, ...]
    models: tuple[str, ...]
    slos_ms: tuple[float, ...]
    gpus: int = 1
    interference: tuple[Interference, object] | None = None
    latency_margin: float = 1.0
    name: str = ""
    notes: str = ""

    def instance(self, rate: float, notes: str | None = None) -> Instance:
        picks = [(n, m, rate, s) for n, m, s in zip(self.names, self.models, self.slos_ms)]
        return profile_instance(self.profile, picks, self.gpus, interference=self.interference,
                                latency_margin=self.latency_margin, name=self.name or None,
                                notes=self.notes if notes is None else notes)


def draw_services(ps, services: int | None = None, seed: int = 0, *, slo_factor: float = 5.0, gpus: int = 1,
                  interference: tuple[Interference, object] | None = None, latency_margin: float = 1.0,
                  name: str | None = None, notes: str = "") -> ProfileDraw:
    """`services` services on profile set `ps` (default one per model): every model once while there are enough
    services, the rest drawn with `seed`; SLO = `slo_factor` x the model's solo latency at its largest profiled
    batch <= 8 on the largest partition."""
    from stsched.validate import check_int, check_real

    slo_factor = check_real(slo_factor, "slo_factor", minimum=0.0, strict=True)
    gpus = check_int(gpus, "gpus", minimum=1)
    models = profile_picks(ps, len(ps.models) if services is None else services, seed)
    return ProfileDraw(ps, tuple(service_names(models)), tuple(models),
                       tuple(solo_slo_ms(ps.solo, m, slo_factor) for m in models), gpus, interference,
                       latency_margin, name or f"{ps.name}-{len(models)}s-{gpus}g-seed{seed}", notes)


def _known_models() -> set[str]:
    from stsched.data.loaders import load_models
    return set(load_models().index)


def profile_picks(ps, services: int, seed: int) -> list[str]:
    """The models of `services` services drawn from a profile: every model once (sorted) while there are enough
    services, the rest drawn with `seed`."""
    from stsched.validate import MAX_SERVICES, check_int

    services = check_int(services, "services", minimum=1, maximum=MAX_SERVICES)
    models = ps.models
    rng = np.random.default_rng(seed)
    if services <= len(models):
        return sorted(str(m) for m in rng.choice(models, size=services, replace=False))
    return list(models) + sorted(str(m) for m in rng.choice(models, size=services - len(models), replace=True))


def service_names(models: Sequence[str]) -> list[str]:
    """A model served once is named by the model; repeated ones get a counter (resnet50-1, resnet50-2)."""
    seen: dict[str, int] = {}
    total = {m: list(models).count(m) for m in models}
    out = []
    for m in models:
        seen[m] = seen.get(m, 0) + 1
        out.append(m if total[m] == 1 else f"{m}-{seen[m]}")
    return out


def read_services_csv(path: str | Path) -> list[tuple[str, str, float, float]]:
    """A user's service list: columns model, rate (req/s), slo_ms and optionally name; one line per error (a
    ragged row, an empty or binary file, a name with control characters included)."""
    import math

    from stsched.data.importers import read_headed

    try:
        df = read_headed(path, ())
    except InputError as e:
        if str(e).endswith("no data rows"):
            raise InputError("no services", source=str(path)) from None
        raise
    missing = [c for c in ("model", "rate", "slo_ms") if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)} (columns: model, rate, slo_ms, optional name)",
                         source=str(path))
    extra = sorted(set(df.columns) - {"model", "rate", "slo_ms", "name"})
    if extra:
        raise InputError(f"unknown column(s) {', '.join(extra)} (columns: model, rate, slo_ms, optional name)",
                         source=str(path))
    names = list(df["name"]) if "name" in df.columns else service_names(list(df["model"]))
    out = []
    for i, (row, name) in enumerate(zip(df.itertuples(index=False), names), start=1):
        for col in ("rate", "slo_ms"):
            try:
                v = float(getattr(row, col))
            except ValueError:
                v = math.nan
            if not (math.isfinite(v) and v > 0):
                raise InputError(f"data row {i}: {col} must be a number > 0, got {getattr(row, col)!r}",
                                 source=str(path))
        if not row.model or not name:
            raise InputError(f"data row {i}: empty model or name", source=str(path))
        for col, text in (("model", row.model), ("name", name)):
            if has_control(text):  # as instances (stsched.io)
                raise InputError(f"data row {i}: {col} {text!r} holds control characters", source=str(path))
        out.append((str(name), str(row.model), float(row.rate), float(row.slo_ms)))
    dup = sorted({n for n, *_ in out if sum(1 for m, *_ in out if m == n) > 1})
    if dup:
        raise InputError(f"service name(s) repeated: {', '.join(dup)}", source=str(path))
    return out
