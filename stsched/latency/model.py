"""`LatencyModel`: fitted solo surfaces per (model, procs) and interference coefficients per form.

`fit(profiles, options)` fits once; `predict` gives solo latencies (vectorised over arrays, NaN outside the profiled
range unless `extrapolate=True`, which warns and names the rule), `predict_slowdown` gives I_s >= 1 for arrays of
victim/co-runner points, `corun_data` turns a co-run table into the features the forms read.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from stsched.errors import InputError
from stsched.latency.features import CorunData, Side, clean_corun, clean_solo, solo_points
from stsched.latency.forms import FORM_SPECS, get_spec
from stsched.latency.interference_fit import fit_form, predict_form
from stsched.latency.solo import SOLO_FORMS, SoloSurface, fit_surface

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = {"mps": 100.0, "mig": 7.0, "none": 100.0}
_CORUN_ONLY_DEFAULT = "stsched-elastic"  # FitOptions.corun_only_form (left out of to_dict at this default)


@dataclass(frozen=True)
class FitOptions:
    """Everything `fit` is told; part of the model's content hash."""

    solo_form: str = "roofline-hybrid"
    form: str = "stsched-regime"  # interference form used by predict_slowdown/evaluate (the project's best)
    carry_form: str = "stsched-regime"  # the carryable form instances get (interference_for)
    forms: tuple[str, ...] = ("gpulet-linear", "igniter", "stsched-contention", "stsched-regime")
    loss: str = "soft_l1"  # scipy least_squares loss for the parametric forms
    f_scale: float = 0.05  # its scale: residuals beyond 5 % relative error count linearly, not squared
    dense_size_steps: int = 40  # dense grid: sizes in (max - min) / 40 steps between profiled sizes
    batch_step_above_64: int = 8  # dense grid: every batch up to 64, then this step
    corun_only_form: str = _CORUN_ONLY_DEFAULT  # fitted and carried when co-runs exist but no L2/DRAM utilisation
    gbm_max_depth: int = 3
    gbm_max_iter: int = 200
    gbm_learning_rate: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        if self.solo_form not in SOLO_FORMS:
            raise InputError(f"unknown solo form {self.solo_form!r} (known: {', '.join(SOLO_FORMS)})")
        for name in (*self.forms, self.form, self.carry_form):
            get_spec(name)
        if self.form not in self.forms or self.carry_form not in self.forms:
            raise InputError(f"form {self.form!r} and carry_form {self.carry_form!r} must be among forms "
                             f"{', '.join(self.forms)}")
        spec = get_spec(self.corun_only_form)
        if spec.needs_util or not spec.carryable or spec.fit != "lsq":
            raise InputError(f"corun_only_form {self.corun_only_form!r} must be a carryable parametric form that "
                             f"reads no L2/DRAM utilisation (such forms: "
                             f"{', '.join(n for n, s in FORM_SPECS.items() if not s.needs_util)})")
        if not get_spec(self.carry_form).carryable:
            raise InputError(f"carry_form {self.carry_form!r} cannot be carried by an Instance (carryable: "
                             f"{', '.join(n for n, s in FORM_SPECS.items() if s.carryable)})")
        if self.dense_size_steps < 1 or self.batch_step_above_64 < 1:
            raise InputError("dense_size_steps and batch_step_above_64 must be >= 1")

    def gbm_params(self) -> dict[str, Any]:
        return {"max_depth": self.gbm_max_depth, "max_iter": self.gbm_max_iter,
                "learning_rate": self.gbm_learning_rate}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["forms"] = list(self.forms)
        if d["corun_only_form"] == _CORUN_ONLY_DEFAULT:  # added later: left out at its default so that the hashes
            del d["corun_only_form"]                     # of models saved before it (and their files) still hold
        return d



@dataclass(frozen=True, eq=False)
class LatencyModel:
    """A fitted latency model of one data set (device + mechanism)."""

    dataset: str
    device: str
    mechanism: str
    capacity: float  # partition capacity: 100 (MPS %), 7 (MIG slices), SM count
    options: FitOptions
    surfaces: Mapping[tuple[str, int], SoloSurface]
    coef: Mapping[str, tuple[float, ...]]  # interference form -> fitted coefficients (plain numbers)
    points_hash: str = ""
    corun_hash: str = ""
    data_hash: str = ""
    estimators: Mapping[str, Any] = field(default_factory=dict)  # comparison-only fits (gbm); never saved
    # form -> uncertainty.Predictive (calibrated quantiles of the slowdown; `stsched fit` calibrates and saves them)
    predictive: Mapping[str, Any] = field(default_factory=dict)
    # victim model -> probes.Adaptation (its sensitivity adapted to probe co-runs, `stsched fit --probe`)
    adapted: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_util(self) -> bool:
        """Whether the solo profile has L2 and DRAM utilisation (the forms of `options.forms` read them); a model
        without fits only `options.corun_only_form` to its co-runs."""
        return any(np.isfinite(s.points["l2_util"]).any() for s in self.surfaces.values()) and \
            any(np.isfinite(s.points["dram_util"]).any() for s in self.surfaces.values())

    @property
    def models(self) -> list[str]:
        return sorted({m for m, _ in self.surfaces})

    def surface(self, model: str, procs: int = 1) -> SoloSurface:
        try:
            return self.surfaces[(model, int(procs))]
        except KeyError:
            raise InputError(f"latency model {self.dataset!r} has no profile of model {model!r} with "
                             f"{procs} process(es) (models: {', '.join(self.models)})") from None


# ------------------------------------------------------------------------------------------------- fitting
def _frames(profiles: Any) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, Any]]:
    if isinstance(profiles, tuple):
        solo, corun = profiles
        return solo, corun, {}
    meta = getattr(profiles, "meta", None)
    info = {}
    if meta is not None:
        info = {"dataset": meta.name, "device": meta.device, "mechanism": meta.mechanism,
                "capacity": float(meta.partition_capacity)}
    return profiles.solo, getattr(profiles, "corun", None), info


def fit(profiles: Any, options: FitOptions = FitOptions(), *, dataset: str | None = None) -> LatencyModel:
    """Fit solo surfaces and interference forms to a `ProfileSet` (or a `(solo, corun)` pair of frames)."""
    from stsched.latency.persist import hash_corun, hash_points, combine_hash

    solo_raw, corun_raw, info = _frames(profiles)
    source = info.get("dataset", dataset or "profile")
    solo = clean_solo(solo_raw, f"{source} solo")
    mech = str(solo_raw["mechanism"].iloc[0]) if "mechanism" in solo_raw.columns else "mps"
    device = info.get("device") or (str(solo_raw["device"].iloc[0]) if "device" in solo_raw.columns else "unknown")
    capacity = info.get("capacity") or DEFAULT_CAPACITY.get(mech)
    if not capacity:  # sm (SM count), cpu (threads): the device's size is not in the rows
        capacity = float(solo["partition"].max())
        log.warning("%s: mechanism %r has no fixed capacity; taking the largest profiled partition (%g) -- pass a "
                    "ProfileSet whose meta.json gives partition_capacity (e.g. the SM count)", source, mech, capacity)
    surfaces = {}
    for key, pts in solo_points(solo).items():
        surfaces[key] = fit_surface(key[0], key[1], capacity, options.solo_form, pts, options.dense_size_steps,
                                    options.batch_step_above_64)
    points_hash = hash_points(surfaces, options)
    base = LatencyModel(dataset or info.get("dataset", "custom"), device, mech, capacity, options, surfaces, {},
                        points_hash)
    coef: dict[str, tuple[float, ...]] = {}
    estimators: dict[str, Any] = {}
    corun_hash = ""
    if corun_raw is not None and len(corun_raw):
        data = corun_data(base, corun_raw, f"{source} co-run")
        corun_hash = hash_corun(data.rows)
        if not base.has_util:
            log.info("%s: the solo profile has no %s: fitting the counter-free form %s to %d co-run row(s) (the "
                     "forms %s read utilisation and are not fitted)", source,
                     " / ".join(c for c in ("l2_util", "dram_util") if solo[c].isna().all()),
                     options.corun_only_form, len(data), ", ".join(options.forms))
        for name in fitted_forms(base):
            fitted = fit_form(name, data, loss=options.loss, f_scale=options.f_scale,
                              gbm_params=options.gbm_params(), seed=options.seed)
            (estimators if get_spec(name).fit == "gbm" else coef)[name] = fitted
    else:
        log.warning("%s: no co-run data; the model has no interference coefficients (form 'none')", source)
    return LatencyModel(base.dataset, device, mech, capacity, options, surfaces, coef, points_hash, corun_hash,
                        combine_hash(points_hash, corun_hash, options), estimators)


# ----------------------------------------------------------------------------------------------- prediction
def _broadcast(models, batch, size, procs) -> tuple[np.ndarray, ...]:
    m, b, p, k = np.broadcast_arrays(np.asarray(models, dtype=object), np.asarray(batch, dtype=float),
                                     np.asarray(size, dtype=float), np.asarray(procs, dtype=int))
    return m.ravel(), b.ravel(), p.ravel(), k.ravel()


def predict_values(model: LatencyModel, name: str, models, batch, size, procs=1, *, extrapolate: bool = False,
                   level: int = logging.WARNING) -> tuple[np.ndarray, np.ndarray]:
    """Surface `name` (log_latency as latency in ms, l2_util, dram_util, tput_ratio, elasticity) at the points;
    returns (values, covered).  Uncovered points are NaN, or extrapolated (with a warning naming the rule)."""
    m, b, p, k = _broadcast(models, batch, size, procs)
    if np.any(b < 1) or np.any(p <= 0) or np.any(~np.isfinite(b)) or np.any(~np.isfinite(p)):
        raise InputError("predict: batches must be >= 1 and sizes > 0")
    out = np.full(len(b), np.nan)
    keys = pd.MultiIndex.from_arrays([m, k])
    for (mm, kk), idx in pd.Series(np.arange(len(b)), index=keys).groupby(level=[0, 1]):
        surf = model.surface(str(mm), int(kk))
        ii = idx.to_numpy()
        if name == "log_latency":
            out[ii] = surf.latency(b[ii], p[ii])
        else:
            out[ii] = surf.value(name, b[ii], p[ii])
    covered = ~np.isnan(out)
    if extrapolate and not covered.all():
        rules: dict[str, int] = {}
        for i in np.nonzero(~covered)[0]:
            surf = model.surface(str(m[i]), int(k[i]))
            if name in surf.grids:
                out[i], rule = surf.extrapolate(name, float(b[i]), float(p[i]))
                rules[rule] = rules.get(rule, 0) + 1
        for rule, n in rules.items():
            log.log(level, "%s: %d point(s) outside the profiled range of %s extrapolated: %s", model.dataset, n,
                    name, rule)
    return out, covered


def predict(model: LatencyModel, models, batch, size, procs=1, *, extrapolate: bool = False) -> np.ndarray:
    """Solo latency (ms) of `models` at `batch` x `size` x `procs` (arrays broadcast).  NaN outside the
    profiled range, or with `extrapolate=True` the upper-bound extrapolation (a warning says which rule)."""
    values, covered = predict_values(model, "log_latency", models, batch, size, procs, extrapolate=extrapolate)
    if not extrapolate and not covered.all():
        log.warning("%s: %d of %d point(s) lie outside the profiled range: NaN (pass extrapolate=True for the "
                    "upper-bound rules)", model.dataset, int((~covered).sum()), len(covered))
    return values


def side_features(model: LatencyModel, models, batch, size, procs=1) -> Side:
    """Interference features of points (NaN where not covered; utilisation held from the nearest covered)."""
    m, b, p, k = _broadcast(models, batch, size, procs)
    lat, _ = predict_values(model, "log_latency", m, b, p, k)
    util = {n: predict_values(model, n, m, b, p, k, extrapolate=True, level=logging.DEBUG)[0]
            for n in ("l2_util", "dram_util")}
    el, _ = predict_values(model, "elasticity", m, b, p, k)
    return Side(util["l2_util"], util["dram_util"], p / model.capacity, lat, b, el)


def fitted_forms(model: LatencyModel) -> tuple[str, ...]:
    """The interference forms `fit` fits to this model's co-runs: `options.forms` when the solo profile has L2/DRAM
    utilisation, else `(options.corun_only_form,)` (the forms that read utilisation cannot be fitted)."""
    return tuple(model.options.forms) if model.has_util else (model.options.corun_only_form,)


def default_form(model: LatencyModel, carry: bool = False) -> str:
    """The form predictions (`options.form`) or instances (`options.carry_form`, carry=True) use; for a profile
    without utilisation, `options.corun_only_form`."""
    if not model.has_util:
        return model.options.corun_only_form
    return model.options.carry_form if carry else model.options.form


def corun_data(model: LatencyModel, corun: pd.DataFrame, source: str = "co-run data",
               require_util: bool | None = None) -> CorunData:
    """Features and measured slowdown of co-run rows; rows the model cannot place are skipped (named).
    `require_util` (default: whether the model's profile has utilisation) also skips rows whose sides have no
    solo L2/DRAM utilisation; without it their utilisation features are NaN (counter-free forms never read them)."""
    if require_util is None:
        require_util = model.has_util
    rows = clean_corun(corun, source)
    known = set(model.models)
    v = side_features(model, rows["victim"].where(rows["victim"].isin(known), model.models[0]).to_numpy(),
                      rows["victim_batch"].to_numpy(), rows["victim_partition"].to_numpy())
    o = side_features(model, rows["corunner"].where(rows["corunner"].isin(known), model.models[0]).to_numpy(),
                      rows["corunner_batch"].to_numpy(), rows["corunner_partition"].to_numpy())
    placed = (rows["victim"].isin(known) & rows["corunner"].isin(known)).to_numpy().copy()
    for side in (v, o):
        placed &= ~np.isnan(side.latency_ms) & ~np.isnan(side.elasticity)
    util = ~np.isnan(v.l2_util) & ~np.isnan(v.dram_util) & ~np.isnan(o.l2_util) & ~np.isnan(o.dram_util)
    if not require_util:
        util = np.ones(len(util), bool)
    ok = placed & util
    if not ok.all():
        from stsched.latency.features import _rows
        for mask, why in ((~placed, "whose victim or co-runner the model has no profile for at that batch/size"),
                          (placed & ~util, "whose victim or co-runner has no solo L2/DRAM utilisation")):
            if mask.any():
                log.warning("%s: skipped %d co-run row(s) %s: %s", source, int(mask.sum()), why,
                            _rows(rows.index, mask))
    if not ok.any():
        raise InputError("no co-run row matches the model's profiles (models: "
                         f"{', '.join(model.models)})", source=source)
    slow = rows["victim_latency_ms"].to_numpy() / v.latency_ms
    return CorunData(rows[ok], v.take(ok), o.take(ok), slow[ok])


def predict_slowdown(model: LatencyModel, data: CorunData, form: str | None = None) -> np.ndarray:
    """Predicted slowdown of every co-run row under `form` (default: the model's form, `default_form`; a model
    fitted without utilisation answers a request for `options.form`, which it could not fit, with its
    `options.corun_only_form`)."""
    name = form or default_form(model)
    if name == model.options.form and not model.has_util:
        name = default_form(model)
    fitted = model.coef.get(name, model.estimators.get(name))
    if fitted is not None:
        pred = predict_form(name, fitted, data)
        if model.adapted:  # victims probed by `stsched fit --probe`: their adapted sensitivity
            from stsched.latency.probes import apply_adaptations
            pred = apply_adaptations(dict(model.adapted), data, pred)
        return pred
    raise InputError(f"latency model {model.dataset!r} has no fitted form {name!r} "
                     f"(fitted: {', '.join([*model.coef, *model.estimators]) or 'none: no co-run data'})")


def solo_rows_predict(model: LatencyModel, solo: pd.DataFrame, source: str = "solo data",
                      extrapolate: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Cleaned solo rows of models the model knows, and their predicted latency (NaN when not covered)."""
    rows = clean_solo(solo, source)
    known = rows["model"].isin(model.models).to_numpy()
    if not known.all():
        log.warning("%s: skipped %d row(s) of models the latency model was not fitted on: %s", source,
                    int((~known).sum()), ", ".join(sorted(set(rows["model"][~known]))))
    rows = rows[known]
    pred = predict(model, rows["model"].to_numpy(), rows["batch"].to_numpy(), rows["partition"].to_numpy(),
                   rows["procs"].to_numpy(), extrapolate=extrapolate) if len(rows) else np.array([])
    return rows, pred


def model_names(models: Sequence[str]) -> list[str]:
    return [str(m).strip().lower() for m in models]
