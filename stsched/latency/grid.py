"""A fitted latency model evaluated on an instance's grid: plain `LatencyTable`s and an `Interference`.

Solvers, the checker and the simulator never see the model: they read the tables and the carried form.
- `tables_for(model, models, batches, sizes, procs)`: one table per model, one entry per covered grid point with
  predicted latency, throughput per process (where the profile has throughput), and solo L2/DRAM utilisation.
  Points outside the profiled range are left out (as in a measured table: not profiled = not offered); with
  `extrapolate=True` they are filled by the upper-bound rules of `solo.EXTRAPOLATION_RULES`, with a warning.
- `interference_for(model)`: the form an Instance carries (default `options.carry_form`, or
  `options.corun_only_form` for a profile without L2/DRAM utilisation; a form registered in
  `stsched.interference` and evaluable from `Features` alone) and its coefficients.
- `interference_for(model, quantile=Q)`: the form's `@quantile` twin carrying the Q-quantile factor of its
  calibrated predictive distribution (`stsched.latency.uncertainty`).
- `with_model(instance, model)`: the same instance with its tables and interference re-evaluated from the model.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Sequence

import numpy as np

from stsched.errors import InputError
from stsched.interference import get_form
from stsched.latency.forms import get_spec
from stsched.latency.model import LatencyModel, default_form, model_names, predict_values
from stsched.problem import Instance, Interference, LatencyTable, ProfileEntry

log = logging.getLogger(__name__)


def tables_for(model: LatencyModel, models: Sequence[str], batches: Sequence[int], sizes: Sequence[float],
               procs: Sequence[int] = (1,), *, extrapolate: bool = False) -> tuple[LatencyTable, ...]:
    """Latency tables of `models` evaluated on batches x sizes x procs (one vectorised call per quantity)."""
    names = list(dict.fromkeys(model_names(models)))
    if not names or not len(batches) or not len(sizes) or not len(procs):
        raise InputError("tables_for: models, batches, sizes and procs must be non-empty")
    for name in names:
        if name not in model.models:
            raise InputError(f"latency model {model.dataset!r} has no profile of model {name!r} "
                             f"(models: {', '.join(model.models)})")
    want_procs = [int(k) for k in procs]
    keys = [(m, k) for m in names for k in want_procs if (m, k) in model.surfaces]
    missing = [m for m in names if not any((m, k) in model.surfaces for k in want_procs)]
    if missing:
        raise InputError(f"latency model {model.dataset!r} has no profile of {', '.join(missing)} with "
                         f"{want_procs} process(es)")
    b, p = np.meshgrid(np.asarray(batches, float), np.asarray(sizes, float), indexing="ij")
    b, p = b.ravel(), p.ravel()
    n = len(b)
    mm = np.repeat(np.array([m for m, _ in keys], dtype=object), n)
    kk = np.repeat(np.array([k for _, k in keys]), n)
    bb, pp = np.tile(b, len(keys)), np.tile(p, len(keys))
    lat, covered = predict_values(model, "log_latency", mm, bb, pp, kk, extrapolate=extrapolate)
    if not covered.all() and not extrapolate:
        log.info("%s: %d of %d grid point(s) lie outside the profiled range and are left out of the tables",
                 model.dataset, int((~covered).sum()), len(covered))
    keep = np.isfinite(lat) & (lat > 0)
    mm, kk, bb, pp, lat = mm[keep], kk[keep], bb[keep], pp[keep], lat[keep]
    # utilisation where only the latency was profiled (V100: 10 % and 100 %) holds the nearest profiled value
    util = {c: predict_values(model, c, mm, bb, pp, kk, extrapolate=True, level=logging.INFO)[0]
            for c in ("l2_util", "dram_util", "tput_ratio", "elasticity")}
    tput = util["tput_ratio"] * 1000.0 * bb / lat
    by_model: dict[str, list[ProfileEntry]] = {m: [] for m in names}
    l2, dram, elas = util["l2_util"], util["dram_util"], util["elasticity"]
    for i in range(len(lat)):
        by_model[mm[i]].append(ProfileEntry(
            int(bb[i]), float(pp[i]), int(kk[i]), float(lat[i]),
            float(tput[i]) if np.isfinite(tput[i]) and tput[i] > 0 else None,
            float(np.clip(l2[i], 0.0, 1.0)) if np.isfinite(l2[i]) else None,
            float(np.clip(dram[i], 0.0, 1.0)) if np.isfinite(dram[i]) else None,
            float(np.clip(elas[i], 0.0, 1.0)) if np.isfinite(elas[i]) else None))
    empty = [m for m, e in by_model.items() if not e]
    if empty:
        raise InputError(f"no grid point lies inside the profiled range of {', '.join(empty)} (batches "
                         f"{list(batches)}, sizes {list(sizes)}, procs {want_procs})")
    return tuple(LatencyTable(m, tuple(e)) for m, e in by_model.items())


def interference_for(model: LatencyModel, form: str | None = None, quantile: float | None = None) -> Interference:
    """The interference an Instance carries: a registered, Features-evaluable form and its coefficients (default
    `options.carry_form`; for a profile without L2/DRAM utilisation, the counter-free `options.corun_only_form`)."""
    name = form or default_form(model, carry=True)
    if not model.coef:
        log.warning("latency model %s has no co-run data: instances carry no interference", model.dataset)
        return Interference("none")
    spec = get_spec(name)
    if not spec.carryable:
        raise InputError(f"form {name!r} needs features an Instance does not carry (the SM elasticity); "
                         f"carryable forms: {', '.join(n for n in model.coef if get_spec(n).carryable)}")
    if name not in model.coef:
        raise InputError(f"latency model {model.dataset!r} has no fitted form {name!r}")
    get_form(name)  # registered in stsched.interference: the checker can evaluate it
    if quantile is not None:  # the form's quantile twin, its calibrated log factor appended (issue 19)
        from stsched.interference import QUANTILE_SUFFIX
        if name not in model.predictive:
            raise InputError(f"latency model {model.dataset!r} has no predictive distribution of {name!r} (refit it "
                             f"with `stsched fit`; calibrated: {', '.join(model.predictive) or 'none'})")
        factor = float(model.predictive[name].log_factor(quantile))
        return Interference(get_form(name + QUANTILE_SUFFIX).name, (*model.coef[name], factor))
    return Interference(name, tuple(model.coef[name]))


def with_model(instance: Instance, model: LatencyModel, *, form: str | None = None,
               extrapolate: bool = False, quantile: float | None = None) -> Instance:
    """`instance` with tables (its services' models x its batches x its mechanism's sizes x procs options) and
    interference evaluated from `model`."""
    models = [s.model for s in instance.services]
    tables = tables_for(model, models, instance.batches, instance.mechanism.sizes, instance.procs_options(),
                        extrapolate=extrapolate)
    return replace(instance, tables=tables, interference=interference_for(model, form, quantile))


build_tables = tables_for
