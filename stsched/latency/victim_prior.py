"""The victim-level shift of a model never co-run, as a random effect with a population prior (issue 19).

Why the old calibration under-covered: a form's log residual for a new victim is r = u_v + e, a victim-level shift
u_v (a median of +5.5 % for the A100's densenet121, +3.8 % for the V100's alexnet) plus a within-victim spread e.
The old predictive added the *largest* |shift| seen among the calibration folds to the within quantile.  With one
to three calibration victims per data set (nested leave-one-victim-out: the A100 keeps one, the V100 two) that
maximum is a sample of one to three draws of |u|, and on the V100 both shifts a fold sees are below 0.005 while the
held-out alexnet's is 0.038: the spread of victim shifts is under-estimated whenever the folds are few.

The fix: u_v is a draw from a population of victim shifts with scale tau, estimated from every victim shift
measured without the victim's own co-runs -- the calibration data's own victims (its leave-one-victim-out folds)
*and* the victims of the shipped data sets (`data/interference/victim_shifts.csv`, each shift computed
leave-one-victim-out on its own data set with that set's default form; a data set never borrows its own rows).
With K shifts (zero-mean: a form fitted to all victims centres them), tau^2 = mean(shift^2) and a new shift is
predicted by the Student-t prediction tau * t_K (exact for normal shifts of zero mean).  The predictive
distribution of r is that t convolved with the empirical within-victim distribution (the calibration's
group-centred out-of-fold residuals), evaluated at `uncertainty.LEVELS`.  No knob is tuned: tau, K and the
within distribution come from the data; the population is whatever victims are shipped.

What it cannot fix: a victim whose *within* spread is unlike any calibration victim's (the A100's densenet121:
centred log residuals q90 0.22 against resnet50's 0.07, bimodal at the same batch and partition) stays
under-covered -- no victim in the population shows such a spread (docs/LATENCY.md).

`population_shifts(exclude)` reads the shipped table; `victim_shift_rows(dataset)` recomputes one data set's rows
(`python experiments/interference_eval.py --section population` rewrites the table; a test checks one data set's
rows against the recomputation).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import special, stats

log = logging.getLogger(__name__)

POPULATION_FILE = Path("interference") / "victim_shifts.csv"
POPULATION_COLUMNS = ("dataset", "victim", "form", "shift", "n_rows")
#: the within-victim sample is reduced to this many evenly spaced order statistics before the convolution
WITHIN_POINTS = 300
#: bisection steps per level (the bracket, the within sample's range, shrinks 2^-40-fold)
BISECTIONS = 40


@dataclass(frozen=True)
class VictimShift:
    """One victim's median out-of-fold log residual ln(measured / predicted), the form fitted without its rows."""

    dataset: str
    victim: str
    form: str
    shift: float
    n_rows: int


def population_path() -> Path:
    from stsched.data.loaders import data_dir
    return data_dir() / POPULATION_FILE


def read_population(path: Path | None = None) -> list[VictimShift]:
    """The shipped victim shifts (empty, with a log line, when the table is absent)."""
    path = population_path() if path is None else Path(path)
    if not path.is_file():
        log.info("no victim-shift population at %s: victim shifts are estimated from the data alone", path)
        return []
    from stsched.errors import InputError
    out = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                out.append(VictimShift(row["dataset"], row["victim"], row["form"], float(row["shift"]),
                                       int(row["n_rows"])))
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(f"row {i}: bad victim shift ({e})", source=str(path)) from None
            if not np.isfinite(out[-1].shift):
                raise InputError(f"row {i}: shift must be finite, got {row['shift']!r}", source=str(path))
    return out


def population_shifts(exclude_dataset: str | None, path: Path | None = None) -> tuple[float, ...]:
    """The shipped victim shifts of every data set but `exclude_dataset` (whose own victims the calibration
    measures itself, without the victim it holds out)."""
    return tuple(s.shift for s in read_population(path) if s.dataset != exclude_dataset)


def held_out_victims(model, corun, form: str) -> list[tuple[str, Any, np.ndarray]]:
    """`form` fitted leave-one-victim-out on the co-runs of a fitted latency model: per victim (name, its co-run
    data, the prediction for its rows from a fit on every other victim)."""
    from stsched.latency.evaluate import fit_predict
    from stsched.latency.model import corun_data

    data = corun_data(model, corun)
    victims = data.rows["victim"].to_numpy()
    out = []
    for v in np.unique(victims):
        test = victims == v
        held = data.take(test)
        out.append((str(v), held, fit_predict(form, data.take(~test), held, model.options)))
    return out


def victim_shift_rows(dataset: str) -> list[VictimShift]:
    """Recompute a shipped data set's victim shifts: its default form fitted leave-one-victim-out."""
    from stsched.data.loaders import load_profile
    from stsched.latency.model import default_form, fit

    prof = load_profile(dataset)
    model = fit(prof)
    form = default_form(model)
    held = held_out_victims(model, prof.corun, form)
    return [VictimShift(dataset, v, form, float(np.median(np.log(data.slowdown / pred))), len(pred))
            for v, data, pred in held]


def write_population(rows: Sequence[VictimShift], path: Path | None = None) -> Path:
    path = population_path() if path is None else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(POPULATION_COLUMNS)
        for s in rows:
            w.writerow([s.dataset, s.victim, s.form, repr(s.shift), s.n_rows])
    return path


@dataclass(frozen=True)
class VictimEffect:
    """The t prediction of a new victim's shift: scale * t_df, scale = tau = sqrt(mean(shift^2)) over K shifts
    of zero mean, df = K (under normal shifts a new one / tau is exactly t_K distributed)."""

    scale: float
    df: int

    @staticmethod
    def of(shifts: Sequence[float]) -> "VictimEffect | None":
        s = np.asarray([x for x in shifts if np.isfinite(x)], float)
        if not len(s):
            return None
        return VictimEffect(float(np.sqrt(np.mean(s * s))), len(s))


def convolved_quantiles(within: np.ndarray, effect: VictimEffect, levels: Sequence[float]) -> tuple[float, ...]:
    """Quantiles at `levels` of u + e, u = effect.scale * t_df and e drawn from the sample `within` (its empirical
    distribution); non-decreasing.  With a zero scale: the sample's own quantiles."""
    w = np.sort(np.asarray(within, float))
    if len(w) > WITHIN_POINTS:
        w = np.quantile(w, (np.arange(WITHIN_POINTS) + 0.5) / WITHIN_POINTS)
    if effect.scale <= 0:
        return tuple(float(x) for x in np.maximum.accumulate(np.quantile(w, levels)))
    lv = np.asarray(levels, float)
    t = stats.t.ppf(lv, effect.df) * effect.scale
    lo, hi = w[0] + t, w[-1] + t  # F(lo) <= level <= F(hi): every draw of e lies in [w[0], w[-1]]
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        below = special.stdtr(effect.df, (mid[:, None] - w[None, :]) / effect.scale).mean(axis=1) < lv
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return tuple(float(v) for v in np.maximum.accumulate(0.5 * (lo + hi)))
