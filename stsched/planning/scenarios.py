"""Scenarios whose rates come from a plan: any profile (shipped or just measured) and a user's own service list.

`profile_scenario`: services drawn from a profile set (`stsched.scenarios.draw_services`: every model once while
there are enough services, SLO = `slo_factor` x the solo latency at the largest profiled batch <= 8 on the largest
partition); every service gets the same rate, `load` x the heuristic's max-scale alpha on `gpus` GPUs for equal
base rates of 100 req/s, so the instance is loaded to a known share of what the profiled GPUs can serve.
`services_scenario`: the user's own list (model, rate, slo_ms, optional name) on a profile set's tables, with
enough GPUs for every service alone on whole GPUs at its best measured point unless `gpus` is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from stsched import scenarios
from stsched.data.loaders import resolve_profile
from stsched.errors import InputError
from stsched.validate import check_int, check_real
from stsched.problem import Instance, Interference
from stsched.registry import Judged, Objective, SolveOptions, run_solver

BASE_RATE = 100.0  # req/s per service of the max-scale probe (alpha scales it)


@dataclass(frozen=True)
class Calibration:
    """The max-scale probe behind a profile scenario's rate."""

    alpha: float  # the solver's max-scale factor for BASE_RATE per service
    rate: float  # the offered rate of every service: round(load x alpha x BASE_RATE, 1)
    probe: Judged  # the max-scale result (its plan serves alpha x BASE_RATE)


def calibrate(draw: scenarios.ProfileDraw, load: float = 0.6, solver: str = "heuristic",
              time_limit_s: float = 10.0) -> Calibration:
    load = check_real(load, "load", minimum=0.0, strict=True)
    probe = run_solver(solver, draw.instance(BASE_RATE), SolveOptions(objective=Objective.MAX_SCALE,
                                                                      time_limit_s=time_limit_s))
    if probe.plan is None or not probe.valid:
        raise InputError(f"{draw.name}: max-scale on {draw.gpus} GPU(s) found no valid plan ({probe.message})")
    alpha = float(probe.plan.scale)
    rate = round(load * alpha * BASE_RATE, 1)
    if not math.isfinite(rate):
        raise InputError(f"load {load:g}: the rate {load:g} x alpha {alpha:.4g} x {BASE_RATE:g} req/s overflows")
    return Calibration(alpha, rate, probe)


def profile_scenario(dataset: str | Path, services: int | None = None, seed: int = 0, *, slo_factor: float = 5.0,
                     load: float = 0.6, gpus: int = 1, interference: tuple[Interference, object] | None = None,
                     solver: str = "heuristic", time_limit_s: float = 10.0, arrivals: str = "poisson") -> Instance:
    """The instance planned for `arrivals` (poisson by default, as `stsched scenario random`); the rate is
    calibrated under the deterministic rule, so it does not depend on the arrivals chosen."""
    draw = scenarios.draw_services(resolve_profile(dataset), services, seed, slo_factor=slo_factor, gpus=gpus,
                                   interference=interference)
    cal = calibrate(draw, load, solver, time_limit_s)
    return draw.instance(cal.rate, f"profile scenario: SLO = {slo_factor:g} x solo latency at the largest batch "
                                   f"<= 8 on the largest partition; rate = {load:g} x {solver} max-scale alpha "
                                   f"{cal.alpha:.4g} on {gpus} GPU(s) x {BASE_RATE:g} req/s; seed {seed}").with_arrivals(arrivals)


#: the most GPUs `services_scenario` sizes on its own (one service's rate over its best GPU's throughput)
MAX_SIZED_GPUS = 1_000_000


def services_scenario(path: str | Path, dataset: str | Path, gpus: int | None = None,
                      arrivals: str = "poisson") -> Instance:
    picks = scenarios.read_services_csv(path)
    ps = resolve_profile(dataset)
    inst = scenarios.profile_instance(ps, picks, 1, name=f"{Path(path).stem}-{ps.name}",
                                      notes=f"services from {path} on profile {ps.name}")
    if gpus is None:
        from stsched.bounds import gpu_throughput

        need = 0
        for s in inst.services:
            best = gpu_throughput(inst, s.name)
            if best <= 0:
                raise InputError(f"service {s.name!r} ({s.model}): no profiled point meets its SLO of "
                                 f"{s.slo_ms:g} ms", source=str(path))
            alone = s.rate / best
            if alone > MAX_SIZED_GPUS:  # 1e308 req/s sized 10^306 GPUs (and rounding made even those too few)
                raise InputError(f"service {s.name!r} ({s.model}): rate {s.rate:g} req/s needs {alone:.3g} GPUs "
                                 f"(at most {MAX_SIZED_GPUS:,} are sized; give --gpus)", source=str(path))
            need += math.ceil(alone - 1e-9)
        gpus = max(1, need)
    else:
        gpus = check_int(gpus, "gpus", minimum=1)
    return replace(inst, gpus=gpus).with_arrivals(arrivals)
