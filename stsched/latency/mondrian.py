"""Mondrian conformal calibration of the slowdown by the victim's solo regime (issue 19, fourth session).

The default predictive distribution (`stsched.latency.uncertainty`) gives every row of a new victim one within-victim
spread, pooled over the calibration victims' rows.  The issue's observation on the A100 is that a victim scatters
where it is launch-bound (small batches, solo latency flat in the SM share).  Mondrian conformal prediction makes
the calibration conditional on such a class: the centred out-of-fold log residuals (as in
`uncertainty.calibrate_form`: each calibration victim predicted by the form fitted without it, centred by its own
median) are split by the row's **solo regime** -- launch-bound where the victim's solo SM elasticity at the row's
(batch, partition) is below `REGIME_ELASTICITY`, else compute-bound, known without any co-run of the victim -- and
each class gets its own conformal quantiles, convolved with the same t-predicted victim shift
(`victim_prior.VictimEffect`).  A class with fewer than `MIN_CLASS_ROWS` calibration rows uses the pooled scores.

`python experiments/interference_eval.py --section variants` compares it with the default and the normalised
scores (`stsched.latency.heteroscedastic`), nested leave-one-victim-out; the regime threshold is the one the
oracle columns of the probe table used before this method existed (not tuned here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from stsched.errors import InputError
from stsched.latency.features import CorunData
from stsched.latency.victim_prior import VictimEffect, convolved_quantiles

#: launch-bound where the victim's solo SM elasticity (`features.Side.elasticity`) is below this
REGIME_ELASTICITY = 0.3
#: a regime class with fewer calibration rows than this falls back to the pooled scores
MIN_CLASS_ROWS = 30
REGIMES = ("launch-bound", "compute-bound")


def solo_regime(data: CorunData) -> np.ndarray:
    """Per row: "launch-bound" or "compute-bound" from the victim's solo SM elasticity alone."""
    return np.where(np.asarray(data.victim.elasticity, float) < REGIME_ELASTICITY, REGIMES[0], REGIMES[1])


@dataclass(frozen=True)
class MondrianPredictive:
    """Per solo regime the sorted centred log-residual scores of a form's calibration, and the victim effect."""

    form: str
    scores: dict[str, tuple[float, ...]]  # regime -> sorted scores (a thin class holds the pooled ones)
    effect: VictimEffect | None

    def log_factor(self, regimes: np.ndarray, q: float) -> np.ndarray:
        """Per row (its regime label): the log factor on the point prediction at level q."""
        if not 0 < q < 1:
            raise InputError(f"quantile level must lie in (0, 1), got {q}")
        regimes = np.asarray(regimes)
        unknown = set(np.unique(regimes)) - set(self.scores)
        if unknown:
            raise InputError(f"unknown solo regime(s) {sorted(unknown)}; known: {sorted(self.scores)}")
        out = np.empty(len(regimes))
        for name, z in self.scores.items():
            m = regimes == name
            if m.any():
                out[m] = _level(np.asarray(z), self.effect, q)
        return out

    def quantile(self, point: np.ndarray, regimes: np.ndarray, q: float) -> np.ndarray:
        return np.maximum(1.0, np.asarray(point, float) * np.exp(self.log_factor(regimes, q)))


def _level(z: np.ndarray, effect: VictimEffect | None, q: float) -> float:
    if effect is None or effect.scale <= 0:
        from stsched.latency.uncertainty import conformal_quantiles
        return conformal_quantiles(z, (q,))[0]
    return convolved_quantiles(z, effect, (q,))[0]


def mondrian_from(centred: np.ndarray, regimes: np.ndarray, effect: VictimEffect | None, form: str = "synthetic",
                  min_rows: int = MIN_CLASS_ROWS) -> MondrianPredictive:
    """The Mondrian distribution of centred log residuals labelled by regime (every label of `REGIMES` gets scores:
    its own with at least `min_rows` rows, else the pooled ones)."""
    centred, regimes = np.asarray(centred, float), np.asarray(regimes)
    ok = np.isfinite(centred)
    if not ok.any():
        raise InputError("Mondrian calibration needs at least one out-of-fold residual")
    pooled = tuple(float(v) for v in np.sort(centred[ok]))
    scores = {}
    for name in REGIMES:
        m = ok & (regimes == name)
        scores[name] = tuple(float(v) for v in np.sort(centred[m])) if m.sum() >= min_rows else pooled
    return MondrianPredictive(form, scores, effect)


def calibrate_mondrian(form: str, data: CorunData, options, population: Sequence[float] = ()) -> MondrianPredictive:
    """`form`'s Mondrian distribution from `data`'s out-of-fold residuals (folds, centring and victim effect as
    `uncertainty.calibrate_form` without probes)."""
    from stsched.latency.uncertainty import centred_residuals, out_of_fold
    r, groups, by = out_of_fold(form, data, options)
    centred, shifts = centred_residuals(r, groups)
    effect = VictimEffect.of([*population, *(shifts if by == "model" else [])])
    return mondrian_from(centred, solo_regime(data), effect, form)


def leave_one_victim_out_mondrian(model, corun, form: str, *, q: float = 0.9) -> dict[str, Any]:
    """Nested leave-one-victim-out of the Mondrian calibration (form and class scores from the other victims only),
    scored on each held-out victim's rows, with each victim's share of launch-bound rows."""
    from stsched.latency.uncertainty import leave_one_victim_out_coverage

    def upper(dist, pred, held):
        regimes = solo_regime(held)
        return dist.quantile(pred, regimes, q), {"launch_bound_share": float(np.mean(regimes == REGIMES[0]))}

    return leave_one_victim_out_coverage(
        model, corun, form, lambda train, pop: calibrate_mondrian(form, train, model.options, population=pop),
        upper, q=q)
