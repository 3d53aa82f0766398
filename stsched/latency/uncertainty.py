"""Predictive distributions of the interference slowdown: split-by-group (cross-)conformal calibration.

A fitted form gives a point prediction I_hat of a co-run slowdown.  Its error for a victim model never co-run is
dominated by a *victim-level shift* (the A100's held-out densenet121 is under-predicted by a median 6 %, resnet50
over-predicted by 5 %) plus a *within-victim spread* (launch-bound small batches scatter most).  The calibration
therefore works on out-of-fold log residuals r = ln(measured / I_hat), each group predicted by the form fitted
without it:

- groups are victim models when the calibration rows hold at least two victims with `MIN_VICTIM_ROWS` rows
  (leave-one-victim-out; a probed model's few rows form a group of their own), else the unordered model pairs
  (the only held-out structure left with one victim; it cannot see a victim shift);
- `within` = the conformal quantiles of r - median_g(r) pooled over groups (finite-sample level
  ceil((n + 1) tau) / n, the "higher" order statistic);
- the victim shift is a random effect (`stsched.latency.victim_prior`): scale tau from the K victim shifts known
  without the victim (the groups' medians when they are victims, plus the shipped data sets' victims), a new
  victim's shift predicted by tau * t_K; the predictive tau-quantile is I_hat * exp(`total`(tau)),
  `total` the quantiles of that t convolved with the within distribution, clamped at 1 (a slowdown never speeds
  up);
- only without any victim shift (one victim, no shipped population) or after probes: `shift` = the largest
  |median r| over the groups, ramped in: I_hat * exp(within(tau) + shift * clip((tau - 0.5) / 0.4, -1, 1)).
  (Until issue 19's second session this was the method throughout; it under-covered a victim whose shift exceeded
  the one or two shifts its folds saw -- V100 alexnet 0.54 -- docs/LATENCY.md.)

`leave_one_victim_out_calibration` scores it honestly: for every victim held out, the form and the calibration
are both computed from the other victims' rows only (nested; the shipped population without the victim's
data set, whose other shifts were measured with the victim in training), and the held-out rows are checked against the
predicted 0.9 quantile (`coverage_q90`) -- the figure docs/LATENCY.md reports.  With few victims per data set
(2 on the A100) this is a small-sample statement; the per-victim rows say how uneven it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from stsched.errors import InputError
from stsched.latency.evaluate import GROUPINGS, error_stats, fit_predict
from stsched.latency.features import CorunData
from stsched.latency.model import FitOptions, LatencyModel, corun_data, fitted_forms
from stsched.latency.victim_prior import population_shifts

log = logging.getLogger(__name__)

#: the levels at which `Predictive.within` is stored (0.01 .. 0.99)
LEVELS = tuple(round(i / 100, 2) for i in range(1, 100))
#: the level at which the whole victim shift is applied (and, mirrored, 1 - this)
SHIFT_LEVEL = 0.9


@dataclass(frozen=True)
class Predictive:
    """The calibrated predictive distribution of one form's slowdown, as log factors on its point prediction."""

    form: str
    shift: float  # the largest |median out-of-fold log residual| over the calibration groups
    within: tuple[float, ...]  # conformal quantiles of the group-centred log residuals at LEVELS
    grouping: str  # "model" (leave-one-victim-out) or "pair"
    n_groups: int
    n_rows: int
    probes: int = 0  # per held-out group, this many probe rows corrected its predictions (stsched.latency.probes)
    # random-effect victim shift (stsched.latency.victim_prior): when set, `total` holds the quantiles at LEVELS of
    # the whole log residual (t-predicted victim shift convolved with `within`) and replaces within + shift ramp
    total: tuple[float, ...] = ()
    victim_scale: float = 0.0  # tau, the scale of the t_K-predicted victim shift
    victim_df: int = 0  # K, the victim shifts tau was estimated from

    def log_factor(self, q: float | np.ndarray) -> np.ndarray:
        q = np.asarray(q, float)
        if np.any((q <= 0) | (q >= 1)):
            raise InputError(f"quantile levels must lie in (0, 1), got {q}")
        if self.total:
            return np.interp(q, LEVELS, self.total)
        ramp = np.clip((q - 0.5) / (SHIFT_LEVEL - 0.5), -1.0, 1.0)
        return np.interp(q, LEVELS, self.within) + self.shift * ramp

    def quantile(self, point: np.ndarray, q: float) -> np.ndarray:
        """The q-quantile of the slowdown whose point prediction is `point` (>= 1)."""
        return np.maximum(1.0, np.asarray(point, float) * np.exp(self.log_factor(q)))

    def sample(self, point: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One draw per point from the predictive distribution (inverse CDF at uniform levels in [0.01, 0.99])."""
        point = np.asarray(point, float)
        u = rng.uniform(LEVELS[0], LEVELS[-1], size=point.shape)
        return np.maximum(1.0, point * np.exp(self.log_factor(u)))

    def to_dict(self) -> dict[str, Any]:
        d = {"form": self.form, "shift": self.shift, "within": list(self.within), "grouping": self.grouping,
             "n_groups": self.n_groups, "n_rows": self.n_rows, "probes": self.probes}
        if self.total:
            d.update(total=list(self.total), victim_scale=self.victim_scale, victim_df=self.victim_df)
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Predictive":
        try:
            within = tuple(float(x) for x in d["within"])
            total = tuple(float(x) for x in d.get("total", ()))
            p = Predictive(str(d["form"]), float(d["shift"]), within, str(d["grouping"]), int(d["n_groups"]),
                           int(d["n_rows"]), int(d.get("probes", 0)), total, float(d.get("victim_scale", 0.0)),
                           int(d.get("victim_df", 0)))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"predictive distribution: bad or missing field ({e})") from None
        for name, qs in (("within", within), ("total", total)):
            if (qs or name == "within") and (len(qs) != len(LEVELS) or np.any(np.diff(qs) < -1e-12)
                                             or not np.all(np.isfinite(qs))):
                raise InputError(f"predictive distribution of {p.form}: {name}: {len(qs)} non-decreasing "
                                 f"quantiles expected ({len(LEVELS)})")
        if not (np.isfinite(p.shift) and np.isfinite(p.victim_scale) and p.victim_scale >= 0):
            raise InputError(f"predictive distribution of {p.form}: shift and victim_scale must be finite "
                             f"(victim_scale >= 0)")
        return p


def conformal_quantiles(scores: np.ndarray, levels: Sequence[float] = LEVELS) -> tuple[float, ...]:
    """Split-conformal quantiles of `scores`: level tau uses order statistic ceil((n + 1) tau) (upper side) or
    floor((n + 1) tau) (lower side), clipped to the sample; non-decreasing in tau."""
    s = np.sort(np.asarray(scores, float))
    n = len(s)
    if n == 0:
        raise InputError("conformal calibration needs at least one out-of-fold residual")
    out = []
    for tau in levels:
        k = int(np.ceil((n + 1) * tau)) if tau >= 0.5 else int(np.floor((n + 1) * tau))
        out.append(float(s[min(max(k, 1), n) - 1]))
    return tuple(np.maximum.accumulate(out))


#: a victim counts towards leave-one-victim-out calibration with at least this many co-run rows (fewer: probes)
MIN_VICTIM_ROWS = 10


def calibration_groups(data: CorunData) -> tuple[np.ndarray, str]:
    """Victim models when at least two have `MIN_VICTIM_ROWS` rows (so every fold keeps a fittable victim),
    else unordered model pairs."""
    counts = data.rows["victim"].value_counts()
    by = "model" if int((counts >= MIN_VICTIM_ROWS).sum()) >= 2 else "pair"
    return GROUPINGS[by](data.rows), by


def out_of_fold(form: str, data: CorunData, options: FitOptions, *, probes: int = 0, model: LatencyModel | None =
                None) -> tuple[np.ndarray, np.ndarray, str]:
    """Out-of-fold log residuals ln(measured / predicted) of every row, each group predicted by `form` fitted without
    it (with `probes` > 0: fitted with that group's planned probe rows and corrected by them; those rows are not
    scored, NaN).  Returns (residuals, groups, grouping)."""
    groups, by = calibration_groups(data)
    if len(np.unique(groups)) < 2:
        raise InputError(f"form {form}: calibration needs co-runs of at least two {by}s")
    r = np.full(len(data), np.nan)
    for g in np.unique(groups):
        test = groups == g
        if probes and by == "model":
            from stsched.latency.probes import probed_prediction
            assert model is not None
            pred, probe_mask = probed_prediction(model, form, data.take(~test), data.take(test), probes)
            r[np.nonzero(test)[0][~probe_mask]] = np.log(data.slowdown[test][~probe_mask] / pred[~probe_mask])
        else:
            r[test] = np.log(data.slowdown[test] / fit_predict(form, data.take(~test), data.take(test), options))
    return r, groups, by


def centred_residuals(r: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Each group's finite residuals minus their median (NaN elsewhere), and those medians (the groups' shifts) in
    the order of `np.unique`."""
    ok = np.isfinite(r)
    centred, shifts = np.full(len(r), np.nan), []
    for g in np.unique(groups[ok]):
        m = ok & (groups == g)
        shifts.append(float(np.median(r[m])))
        centred[m] = r[m] - shifts[-1]
    return centred, shifts


def calibrate_form(form: str, data: CorunData, options: FitOptions, *, probes: int = 0,
                   model: LatencyModel | None = None, population: Sequence[float] = ()) -> Predictive:
    """The predictive distribution of `form` calibrated on `data`'s out-of-fold residuals (module doc).

    Without probes, the victim shift is a random effect (`victim_prior`): its scale from the calibration's own
    victim shifts (grouping "model") plus `population` (victim shifts measured on other data sets); only when
    there is no victim shift at all (one victim, empty population) the largest pair shift is ramped in.  After
    probes (the probed victims' shifts are corrected by their own probes) the largest remaining shift is."""
    from stsched.latency.victim_prior import VictimEffect, convolved_quantiles
    r, groups, by = out_of_fold(form, data, options, probes=probes, model=model)
    ok = np.isfinite(r)
    centred, shifts = centred_residuals(r, groups)
    within = conformal_quantiles(centred[ok])
    base = Predictive(form, max(abs(x) for x in shifts), within, by, len(shifts), int(ok.sum()), probes)
    effect = None if probes else VictimEffect.of([*population, *(shifts if by == "model" else [])])
    if effect is None:
        return base
    from dataclasses import replace
    return replace(base, total=convolved_quantiles(centred[ok], effect, LEVELS), victim_scale=effect.scale,
                   victim_df=effect.df)


def calibrate(model: LatencyModel, corun, forms: Sequence[str] | None = None) -> dict[str, Predictive]:
    """Predictive distributions of the model's fitted forms (default: all of them), from its co-run rows."""
    data = corun_data(model, corun)
    pop = population_shifts(model.dataset)
    return {f: calibrate_form(f, data, model.options, population=pop) for f in (forms or fitted_forms(model))}


def coverage_row(pred: np.ndarray, measured: np.ndarray, predictive: Predictive, q: float = 0.9) -> dict[str, Any]:
    """Error of the point prediction, and coverage / width of the q-quantile, on rows with measured slowdowns."""
    upper = predictive.quantile(pred, q)
    stats = error_stats(pred, measured)
    return {"n": stats["n"], "mape": stats["mape"], "p90_abs_rel_err": stats["p90"],
            f"coverage_q{round(q * 100)}": float(np.mean(measured <= upper * (1 + 1e-9))),
            f"q{round(q * 100)}_width": float(np.median(upper / pred - 1.0))}


def leave_one_victim_out_calibration(model: LatencyModel, corun, form: str, *, q: float = 0.9,
                                     probes: int = 0) -> dict[str, Any]:
    """Nested leave-one-victim-out: per victim, the form and its calibration from the other victims' rows only,
    scored on the victim's rows.  Returns {"victims": [per-victim rows], "pooled": row} (rows of `coverage_row`
    plus `victim`, `shift` (the largest |shift| of the fold's groups), `victim_scale` (the t scale of the victim
    shift), `grouping`, and the held-out victim's own `own_shift` (median log residual) and `own_spread_q90` (0.9
    quantile of its centred log residuals): diagnostics, not predictions)."""
    data = corun_data(model, corun)
    victims = data.rows["victim"].to_numpy()
    if len(np.unique(victims)) < 2:
        raise InputError(f"{model.dataset}: leave-one-victim-out needs co-runs of at least two victim models")
    rows, all_pred, all_meas, all_up = [], [], [], []
    pop = population_shifts(model.dataset)  # other data sets only: this one's victims are measured per fold
    for v in np.unique(victims):
        test = victims == v
        train, held = data.take(~test), data.take(test)
        pred_dist = calibrate_form(form, train, model.options, probes=probes, model=model, population=pop)
        if probes:
            from stsched.latency.probes import probed_prediction
            pred, probe_mask = probed_prediction(model, form, train, held, probes)
            pred, meas = pred[~probe_mask], held.slowdown[~probe_mask]
        else:
            pred, meas = fit_predict(form, train, held, model.options), held.slowdown
        r = np.log(meas / pred)
        rows.append({"victim": str(v), **coverage_row(pred, meas, pred_dist, q), "shift": pred_dist.shift,
                     "victim_scale": pred_dist.victim_scale, "grouping": pred_dist.grouping,
                     "own_shift": float(np.median(r)), "own_spread_q90": float(np.quantile(r - np.median(r), 0.9))})
        all_pred.append(pred)
        all_meas.append(meas)
        all_up.append(pred_dist.quantile(pred, q))
    pred, meas, up = (np.concatenate(x) for x in (all_pred, all_meas, all_up))
    stats = error_stats(pred, meas)
    pooled = {"n": stats["n"], "mape": stats["mape"], "p90_abs_rel_err": stats["p90"],
              **pooled_coverage(pred, meas, up, rows, q)}
    return {"form": form, "dataset": model.dataset, "probes": probes, "victims": rows, "pooled": pooled}


def leave_one_victim_out_coverage(model: LatencyModel, corun, form: str, calibrate_on, upper, *,
                                  q: float = 0.9) -> dict[str, Any]:
    """Nested leave-one-victim-out of a calibration other than `calibrate_form`'s: per victim, `calibrate_on(train
    data, population)` on the other victims' rows only and `upper(distribution, prediction, held-out data)` ->
    (its q quantiles, extra columns of the victim's row); scored on the victim's rows and pooled."""
    data = corun_data(model, corun)
    victims = data.rows["victim"].to_numpy()
    if len(np.unique(victims)) < 2:
        raise InputError(f"{model.dataset}: leave-one-victim-out needs co-runs of at least two victim models")
    pop = population_shifts(model.dataset)
    rows, pred_all, meas_all, up_all = [], [], [], []
    for v in np.unique(victims):
        test = victims == v
        train, held = data.take(~test), data.take(test)
        dist = calibrate_on(train, pop)
        pred = fit_predict(form, train, held, model.options)
        up, extra = upper(dist, pred, held)
        rows.append({"victim": str(v), **coverage_row(pred, held.slowdown, _FixedUpper(up), q), **extra})
        pred_all.append(pred)
        meas_all.append(held.slowdown)
        up_all.append(up)
    pred, meas, up = (np.concatenate(a) for a in (pred_all, meas_all, up_all))
    return {"form": form, "dataset": model.dataset, "victims": rows,
            "pooled": {"n": len(pred), **pooled_coverage(pred, meas, up, rows, q)}}


@dataclass(frozen=True, eq=False)
class _FixedUpper:
    """Per-row upper quantiles already computed, in the shape `coverage_row` reads."""

    upper: np.ndarray

    def quantile(self, point: np.ndarray, q: float) -> np.ndarray:
        return np.maximum(1.0, np.asarray(self.upper, float))


def pooled_coverage(pred: np.ndarray, meas: np.ndarray, up: np.ndarray, rows: Sequence[dict[str, Any]],
                    q: float) -> dict[str, float]:
    """The pooled coverage of the q quantiles `up` over every held-out row, their median relative width, and the
    least per-victim coverage of `rows` (`coverage_row`s)."""
    key = round(q * 100)
    return {f"coverage_q{key}": float(np.mean(meas <= up * (1 + 1e-9))),
            f"q{key}_width": float(np.median(up / pred - 1.0)),
            f"min_victim_coverage_q{key}": min(r[f"coverage_q{key}"] for r in rows)}


# ------------------------------------------------------------------------------------- models that carry it
def probed_key(form: str, probes: int) -> str:
    """The key of a form's predictive distribution after `probes` probes in `LatencyModel.predictive`."""
    return form if probes == 0 else f"{form}@{probes}probes"


def with_predictive(model: LatencyModel, corun, forms: Sequence[str] | None = None) -> LatencyModel:
    """`model` with the predictive distributions of its saveable forms (and, for victims adapted by probes, of its
    default form after that many probes) calibrated on `corun` (its co-run rows)."""
    from dataclasses import replace

    from stsched.latency.model import default_form
    if not model.coef:
        return model
    data = corun_data(model, corun)
    if data.rows["victim"].nunique() < 2 and data.rows["corunner"].nunique() < 2:
        log.warning("%s: one victim and one co-runner: no held-out structure to calibrate on", model.dataset)
        return model
    names = list(forms or model.coef)
    pop = population_shifts(model.dataset)
    pred = {f: calibrate_form(f, data, model.options, population=pop) for f in names}
    form = default_form(model)
    if calibration_groups(data)[1] == "model":
        for k in sorted({a.probes for a in model.adapted.values()}):
            pred[probed_key(form, k)] = calibrate_form(form, data, model.options, probes=k, model=model)
    return replace(model, predictive=pred)


def slowdown_quantile(model: LatencyModel, data: CorunData, q: float, form: str | None = None) -> np.ndarray:
    """The q-quantile of every row's slowdown under the model's predictive distribution of `form` (probed victims:
    the distribution calibrated with their number of probes, where the model has it)."""
    from stsched.latency.model import default_form, predict_slowdown
    name = form or default_form(model)
    if name not in model.predictive:
        raise InputError(f"latency model {model.dataset!r} has no predictive distribution of form {name!r} (refit "
                         f"it with `stsched fit`; calibrated: {', '.join(model.predictive) or 'none'})")
    point = predict_slowdown(model, data, name)
    out = model.predictive[name].quantile(point, q)
    victims = data.rows["victim"].to_numpy()
    for v, a in model.adapted.items():
        key = probed_key(name, a.probes)
        if key in model.predictive and (victims == v).any():
            out[victims == v] = model.predictive[key].quantile(point[victims == v], q)
    return out


def score(model: LatencyModel, data: CorunData, form: str | None = None, q: float = 0.9) -> dict[str, Any]:
    """Point error, and coverage and width of the q-quantile, on `data`, pooled and per victim model."""
    from stsched.latency.model import default_form, predict_slowdown
    name = form or default_form(model)
    point = predict_slowdown(model, data, name)
    upper = slowdown_quantile(model, data, q, name)
    key = round(q * 100)

    def row(m: np.ndarray) -> dict[str, Any]:
        st = error_stats(point[m], data.slowdown[m])
        return {"n": st["n"], "mape": st["mape"], "p90_abs_rel_err": st["p90"],
                f"coverage_q{key}": float(np.mean(data.slowdown[m] <= upper[m] * (1 + 1e-9))),
                f"q{key}_width": float(np.median(upper[m] / point[m] - 1.0))}

    victims = data.rows["victim"].to_numpy()
    return {"form": name, **row(np.ones(len(data), bool)),
            "per_model": [{"victim": str(v), **row(victims == v)} for v in np.unique(victims)]}
