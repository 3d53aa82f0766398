"""The interference forms the latency model fits and compares, evaluated on arrays of co-run rows.

| form | from | coefficients | an Instance can carry it |
|---|---|---|---|
| `gpulet-linear` | gpulet (Choi et al., ATC'22), `interference_model.cpp` | 5, ordinary least squares | yes |
| `igniter` | iGniter (Xu et al., TPDS'23), `igniter-algorithm.py` | 2, >= 0 | yes |
| `stsched-contention` | this project, per-entry features only | 3, >= 0 | yes |
| `stsched-regime` | this project, plus the SM elasticity of the solo surface | 3, >= 0 | yes (tables carry `sm_elasticity`) |
| `stsched-elastic` | this project, counter-free: SM elasticity + the neighbour's SM share (no L2/DRAM) | 2, >= 0 | yes |
| `gbm` | scikit-learn gradient boosting on the regime features | a tree ensemble | no (comparison only) |

Carryable forms are registered in `stsched.interference`; they are evaluated here by calling the very same
registered pair function with array-valued features (`features.Side` duck-types `interference.Features`), so the
checker and the fit can never disagree.  `gpulet-linear`'s registered function uses Python's `max` and gets a
vectorised twin here that a test keeps equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from stsched.errors import InputError
from stsched.interference import FORMS, get_form
from stsched.latency.features import Side

Evaluator = Callable[[Sequence[float], Side, Side], np.ndarray]


def _gpulet_linear(c: Sequence[float], v: Side, o: Side) -> np.ndarray:
    """gpulet's linear form, vectorised (same as stsched.interference._gpulet_linear)."""
    value = (c[0] * v.l2_util * v.fraction + c[1] * o.l2_util * o.fraction + c[2] * v.dram_util * v.fraction
             + c[3] * o.dram_util * o.fraction + c[4])
    return np.maximum(1.0, value)


def gpulet_design(v: Side, o: Side) -> np.ndarray:
    """gpulet's regressors (its INT_MODEL_CONSTANT order: l2 self, l2 other, dram self, dram other, constant)."""
    return np.column_stack([v.l2_util * v.fraction, o.l2_util * o.fraction, v.dram_util * v.fraction,
                            o.dram_util * o.fraction, np.ones_like(v.fraction)])


def _registered(name: str) -> Evaluator:
    form = get_form(name)

    def evaluate(c: Sequence[float], v: Side, o: Side) -> np.ndarray:
        return np.asarray(form.pair(c, v, o), dtype=float)  # type: ignore[arg-type]

    return evaluate


@dataclass(frozen=True)
class FormSpec:
    """How to fit one interference form.  What the form is (its coefficient count, whether it reads L2/DRAM
    utilisation, its description) is stated once, where it is registered (`stsched.interference.FORMS`); a form
    that is not registered there (gbm) cannot be carried by an Instance and states those facts here."""

    name: str
    fit: str  # "ols" (gpulet's own regression), "lsq" (bounded least squares on relative error), "gbm"
    lower: tuple[float, ...] = ()
    upper: tuple[float, ...] = ()
    init: tuple[float, ...] = ()
    needs_elasticity: bool = False
    vectorised: Evaluator | None = None  # an array twin of the registered pair function, where that one is scalar
    unregistered_description: str = ""  # only for forms an Instance cannot carry

    @property
    def carryable(self) -> bool:
        """Registered in `stsched.interference`, so an Instance can carry it."""
        return self.name in FORMS

    @property
    def evaluate(self) -> Evaluator | None:
        """Slowdown on arrays of co-run rows (None: a fitted estimator, gbm)."""
        if self.vectorised is not None or not self.carryable:
            return self.vectorised
        return _registered(self.name)

    @property
    def n_coef(self) -> int:
        return int(FORMS[self.name].n_coef or 0) if self.carryable else 0

    @property
    def needs_util(self) -> bool:
        """Reads solo L2/DRAM utilisation (False: fits profiles without Nsight counters)."""
        return FORMS[self.name].reads_util if self.carryable else True

    @property
    def description(self) -> str:
        return FORMS[self.name].description if self.carryable else self.unregistered_description


INF = float("inf")
FORM_SPECS: dict[str, FormSpec] = {
    "gpulet-linear": FormSpec("gpulet-linear", "ols", vectorised=_gpulet_linear),
    "igniter": FormSpec("igniter", "lsq", (0.0, 0.0), (INF, INF), (0.1, 0.1)),
    "stsched-contention": FormSpec("stsched-contention", "lsq", (0.0, 0.0, 0.0), (INF, INF, INF), (0.1, 0.1, 0.1)),
    "stsched-regime": FormSpec("stsched-regime", "lsq", (0.0, 0.0, 0.0), (INF, INF, INF), (0.1, 0.1, 0.1),
                               needs_elasticity=True),
    "stsched-elastic": FormSpec("stsched-elastic", "lsq", (0.0, 0.0), (INF, INF), (0.05, 0.1),
                                needs_elasticity=True),
    "gbm": FormSpec("gbm", "gbm", needs_elasticity=True,
                    unregistered_description="gradient boosting on elasticity, L2, DRAM, fractions of both sides"),
}


def get_spec(name: str) -> FormSpec:
    try:
        return FORM_SPECS[name]
    except KeyError:
        raise InputError(f"unknown interference form {name!r} (known: {', '.join(FORM_SPECS)})") from None


def gbm_design(v: Side, o: Side) -> np.ndarray:
    """Physically meaningful regressors of the gbm comparison form."""
    return np.column_stack([np.clip(v.elasticity, 0, 1), np.clip(o.elasticity, 0, 1), v.l2_util, v.dram_util,
                            o.l2_util, o.dram_util, v.fraction, o.fraction])
