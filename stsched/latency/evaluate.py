"""Scoring a latency model: error tables on given data, and honest splits that refit on training folds only.

Errors are absolute relative errors |pred / measured - 1|; a table reports n, MAPE, p50, p90, p99 and max.
Splits (every one refits the model from scratch on its training part):
- `size_holdout`: solo surfaces fitted without some partition sizes, scored at those sizes (interpolation only:
  held-out sizes inside the range of the kept ones), every batch;
- `batch_holdout`: the same with batch sizes;
- `leave_one_model_out`: for each victim model, forms fitted on co-runs whose victim is another model, scored on
  its rows (its solo profile is known: a new model needs only a solo profile);
- `leave_one_pair_out`: for each unordered model pair, forms fitted without any row of that pair;
- `leave_one_group_out(by=...)`: the same for any grouping of `GROUPINGS` (victim model, pair, partition layout,
  co-runner model), `in_sample`, and `transfer` (fitted on one data set's co-runs, scored on another's);
  every interference split also scores the baselines `none` (slowdown 1) and `constant` (median training slowdown).

`measured_slowdowns` needs no interference form: victim co-run latency / solo latency at the same point (measured
where the profile has that point).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from stsched.errors import InputError
from stsched.latency.features import CorunData
from stsched.latency.interference_fit import fit_form, predict_form
from stsched.latency.model import (FitOptions, LatencyModel, corun_data, fit, fitted_forms, predict_values,
                                   solo_rows_predict)

log = logging.getLogger(__name__)


def error_stats(pred: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """n, mape, p50/p90/p99/max of |pred/measured - 1| (in fractions); NaN predictions are not scored."""
    ok = np.isfinite(pred) & np.isfinite(measured) & (measured > 0)
    e = np.abs(pred[ok] / measured[ok] - 1.0)
    if not len(e):
        return {"n": 0, "mape": float("nan"), "p50": float("nan"), "p90": float("nan"), "p99": float("nan"),
                "max": float("nan")}
    return {"n": int(len(e)), "mape": float(e.mean()), "p50": float(np.quantile(e, 0.5)),
            "p90": float(np.quantile(e, 0.9)), "p99": float(np.quantile(e, 0.99)), "max": float(e.max())}


def evaluate(model: LatencyModel, data: Any, *, forms: Sequence[str] | None = None) -> pd.DataFrame:
    """Error table of `model` on `data` (a ProfileSet or anything with .solo and/or .corun frames).

    Rows: kind "solo" (latency) and, per interference form, kind "slowdown" (I against co-run latency / the
    model's solo latency at the same point) -- on the data as given, so on training data this is in-sample.
    """
    out = []
    solo = getattr(data, "solo", None)
    if solo is not None and len(solo):
        rows, pred = solo_rows_predict(model, solo)
        if len(rows):
            out.append({"kind": "solo", "form": model.options.solo_form,
                        **error_stats(pred, rows["latency_ms"].to_numpy())})
    corun = getattr(data, "corun", None)
    if corun is not None and len(corun) and (model.coef or model.estimators):
        cd = corun_data(model, corun)
        for name in forms or [*model.coef, *model.estimators]:
            fitted = model.coef.get(name, model.estimators.get(name))
            if fitted is None:
                continue
            out.append({"kind": "slowdown", "form": name, **error_stats(predict_form(name, fitted, cd), cd.slowdown)})
    if not out:
        raise InputError("nothing to evaluate: the data have no solo or co-run rows the model knows")
    return pd.DataFrame(out)


def measured_slowdowns(corun: pd.DataFrame, solo: pd.DataFrame, model: LatencyModel | None = None,
                       source: str = "co-run data") -> pd.DataFrame:
    """Co-run rows with `solo_ms` (the victim's solo latency at the same model, batch and partition) and
    `slowdown` = victim_latency_ms / solo_ms.

    `solo_from` says where solo_ms came from: "measured" (a row of `solo`), "model" (`model`'s surface, for a
    point inside the profiled range but not profiled, e.g. a co-run-only partition size).  Rows with neither
    are dropped with a warning naming them.
    """
    from stsched.latency.features import _rows, clean_corun, clean_solo

    rows = clean_corun(corun, source)
    ref = clean_solo(solo, f"{source} (solo reference)")
    ref = ref[ref["procs"] == 1].set_index(["model", "batch", "partition"])["latency_ms"]
    keys = pd.MultiIndex.from_arrays([rows["victim"], rows["victim_batch"], rows["victim_partition"]])
    solo_ms = ref.reindex(keys).to_numpy(float).copy()
    solo_from = np.where(np.isnan(solo_ms), "", "measured").astype(object)
    if model is not None and np.isnan(solo_ms).any():
        gap = np.isnan(solo_ms) & rows["victim"].isin(model.models).to_numpy()
        if gap.any():
            values, covered = predict_values(model, "log_latency", rows["victim"].to_numpy()[gap],
                                             rows["victim_batch"].to_numpy()[gap],
                                             rows["victim_partition"].to_numpy()[gap])
            idx = np.nonzero(gap)[0][covered]
            solo_ms[idx] = values[covered]
            solo_from[idx] = "model"
    missing = np.isnan(solo_ms)
    if missing.any():
        log.warning("%s: dropped %d co-run row(s) with no solo latency of the victim at that batch/partition: %s",
                    source, int(missing.sum()), _rows(rows.index, missing))
    out = rows.assign(solo_ms=solo_ms, solo_from=solo_from, slowdown=rows["victim_latency_ms"].to_numpy() / solo_ms)
    return out[~missing].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------- solo splits
class _Frames:
    """A (solo, corun, meta) triple that `fit` accepts like a ProfileSet."""

    def __init__(self, solo: pd.DataFrame, corun: pd.DataFrame | None, meta: Any = None) -> None:
        self.solo, self.corun, self.meta = solo, corun, meta


def _solo_split(profiles: Any, options: FitOptions, train_mask: np.ndarray, test_mask: np.ndarray,
                solo_forms: Iterable[str]) -> list[dict[str, Any]]:
    solo = profiles.solo
    out = []
    for sf in solo_forms:
        opts = replace(options, solo_form=sf)
        model = fit(_Frames(solo[train_mask], None, getattr(profiles, "meta", None)), opts)
        rows, pred = solo_rows_predict(model, solo[test_mask], "held-out solo rows")
        out.append({"form": sf, **error_stats(pred, rows["latency_ms"].to_numpy())})
    return out


def size_holdout(profiles: Any, train_sizes: Sequence[float], options: FitOptions = FitOptions(),
                 solo_forms: Iterable[str] = ("roofline-hybrid",)) -> list[dict[str, Any]]:
    """Solo error at partition sizes outside `train_sizes` but inside their range, fitted without them."""
    p = profiles.solo["partition"].to_numpy(float)
    keep = np.isin(p, np.asarray(train_sizes, float))
    test = ~keep & (p > min(train_sizes)) & (p < max(train_sizes))
    if not test.any():
        raise InputError(f"size holdout: no profiled size strictly inside {sorted(train_sizes)} is held out")
    return _solo_split(profiles, options, keep, test, solo_forms)


def batch_holdout(profiles: Any, train_batches: Sequence[int], options: FitOptions = FitOptions(),
                  solo_forms: Iterable[str] = ("roofline-hybrid",)) -> list[dict[str, Any]]:
    """Solo error at batch sizes outside `train_batches` but inside their range, fitted without them."""
    b = profiles.solo["batch"].to_numpy(int)
    keep = np.isin(b, np.asarray(train_batches, int))
    test = ~keep & (b > min(train_batches)) & (b < max(train_batches))
    if not test.any():
        raise InputError(f"batch holdout: no profiled batch strictly inside {sorted(train_batches)} is held out")
    return _solo_split(profiles, options, keep, test, solo_forms)


# -------------------------------------------------------------------------------------------- interference splits
#: trivial references scored beside the forms: no interference at all, and the median training slowdown
BASELINES = ("none", "constant")


def fit_predict(name: str, train: CorunData, test: CorunData, options: FitOptions) -> np.ndarray:
    """Slowdown of `test`'s rows predicted by form `name` fitted on `train` (or by a baseline of `BASELINES`)."""
    if name == "none":
        return np.ones(len(test))
    if name == "constant":
        return np.full(len(test), float(np.median(train.slowdown)))
    fitted = fit_form(name, train, loss=options.loss, f_scale=options.f_scale, gbm_params=options.gbm_params(),
                      seed=options.seed)
    return predict_form(name, fitted, test)


def _group_split(data: CorunData, groups: np.ndarray, train_of: Callable[[str], np.ndarray], options: FitOptions,
                 forms: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    preds = {f: np.full(len(data), np.nan) for f in forms}
    for g in np.unique(groups):
        test, train = groups == g, train_of(g)
        for f in forms:
            preds[f][test] = fit_predict(f, data.take(train), data.take(test), options)
    return {f: error_stats(preds[f], data.slowdown) for f in forms}, preds


def _layout(r: pd.DataFrame) -> np.ndarray:
    return np.array([f"{min(a, b):g}+{max(a, b):g}" for a, b in zip(r["victim_partition"], r["corunner_partition"])])


#: how the co-run rows are grouped for a leave-one-group-out split (the group held out, by its rows)
GROUPINGS: dict[str, Callable[[pd.DataFrame], np.ndarray]] = {
    "model": lambda r: r["victim"].to_numpy(),  # an unseen victim model (its solo profile known)
    "pair": lambda r: np.array(["|".join(sorted((a, b))) for a, b in zip(r["victim"], r["corunner"])]),
    "layout": _layout,  # an unseen partition layout (both sides of it), e.g. 32+96 SMs
    "corunner": lambda r: r["corunner"].to_numpy(),  # an unseen neighbour model
}


def leave_one_group_out(model: LatencyModel, corun: pd.DataFrame, by: str, forms: Sequence[str] | None = None):
    """Per form (or baseline): error on each group's rows (`GROUPINGS[by]`), fitted without that group.  Returns
    (stats by form, predictions by form, CorunData).  Solo surfaces: `model`; forms default to the ones `fit` fits
    to this profile (`fitted_forms`)."""
    if by not in GROUPINGS:
        raise InputError(f"unknown grouping {by!r} (known: {', '.join(GROUPINGS)})")
    data = corun_data(model, corun)
    groups = GROUPINGS[by](data.rows)
    if len(np.unique(groups)) < 2:
        raise InputError(f"leave-one-{by}-out needs co-runs of at least two groups")
    forms = list(forms or fitted_forms(model))
    stats, preds = _group_split(data, groups, lambda g: groups != g, model.options, forms)
    return stats, preds, data


def leave_one_model_out(model: LatencyModel, corun: pd.DataFrame, forms: Sequence[str] | None = None):
    """Per form: error on each victim model's rows, fitted on the other victims' rows.  Returns (stats by form,
    predictions by form, CorunData).  Solo surfaces: `model` (fitted on solo profiles only)."""
    return leave_one_group_out(model, corun, "model", forms)


def leave_one_pair_out(model: LatencyModel, corun: pd.DataFrame, forms: Sequence[str] | None = None):
    """Per form: error on each unordered model pair's rows (both directions), fitted without that pair."""
    return leave_one_group_out(model, corun, "pair", forms)


def in_sample(model: LatencyModel, corun: pd.DataFrame, forms: Sequence[str] | None = None):
    """Per form: error on the rows it was fitted on (the fit's own residuals)."""
    data = corun_data(model, corun)
    forms = list(forms or fitted_forms(model))
    preds = {f: fit_predict(f, data, data, model.options) for f in forms}
    return {f: error_stats(preds[f], data.slowdown) for f in forms}, preds, data


def transfer(train_model: LatencyModel, train_corun: pd.DataFrame, test_model: LatencyModel,
             test_corun: pd.DataFrame, forms: Sequence[str] | None = None):
    """Per form: fitted on one data set's co-runs (features from `train_model`), scored on another's (features
    from `test_model`, e.g. another GPU's profile of the same models).  Returns (stats, predictions, test data)."""
    train, test = corun_data(train_model, train_corun), corun_data(test_model, test_corun)
    forms = list(forms or fitted_forms(train_model))
    preds = {f: fit_predict(f, train, test, train_model.options) for f in forms}
    return {f: error_stats(preds[f], test.slowdown) for f in forms}, preds, test


def repeat_noise(data: CorunData, corunner_batches: tuple[int, int] = (1, 2)) -> dict[str, float]:
    """The measurement noise floor: relative difference of slowdowns measured under near-identical conditions
    (same victim point and co-runner model, co-runner batch 1 vs 2: both at the co-runner's launch floor).

    If each measurement carries independent noise e, the difference carries sqrt(2) e, so p90(|d|)/sqrt(2)
    approximates the p90 error a perfect predictor would show against single measurements.
    """
    r = data.rows.assign(_s=data.slowdown)
    key = ["victim", "victim_batch", "victim_partition", "corunner"]
    a, b = corunner_batches
    t = r[r["corunner_batch"].isin([a, b])].pivot_table(index=key, columns="corunner_batch", values="_s")
    if a not in t.columns or b not in t.columns:
        return {"n": 0, "p50_diff": float("nan"), "p90_diff": float("nan"), "p90_single": float("nan")}
    d = (t[b] / t[a] - 1.0).dropna().abs().to_numpy()
    return {"n": int(len(d)), "p50_diff": float(np.quantile(d, 0.5)), "p90_diff": float(np.quantile(d, 0.9)),
            "p90_single": float(np.quantile(d, 0.9) / np.sqrt(2.0))}
