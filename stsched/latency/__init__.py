"""The latency model: solo latency L_s(b, p) for any batch and partition size, and the interference slowdown
I_s >= 1 from features profiled once per model.  Fit once, evaluate on an instance's grid, hand plain tables on.

Public API:
- `fit(profiles, options) -> LatencyModel`, `FitOptions`
- `predict(model, models, batch, size, procs=1, extrapolate=False)` (vectorised), `predict_slowdown`,
  `corun_data`, `side_features`
- `evaluate(model, data) -> DataFrame` and the honest splits in `stsched.latency.evaluate`
- `save(model, path)`, `load(path)` (JSON with content hashes and a format/version check)
- `tables_for(model, models, batches, sizes, procs=(1,))`, `interference_for(model)`, `with_model(instance, model)`
See docs/LATENCY.md.
"""

from stsched.latency.evaluate import evaluate
from stsched.latency.grid import build_tables, interference_for, tables_for, with_model
from stsched.latency.model import (FitOptions, LatencyModel, corun_data, fit, predict, predict_slowdown,
                                   side_features)
from stsched.latency.persist import load, save

__all__ = ["FitOptions", "LatencyModel", "fit", "predict", "predict_slowdown", "corun_data", "side_features",
           "evaluate", "save", "load", "tables_for", "build_tables", "interference_for", "with_model"]
