"""iGniter's analytical latency model (Xu et al., "iGniter: Interference-Aware GPU Resource Provisioning for
Predictable DNN Inference in the Cloud", IEEE TPDS 2023), rebuilt from the paper and the fitted profile its
provisioning algorithm reads (`i-Gniter/Algorithm/config`, JSON lines, shipped under
data/profiles/v100-mps/raw/; PROVENANCE there).

The model, per workload i co-located with the workloads of one V100 under MPS:
- active GPU time  t_act(b, r) = (k1 b^2 + k2 b + k3) / (r + k4) + k5, fitted per model on 3 batches x 3 MPS
  shares (frequency-normalised, minus the solo scheduling idle time);
- L2 contention     t_act * (1 + k_l2 * sum of the other workloads' L2 use), with each workload's L2 use and power
  linear in its solo throughput 1000 b / t_act (fitted per model) and k_l2 from one co-located run;
- scheduling idle   idle_i = kernels_i * (alpha_sch * n + beta_sch) + idle_i^solo for n >= 2 workloads;
- power capping     the GPU frequency drops linearly once the summed power exceeds the board limit;
- PCIe transfer     (input + output bytes) * b / bandwidth added to the latency.
`IgniterModel.predict` evaluates it; `IgniterModel.lower_share` is the closed-form smallest MPS share that meets a
latency target alone (iGniter's r_lower).

Curve fits use scipy's least squares exactly as the published algorithm does (`curve_fit` defaults); the linear fits
are solved in closed form (the same least-squares solutions).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from stsched.devices import mps_mechanism
from stsched.errors import InputError
from stsched.problem import Instance, LatencyTable, ProfileEntry

GRID_BATCHES = (1, 16, 32)  # the profiled grid of `gpulatency`, `power`, `frequency`
GRID_SHARES = (10.0, 50.0, 100.0)


def default_config_path() -> Path:
    from stsched.data.loaders import DATA_DIR
    return Path(DATA_DIR) / "profiles" / "v100-mps" / "raw" / "i-Gniter" / "Algorithm" / "config"


def load_config(path: str | Path | None = None) -> dict[str, dict]:
    """The JSON-lines profile, keys merged per top-level name."""
    path = Path(path) if path is not None else default_config_path()
    if not path.exists():
        raise InputError(f"iGniter's fitted profile is missing: {path} (copy raw/i-Gniter/Algorithm/config from "
                         f"/work/shared/data/profiles/igniter-v100-mps/)")
    out: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            for key, value in json.loads(line).items():
                out.setdefault(key, {}).update(value)
    return out


def _linear_fit(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(slope), float(intercept)


def _active_time(x, k1, k2, k3, k4, k5):
    b, r = x
    return (k1 * b ** 2 + k2 * b + k3) / (r + k4) + k5


@dataclass(frozen=True)
class Hardware:
    max_frequency: float
    max_power: float
    idle_power: float
    unit: float  # MPS share granularity (%)
    bandwidth: float  # bytes per ms (PCIe)
    throttle_slope: float  # MHz per W above max_power
    idle_alpha: float  # scheduling idle growth per co-located workload (ms per kernel)
    idle_beta: float


@dataclass(frozen=True)
class ModelParams:
    name: str
    kernels: int
    base_idle: float  # ms
    input_bytes: float
    output_bytes: float
    act: tuple[float, float, float, float, float]
    power: tuple[float, float]  # W above idle = slope * throughput + intercept
    l2: tuple[float, float]  # L2 use (%) = slope * throughput + intercept
    k_l2: float


def _hardware(hw: dict) -> Hardware:
    fmax, pmax = float(hw["maxGPUfrequency"]), float(hw["maxGPUpower"])
    power, freq = [float(p) for p in hw["power"]], [float(f) for f in hw["frequency"]]
    # Power measured with n = 1..5 workloads saturates at the cap; extend it linearly with the mean step seen
    # below the cap, then fit frequency = fmax + slope * (power - pmax) on the throttled points.
    first = next(i for i, f in enumerate(freq) if f < fmax)
    step = sum(power[i] - power[i - 1] for i in range(1, first)) / max(first - 1, 1)
    for j in range(first, len(power)):
        power[j] = power[j - 1] + step
    dx = np.asarray(power[first:]) - pmax
    dy = np.asarray(freq[first:]) - fmax
    throttle = float((dx * dy).sum() / (dx * dx).sum())
    # Scheduling idle time (normalised to fmax) grows linearly with the number of co-located workloads.
    idle = [t * f / fmax for t, f in zip(hw["idletime"], freq)]
    alpha, beta = _linear_fit([2, 3, 4, 5], [idle[i] - idle[0] for i in range(1, len(idle))])
    return Hardware(fmax, pmax, float(hw["idlepower"]), float(hw["unit"]), float(hw["bandwidth"]), throttle,
                    alpha, beta)


def _model(name: str, p: dict, hw: Hardware) -> ModelParams:
    from scipy.optimize import curve_fit

    base = float(p["idletime_1"])
    lat, freq, power = p["gpulatency"], p["frequency"], p["power"]
    xs, ys = [[], []], []
    for i, b in enumerate(GRID_BATCHES):
        for j, r in enumerate(GRID_SHARES):
            t = float(lat[i][j])
            if freq[i][j] < hw.max_frequency:
                t *= freq[i][j] / hw.max_frequency
            xs[0].append(b)
            xs[1].append(r)
            ys.append(t - base)
    act, _ = curve_fit(_active_time, np.asarray(xs, float), np.asarray(ys, float), maxfev=100000)
    ability, ability_p, watts = [], [], []
    for i, b in enumerate(GRID_BATCHES):
        for j in range(len(GRID_SHARES)):
            thr = 1000.0 * b / (float(lat[i][j]) - base)
            ability.append(thr)
            if freq[i][j] > hw.max_frequency - 1:
                ability_p.append(thr)
                watts.append(float(power[i][j]) - hw.idle_power)
    k_l2 = ((float(p["activetime_2"]) * float(p["frequency_2"]) / hw.max_frequency) / float(p["activetime_1"])
            - 1.0) / float(p["l2cache"])
    return ModelParams(name, int(p["kernel"]), base, float(p["inputdata"]), float(p["outputdata"]),
                       tuple(float(a) for a in act), _linear_fit(ability_p, watts),
                       _linear_fit([ability[0], ability[4], ability[8]], p["l2caches"]), k_l2)


@dataclass(frozen=True)
class IgniterModel:
    hardware: Hardware
    models: dict[str, ModelParams]

    @classmethod
    def from_config(cls, path: str | Path | None = None) -> "IgniterModel":
        cfg = load_config(path)
        hw = _hardware(cfg["hardware"])
        models = {k: _model(k, v, hw) for k, v in cfg.items() if k != "hardware" and "gpulatency" in v}
        return cls(hw, models)

    def has(self, model: str) -> bool:
        return model in self.models

    def active_ms(self, model: str, batch: float, share: float) -> float:
        return _active_time((batch, share), *self.models[model].act)

    def predict(self, models: Sequence[str], batches: Sequence[int], shares: Sequence[float]) -> list[float]:
        """Latency (ms, GPU time plus PCIe transfer) of each co-located workload (iGniter's prediction)."""
        hw = self.hardware
        n = len(models)
        extra_idle = hw.idle_alpha * n + hw.idle_beta if n >= 2 else 0.0
        acts, l2s, watts = [], [], hw.idle_power
        for m, b, r in zip(models, batches, shares):
            p = self.models[m]
            t = self.active_ms(m, b, r)
            thr = 1000.0 * b / t
            acts.append(t)
            watts += p.power[0] * thr + p.power[1]
            l2s.append(p.l2[0] * thr + p.l2[1])
        freq = hw.max_frequency if watts <= hw.max_power else hw.throttle_slope * (watts - hw.max_power) + hw.max_frequency
        total_l2 = sum(l2s)
        out = []
        for i, (m, b) in enumerate(zip(models, batches)):
            p = self.models[m]
            idle = p.kernels * extra_idle + p.base_idle
            active = acts[i] * (1.0 + p.k_l2 * (total_l2 - l2s[i]))
            gpu = (idle + active) / (freq / hw.max_frequency)
            out.append(gpu + (p.input_bytes + p.output_bytes) * b / hw.bandwidth)
        return out

    def batch_for(self, model: str, rate: float, target_ms: float) -> int:
        """iGniter's batch: the requests that arrive while one batch may wait (target) net of the input transfer."""
        p, bw = self.models[model], self.hardware.bandwidth
        a = rate / 1000.0
        return max(1, math.ceil(target_ms * a * bw / (bw + p.input_bytes * a)))

    def lower_share(self, model: str, batch: int, target_ms: float) -> float | None:
        """iGniter's r_lower: the smallest share (a multiple of the unit) whose solo latency meets `target_ms`."""
        p, hw = self.models[model], self.hardware
        k1, k2, k3, k4, k5 = p.act
        gamma = k1 * batch ** 2 + k2 * batch + k3
        delta = target_ms - p.base_idle - batch * (p.input_bytes + p.output_bytes) / hw.bandwidth - k5
        if delta <= 0:
            return None
        return math.ceil((gamma / delta - k4) / hw.unit) * hw.unit


    def l2_fraction(self, model: str, batch: int, share: float) -> float:
        """Predicted solo L2 use (fraction of peak) of one workload: linear in its solo throughput."""
        p = self.models[model]
        return max(0.0, (p.l2[0] * 1000.0 * batch / self.active_ms(model, batch, share) + p.l2[1]) / 100.0)

    def form_coefficients(self, models: Sequence[str]) -> tuple[float, float]:
        """Coefficients of the registered `igniter` interference form from this profile: k_l2 per unit of L2
        fraction (the mean over `models` of iGniter's per-model k_l2, whose L2 is in %) and k_sch = the scheduling
        idle time two co-located workloads add (mean kernel count x (2 alpha_sch + beta_sch), ms)."""
        ps = [self.models[m] for m in dict.fromkeys(models)]
        k_l2 = 100.0 * sum(p.k_l2 for p in ps) / len(ps)
        hw = self.hardware
        k_sch = max(0.0, sum(p.kernels for p in ps) / len(ps) * (2 * hw.idle_alpha + hw.idle_beta))
        return k_l2, k_sch


def analytic_instance(base: Instance, model: IgniterModel | None = None, batches: Sequence[int] = tuple(range(1, 33)),
                      step: float | None = None, interference: bool = False) -> Instance:
    """`base` (a V100 MPS instance, e.g. `stsched.scenarios.igniter_example()`) with iGniter's share grid
    (multiples of its 2.5 % unit) and latency tables evaluated from iGniter's analytical model *solo* (one workload
    on the GPU: base idle time, no L2 contention, its own power).  With `interference`, the entries also carry
    iGniter's predicted L2 use and the instance uses the registered `igniter` form with coefficients from the same
    profile (`IgniterModel.form_coefficients`); that form takes the worst neighbour with global constants, while
    iGniter sums the L2 of all neighbours with per-model constants and adds power capping, so the checker's
    co-location latency is an approximation of iGniter's own (docs/BASELINES.md)."""
    from stsched.problem import Interference

    model = model or IgniterModel.from_config()
    unit = step or model.hardware.unit
    sizes = tuple(round(unit * k, 6) for k in range(1, int(round(100.0 / unit)) + 1))
    names = list(dict.fromkeys(s.model for s in base.services))
    tables = []
    for m in names:
        if not model.has(m):
            raise InputError(f"iGniter's profile has no model {m!r} (it has {', '.join(sorted(model.models))})")
        entries = []
        for r in sizes:
            for b in batches:
                lat = model.predict([m], [b], [r])[0]
                if math.isfinite(lat) and lat > 0:
                    l2 = model.l2_fraction(m, b, r) if interference else None
                    entries.append(ProfileEntry(int(b), float(r), 1, float(lat), None, l2, 0.0 if interference else None))
        tables.append(LatencyTable(m, tuple(entries)))
    mech = mps_mechanism(sizes, base.mechanism.max_partitions, base.mechanism.max_tenants)
    form = Interference("igniter", model.form_coefficients(names)) if interference else base.interference
    note = "latency tables: iGniter's analytical model, solo" + ("; igniter interference form" if interference else "")
    return replace(base, name=base.name + "-igniter-analytic", mechanism=mech, batches=tuple(batches),
                   tables=tuple(tables), interference=form,
                   notes=(base.notes + "; " if base.notes else "") + note)
