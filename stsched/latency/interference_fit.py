"""Fitting the interference forms of `forms.py` to co-run data, and predicting slowdowns with them.

- `gpulet-linear` is fitted the way gpulet fits it: ordinary least squares of the slowdown on its five regressors.
- The parametric forms minimise the relative error `pred / measured - 1` with bounded least squares
  (scipy.optimize.least_squares; loss and its scale are `FitOptions` fields, a robust soft-L1 by default because
  the launch-bound A100 points scatter by +-15 % between near-identical runs).
- `gbm` (comparison only) is scikit-learn's HistGradientBoostingRegressor on log slowdown.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from stsched.errors import InputError
from stsched.latency.features import CorunData
from stsched.latency.forms import gbm_design, get_spec, gpulet_design

log = logging.getLogger(__name__)


def fit_form(name: str, data: CorunData, *, loss: str = "soft_l1", f_scale: float = 0.05,
             gbm_params: dict[str, Any] | None = None, seed: int = 0) -> tuple[float, ...] | Any:
    """Coefficients of form `name` fitted to `data` (a fitted estimator for gbm)."""
    spec = get_spec(name)
    y = data.slowdown
    if len(y) < max(spec.n_coef, 2):
        raise InputError(f"form {name}: {len(y)} co-run rows are too few to fit {spec.n_coef} coefficients")
    if spec.fit == "ols":
        coef, *_ = np.linalg.lstsq(gpulet_design(data.victim, data.other), y, rcond=None)
        return tuple(float(c) for c in coef)
    if spec.fit == "gbm":
        from sklearn.ensemble import HistGradientBoostingRegressor
        est = HistGradientBoostingRegressor(random_state=seed, **(gbm_params or {}))
        return est.fit(gbm_design(data.victim, data.other), np.log(y))
    assert spec.evaluate is not None
    ev, v, o = spec.evaluate, data.victim, data.other
    result = least_squares(lambda c: ev(c, v, o) / y - 1.0, np.asarray(spec.init, float),
                           bounds=(np.asarray(spec.lower), np.asarray(spec.upper)), loss=loss, f_scale=f_scale)
    if not result.success:
        log.warning("form %s: least squares did not converge (%s)", name, result.message)
    return tuple(float(c) for c in result.x)


def predict_form(name: str, fitted: tuple[float, ...] | Any, data: CorunData) -> np.ndarray:
    """Predicted slowdown (>= 1) of every row of `data` under form `name` with `fitted` coefficients."""
    spec = get_spec(name)
    if spec.fit == "gbm":
        return np.maximum(1.0, np.exp(fitted.predict(gbm_design(data.victim, data.other))))
    assert spec.evaluate is not None
    return np.maximum(1.0, spec.evaluate(fitted, data.victim, data.other))
