"""Heteroscedastic (normalised) conformal calibration of the slowdown from the victim's solo features (issue 19).

The predictive distribution of `stsched.latency.uncertainty` gives every row of a new victim the same within-victim
spread (the calibration victims' pooled centred log residuals).  The A100's held-out densenet121 scatters 2-10x
more than any other shipped victim (its slowdown jumps between about 1.45 and 1.9 at its launch-bound batches), so
the question was whether *where* a victim scatters can be read from its solo profile.  This module is that
method, kept as an alternative for the comparison `python experiments/interference_eval.py --section variants`:

- scores: the calibration's centred out-of-fold log residuals c (as in `uncertainty.calibrate_form`), each divided
  by sigma(x) = max(floor, b . [1, x]) where x are the victim's solo features of the row (`solo_features`: its
  launch-boundness 1 - SM elasticity, its solo latency per sample (log), the form's point slowdown (log)) and b
  the least-squares fit of |c| on them; floor = `FLOOR_SHARE` x mean |c|;
- the new row's tau-quantile: sigma(x_new) x the tau-quantile of the normalised scores, convolved with the same
  t-predicted victim shift as the default (`victim_prior.VictimEffect`), at least 1.

On data with noise that really grows with a solo feature it restores the coverage of the rows that scatter most
(`tests/latency/test_heteroscedastic.py`).  On the shipped data it does not help densenet121: fitted on the other
victims, the solo features predict it to be among the *least* scattered (its launch-bound batches look like
resnet50's, which scatter least), so its coverage drops (docs/LATENCY.md has the table).  Nothing was tuned: the
three features and the floor were fixed before the one run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from stsched.errors import InputError
from stsched.latency.features import CorunData
from stsched.latency.victim_prior import VictimEffect, convolved_quantiles

log = logging.getLogger(__name__)

SOLO_FEATURES = ("launch_bound", "log_latency_per_sample", "log_point")
#: sigma(x) is at least this share of the calibration's mean |centred residual| (a fit may go negative)
FLOOR_SHARE = 0.25
#: the per-row quantile is interpolated (in log sigma) between this many sigma values spanning the rows'
GRID = 9


def solo_features(data: CorunData, point: np.ndarray) -> np.ndarray:
    """Per row (n x 3): the victim's launch-boundness 1 - elasticity (clipped to [0, 1]), log of its solo latency
    per sample, log of the form's point slowdown -- all known without any co-run of the victim."""
    v = data.victim
    point = np.asarray(point, float)
    if len(point) != len(data):
        raise InputError(f"{len(point)} point predictions for {len(data)} co-run rows")
    return np.column_stack([1.0 - np.clip(v.elasticity, 0.0, 1.0), np.log(v.latency_ms / v.batch),
                            np.log(np.maximum(point, 1e-9))])


@dataclass(frozen=True)
class ScaleModel:
    """sigma(x) = max(floor, coef . [1, x]): the expected |centred log residual| of a row from its solo features."""

    coef: tuple[float, ...]
    floor: float

    @staticmethod
    def fit(x: np.ndarray, abs_resid: np.ndarray, floor_share: float = FLOOR_SHARE) -> "ScaleModel":
        x = np.asarray(x, float)
        a = np.abs(np.asarray(abs_resid, float))
        ok = np.all(np.isfinite(x), axis=1) & np.isfinite(a)
        if ok.sum() < x.shape[1] + 1:
            raise InputError(f"a scale model of {x.shape[1]} features needs at least {x.shape[1] + 1} residuals, "
                             f"got {int(ok.sum())}")
        design = np.column_stack([np.ones(int(ok.sum())), x[ok]])
        coef, *_ = np.linalg.lstsq(design, a[ok], rcond=None)
        floor = max(floor_share * float(a[ok].mean()), 1e-6)
        return ScaleModel(tuple(float(c) for c in coef), floor)

    def sigma(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        return np.maximum(self.floor, np.column_stack([np.ones(len(x)), x]) @ np.asarray(self.coef))


@dataclass(frozen=True)
class NormalisedPredictive:
    """Normalised conformal scores c / sigma(x) of a form's calibration rows, and the victim shift's t effect."""

    form: str
    scale: ScaleModel
    scores: tuple[float, ...]  # the normalised scores, sorted
    effect: VictimEffect | None

    def log_factor(self, x: np.ndarray, q: float) -> np.ndarray:
        """Per row of solo features `x`: the log factor on the point prediction at level q."""
        if not 0 < q < 1:
            raise InputError(f"quantile level must lie in (0, 1), got {q}")
        sig = self.scale.sigma(x)
        z = np.asarray(self.scores)
        if self.effect is None or self.effect.scale <= 0:
            from stsched.latency.uncertainty import conformal_quantiles
            return sig * conformal_quantiles(z, (q,))[0]
        lo, hi = float(sig.min()), float(sig.max())
        grid = np.exp(np.linspace(np.log(lo), np.log(hi), GRID)) if hi > lo * (1 + 1e-9) else np.array([lo])
        at = np.array([convolved_quantiles(z * s, self.effect, (q,))[0] for s in grid])
        return np.full(len(sig), at[0]) if len(grid) == 1 else np.interp(np.log(sig), np.log(grid), at)

    def quantile(self, point: np.ndarray, x: np.ndarray, q: float) -> np.ndarray:
        return np.maximum(1.0, np.asarray(point, float) * np.exp(self.log_factor(x, q)))


def calibrate_normalised(form: str, data: CorunData, options, population: Sequence[float] = ()) -> \
        NormalisedPredictive:
    """The normalised predictive distribution of `form` from `data`'s out-of-fold residuals (same folds, centring
    and victim effect as `uncertainty.calibrate_form`)."""
    from stsched.latency.uncertainty import centred_residuals, out_of_fold
    r, groups, by = out_of_fold(form, data, options)
    ok = np.isfinite(r)
    centred, shifts = centred_residuals(r, groups)
    x = solo_features(data, data.slowdown / np.exp(r))
    scale = ScaleModel.fit(x[ok], np.abs(centred[ok]))
    z = np.sort(centred[ok] / scale.sigma(x[ok]))
    effect = VictimEffect.of([*population, *(shifts if by == "model" else [])])
    return NormalisedPredictive(form, scale, tuple(float(v) for v in z), effect)


def leave_one_victim_out_normalised(model, corun, form: str, *, q: float = 0.9) -> dict[str, Any]:
    """Nested leave-one-victim-out of the normalised calibration (as `uncertainty.leave_one_victim_out_calibration`:
    form, scale model and scores from the other victims only), scored on each held-out victim's rows."""
    from stsched.latency.uncertainty import leave_one_victim_out_coverage

    def upper(dist, pred, held):
        x = solo_features(held, pred)
        sig = dist.scale.sigma(x)
        return dist.quantile(pred, x, q), {"sigma_median": float(np.median(sig)), "sigma_max": float(sig.max())}

    return leave_one_victim_out_coverage(
        model, corun, form, lambda train, pop: calibrate_normalised(form, train, model.options, population=pop),
        upper, q=q)

