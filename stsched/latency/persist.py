"""Saving and loading a `LatencyModel` as plain JSON (numbers only, no pickles).

The file holds the format name and version, the fit options, the solo points every surface interpolates (so the
dense grids are rebuilt identically on load), the priors' and forms' coefficients, and three SHA-256 hashes:
`points_hash` (solo points + options), `corun_hash` (the co-run rows the forms were fitted on) and `data_hash`
(both + options).  `load` checks the format, the version, and recomputes `points_hash` and `data_hash` from the
file's own content, so an edited or truncated file is refused.  Comparison-only estimators (gbm) are not saved.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

import numpy as np
import pandas as pd

from stsched.errors import InputError
from stsched.io import read_json, write_json

FORMAT = "stsched-latency-model"
VERSION = 1
POINT_COLUMNS = ("batch", "size", "latency_ms", "l2_util", "dram_util", "tput_ratio")


def _canon(x: Any) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _num(v: float) -> float | None:
    return None if v is None or math.isnan(v) else float(v)


def _points_payload(surfaces, options) -> list[dict[str, Any]]:
    out = []
    for (model, procs) in sorted(surfaces):
        s = surfaces[(model, procs)]
        out.append({"model": model, "procs": int(procs), "form": s.form, "capacity": float(s.capacity),
                    "prior": [float(c) for c in s.prior],
                    "points": {c: [_num(float(v)) for v in s.points[c]] for c in POINT_COLUMNS}})
    return out


def hash_points(surfaces, options) -> str:
    return hashlib.sha256(_canon({"surfaces": _points_payload(surfaces, options),
                                  "options": options.to_dict()}).encode()).hexdigest()


def hash_corun(rows: pd.DataFrame) -> str:
    cols = ["victim", "victim_batch", "victim_partition", "corunner", "corunner_batch", "corunner_partition",
            "victim_latency_ms"]
    text = rows[cols].sort_values(cols).to_csv(index=False, float_format="%.17g", lineterminator="\n")
    return hashlib.sha256(text.encode()).hexdigest()


def combine_hash(points_hash: str, corun_hash: str, options) -> str:
    return hashlib.sha256(_canon([points_hash, corun_hash, options.to_dict()]).encode()).hexdigest()


def save(model, path: str | os.PathLike[str]) -> None:
    """Write `model` as JSON (atomically)."""
    import numpy
    import scipy
    skipped = sorted(model.estimators)
    payload = {
        "format": FORMAT, "version": VERSION, "dataset": model.dataset, "device": model.device,
        "mechanism": model.mechanism, "capacity": model.capacity, "options": model.options.to_dict(),
        "points_hash": model.points_hash, "corun_hash": model.corun_hash, "data_hash": model.data_hash,
        "interference": {name: [float(c) for c in coef] for name, coef in model.coef.items()},
        "not_saved": skipped,
        "fitted_with": {"numpy": numpy.__version__, "scipy": scipy.__version__},
        "surfaces": _points_payload(model.surfaces, model.options),
    }
    if model.predictive:  # calibrated slowdown quantiles (stsched.latency.uncertainty); absent in older files
        payload["predictive"] = {name: p.to_dict() for name, p in model.predictive.items()}
    if model.adapted:  # probed victims' sensitivities (stsched.latency.probes)
        payload["adapted"] = {name: a.to_dict() for name, a in model.adapted.items()}
    payload["content_sha256"] = hashlib.sha256(_canon(payload).encode()).hexdigest()
    write_json(path, payload)


def _predictive(raw: dict[str, Any]) -> dict[str, Any]:
    from stsched.latency.uncertainty import Predictive
    return {str(k): Predictive.from_dict(v) for k, v in (raw.get("predictive") or {}).items()}


def _adapted(raw: dict[str, Any]) -> dict[str, Any]:
    from stsched.latency.probes import Adaptation
    return {str(k): Adaptation.from_dict(v) for k, v in (raw.get("adapted") or {}).items()}


def _fail(path, what: str) -> InputError:
    return InputError(what, source=str(path))


def load(path: str | os.PathLike[str]):
    """Read a model written by `save`; refuses other formats, versions, and content that fails its hash."""
    from stsched.latency.model import FitOptions, LatencyModel
    from stsched.latency.solo import SoloSurface

    raw = read_json(path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _fail(path, f"not a latency model file (format {raw.get('format') if isinstance(raw, dict) else None!r}"
                          f", expected {FORMAT!r})")
    if raw.get("version") != VERSION:
        raise _fail(path, f"latency model format version {raw.get('version')!r} is not supported (this stsched "
                          f"reads version {VERSION})")
    body = {k: v for k, v in raw.items() if k != "content_sha256"}
    try:
        digest = hashlib.sha256(_canon(body).encode()).hexdigest()
    except (TypeError, ValueError):
        digest = None
    if digest != raw.get("content_sha256"):
        raise _fail(path, "content does not match content_sha256 (file edited or damaged)")
    try:
        opts = dict(raw["options"])
        opts["forms"] = tuple(opts["forms"])
        options = FitOptions(**opts)
        surfaces = {}
        for s in raw["surfaces"]:
            pts = {c: np.array([math.nan if v is None else float(v) for v in s["points"][c]]) for c in POINT_COLUMNS}
            if len({len(v) for v in pts.values()}) != 1 or not len(pts["batch"]):
                raise _fail(path, f"surfaces[{s['model']}, procs {s['procs']}]: point columns differ in length")
            surfaces[(str(s["model"]), int(s["procs"]))] = SoloSurface(
                str(s["model"]), int(s["procs"]), float(s["capacity"]), str(s["form"]),
                tuple(float(c) for c in s["prior"]), pts, options.dense_size_steps, options.batch_step_above_64)
        coef = {str(k): tuple(float(c) for c in v) for k, v in raw["interference"].items()}
        model = LatencyModel(str(raw["dataset"]), str(raw["device"]), str(raw["mechanism"]), float(raw["capacity"]),
                             options, surfaces, coef, str(raw["points_hash"]), str(raw["corun_hash"]),
                             str(raw["data_hash"]), predictive=_predictive(raw), adapted=_adapted(raw))
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as e:
        raise _fail(path, f"malformed latency model ({type(e).__name__}: {e})") from None
    if hash_points(model.surfaces, options) != model.points_hash:
        raise _fail(path, "solo points or options do not match points_hash (file edited or damaged)")
    if combine_hash(model.points_hash, model.corun_hash, options) != model.data_hash:
        raise _fail(path, "data_hash does not match the file's content (file edited or damaged)")
    for name, coef in model.coef.items():
        from stsched.latency.forms import get_spec
        spec = get_spec(name)
        if spec.n_coef != len(coef) or not all(math.isfinite(c) for c in coef):
            raise _fail(path, f"interference.{name}: expected {spec.n_coef} finite coefficients")
    return model
