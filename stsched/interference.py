"""Interference forms: the slowdown I_s(q) >= 1 of a tenant caused by the other partitions of its GPU.

A form is a small pure function of per-entry features that can be profiled once per model (solo latency, solo L2
and DRAM utilisation, partition fraction, batch).  Forms are registered by name; an `Instance` names its form and
carries the fitted coefficients, so the checker, the solvers and the simulator evaluate the same slowdown without
scikit-learn.  `stsched.latency` fits the coefficients.

Worst case over time sharing: the other partitions of a GPU cycle through their tenants, so the checker applies,
for every other partition, the tenant whose features hurt the victim most (see `aggregate_slowdown`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from stsched.errors import InputError


@dataclass(frozen=True)
class Features:
    """What a form may read about one running tenant."""

    l2_util: float  # solo L2 throughput, fraction of peak
    dram_util: float  # solo DRAM throughput, fraction of peak
    fraction: float  # share of the GPU's compute held by its partition
    latency_ms: float  # solo latency of its batch in its partition
    batch: int
    elasticity: float = 1.0  # SM elasticity -d ln L / d ln size at its point (1: scales with SMs, 0: launch-bound)


PairFn = Callable[[Sequence[float], Features, Features], float]


@dataclass(frozen=True)
class InterferenceForm:
    """A registered form: `pair(coef, victim, other)` gives the slowdown by one co-runner; partitions combine by
    `combine` ("max": the worst neighbour, as gpulet does; "sum": excess slowdowns add up)."""

    name: str
    pair: PairFn
    combine: str = "max"
    needs_features: bool = True
    n_coef: int | None = None
    description: str = ""
    reads_util: bool = True  # False: the form never reads l2_util / dram_util (counter-free: profiles without them)


FORMS: dict[str, InterferenceForm] = {}


def register_form(form: InterferenceForm) -> InterferenceForm:
    FORMS[form.name] = form
    return form


def get_form(name: str) -> InterferenceForm:
    try:
        return FORMS[name]
    except KeyError:
        raise InputError(f"unknown interference form {name!r} (known: {', '.join(sorted(FORMS))})") from None


def _none(coef: Sequence[float], victim: Features, other: Features) -> float:
    return 1.0


def _gpulet_linear(coef: Sequence[float], victim: Features, other: Features) -> float:
    """gpulet (Choi et al., USENIX ATC'22), interference_model.cpp: a linear function of both sides' solo L2 and
    DRAM utilisation, each scaled by its partition fraction, clamped at 1."""
    c1, c2, c3, c4, c5 = coef
    value = (c1 * victim.l2_util * victim.fraction + c2 * other.l2_util * other.fraction
             + c3 * victim.dram_util * victim.fraction + c4 * other.dram_util * other.fraction + c5)
    return max(1.0, value)


register_form(InterferenceForm("none", _none, needs_features=False, n_coef=0, description="no interference",
                               reads_util=False))
register_form(InterferenceForm("gpulet-linear", _gpulet_linear, combine="max", n_coef=5,
                               description="gpulet's linear L2/DRAM form (max over neighbours)"))


def aggregate_slowdown(form: InterferenceForm, coef: Sequence[float], victim: Features,
                       neighbours: Sequence[Sequence[Features]]) -> float:
    """Worst-case slowdown of `victim` given the tenants of each other partition on its GPU."""
    per_partition = [max((form.pair(coef, victim, o) for o in tenants), default=1.0) for tenants in neighbours]
    per_partition = [p for p in per_partition if p > 1.0]
    if not per_partition:
        return 1.0
    if form.combine == "sum":
        return 1.0 + sum(p - 1.0 for p in per_partition)
    return max(per_partition)


# --- forms fitted by `stsched.latency` (appended; pure numpy, so a Features of floats or of arrays works) -------
import numpy as _np  # noqa: E402


def _igniter(coef: Sequence[float], victim: Features, other: Features) -> float:
    """iGniter (Xu et al., TPDS'23, igniter-algorithm.py `predict`), reduced to features profiled once per model:
    the victim's active time grows by k_l2 times the co-runner's L2 utilisation, and every co-located workload
    adds scheduling idle time per kernel, a constant per batch, hence k_sch / solo latency.  iGniter's per-model
    constants (k_l2, kernel count) become global coefficients; its power/frequency term needs power profiles
    the data sets lack and is left out."""
    k_l2, k_sch = coef
    return _np.maximum(1.0, 1.0 + k_l2 * other.l2_util + k_sch / victim.latency_ms)


def _stsched_contention(coef: Sequence[float], victim: Features, other: Features) -> float:
    """stsched's form from per-entry features: a victim whose kernels use little DRAM bandwidth for its share of
    SMs (m = dram_util / fraction, clipped to [0, 1]) is launch/host-bound and slows down by kappa*(1 - m) when
    anything else runs (the A100 data: ~1.45x, whatever the co-runner); the memory-bound share m slows down
    with the co-runner's DRAM and L2 traffic (mu, nu).  See docs/LATENCY.md."""
    kappa, mu, nu = coef
    m = _np.clip(victim.dram_util / victim.fraction, 0.0, 1.0)
    return _np.maximum(1.0, 1.0 + kappa * (1.0 - m) + m * (mu * other.dram_util + nu * other.l2_util))


def _stsched_regime(coef: Sequence[float], victim: Features, other: Features) -> float:
    """stsched's regime form: the share of the victim's latency that does not scale with SMs (1 - s, s = the SM
    elasticity of its solo surface at its point) is host/launch time and inflates by kappa when a neighbour runs;
    the share that scales with SMs inflates with the neighbour's DRAM and L2 traffic (mu, nu).  docs/LATENCY.md."""
    kappa, mu, nu = coef
    s = _np.clip(victim.elasticity, 0.0, 1.0)
    return _np.maximum(1.0, 1.0 + kappa * (1.0 - s) + s * (mu * other.dram_util + nu * other.l2_util))


register_form(InterferenceForm("stsched-regime", _stsched_regime, combine="max", n_coef=3,
                               description="stsched host/memory regime form from the SM elasticity (max over neighbours)"))
register_form(InterferenceForm("igniter", _igniter, combine="max", n_coef=2,
                               description="iGniter's L2 + scheduling-delay form (max over neighbours)"))
register_form(InterferenceForm("stsched-contention", _stsched_contention, combine="max", n_coef=3,
                               description="stsched host/memory contention form (max over neighbours)"))


def _stsched_elastic(coef: Sequence[float], victim: Features, other: Features) -> float:
    """stsched's counter-free form, for profiles without L2/DRAM utilisation (this project's green-context runs):
    `1 + kappa (1 - s_v) + mu f_o`.  The share of the victim's latency that does not scale with SMs (1 - s_v, s_v
    = SM elasticity of its solo surface) is host/launch time, which a neighbour's launches and host work inflate
    by kappa; the neighbour presses on the shared L2 and DRAM in proportion to the share of the GPU's SMs it holds
    (f_o), by mu.  kappa, mu >= 0, so the slowdown is >= 1, nondecreasing in f_o and nonincreasing in s_v.
    Partitions add up ("sum"): pressure grows with the SMs the neighbours hold together, whether one neighbour
    holds them or several (the co-run data are pairs only, so this is an assumption).  docs/LATENCY.md."""
    kappa, mu = coef
    s = _np.clip(victim.elasticity, 0.0, 1.0)
    return _np.maximum(1.0, 1.0 + kappa * (1.0 - s) + mu * _np.clip(other.fraction, 0.0, 1.0))


register_form(InterferenceForm("stsched-elastic", _stsched_elastic, combine="sum", n_coef=2, reads_util=False,
                               description="stsched counter-free form: host share from the SM elasticity + "
                                           "the neighbour's SM share (sum over neighbours)"))


# --- quantile twins (issue 19): a fitted form's slowdown times a calibrated factor, the last coefficient --------
QUANTILE_SUFFIX = "@quantile"


def _quantile_twin(base: InterferenceForm) -> InterferenceForm:
    """`base`'s slowdown times exp(c), c = the last coefficient (the log factor of a predictive quantile from
    `stsched.latency.uncertainty`), at least 1.  Applied to every neighbouring partition, even one the base form
    predicts harmless: the quantile is of the measured slowdown beside any neighbour."""
    def pair(coef: Sequence[float], victim: Features, other: Features) -> float:
        return _np.maximum(1.0, base.pair(coef[:-1], victim, other) * _np.exp(coef[-1]))

    return InterferenceForm(base.name + QUANTILE_SUFFIX, pair, combine=base.combine, n_coef=(base.n_coef or 0) + 1,
                            reads_util=base.reads_util,
                            description=f"{base.name} times a calibrated quantile factor (last coefficient, log)")


for _name in ("gpulet-linear", "igniter", "stsched-contention", "stsched-regime", "stsched-elastic"):
    register_form(_quantile_twin(FORMS[_name]))
