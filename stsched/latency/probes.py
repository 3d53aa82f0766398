"""Few-shot probes for a model never co-run: which co-runs to measure, and how its predictions adapt to them.

The slowdown of an unseen victim departs from every form mostly through its own batch regime (and, on the
green-context data, its partition), hardly through the co-runner (issue 19; docs/LATENCY.md).  So:

- **plan** (`plan_probes`): the victim's points of the data set's co-run grid, (victim batch, victim partition),
  in the normalised coordinates x = (log2 batch / its span, partition / its span), each axis weighted by how much
  the other victims' measured slowdowns move along it (`axis_weights`); K points chosen greedily to
  minimise the summed L1 distance from every grid point to its nearest probe (a K-median design: a correction read
  at the nearest probe is then as close as K measurements allow for the whole grid).  The co-runner of each probe
  rotates over the grid's co-runner models (and their middle batch) so the probes do not all share one neighbour.
- **adapt** (`Adaptation`): the forms are refitted with the probe rows added, and the victim's sensitivity is
  adapted: its predicted excess slowdown I - 1 is scaled by a >= 0, the least-squares ratio of the probes' measured
  excess to their predicted excess (one number per victim: few probes cannot support more; a nearest-probe
  correction and a constant log shift were also tried on the same folds and were no better, docs/LATENCY.md).
- **read** (`read_probe_file`): a co-run file in any layout the importers read, checked row by row (unknown
  model, repeated row, non-positive latency: one line naming the row).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from stsched.errors import InputError
from stsched.latency.features import CorunData
from stsched.latency.interference_fit import fit_form, predict_form

log = logging.getLogger(__name__)

PROBE_KEYS = ("victim", "victim_batch", "victim_partition", "corunner", "corunner_batch", "corunner_partition")


@dataclass(frozen=True)
class ProbePoint:
    """One co-run to measure: the new model as victim at (batch, partition) beside a co-runner."""

    victim: str
    victim_batch: int
    victim_partition: float
    corunner: str
    corunner_batch: int
    corunner_partition: float

    def to_dict(self) -> dict[str, Any]:
        return {"victim": self.victim, "victim_batch": self.victim_batch, "victim_partition": self.victim_partition,
                "corunner": self.corunner, "corunner_batch": self.corunner_batch,
                "corunner_partition": self.corunner_partition}


@dataclass(frozen=True)
class Scale:
    """Probe coordinates: log2 batch and partition size, each divided by its span on the grid (0: axis unused)
    and multiplied by its weight (`axis_weights`)."""

    log2_batch_span: float
    partition_span: float
    batch_weight: float = 1.0
    partition_weight: float = 1.0

    @staticmethod
    def of(batch: np.ndarray, partition: np.ndarray, weights: tuple[float, float] = (1.0, 1.0)) -> "Scale":
        lb = np.log2(np.asarray(batch, float))
        p = np.asarray(partition, float)
        return Scale(float(lb.max() - lb.min()), float(p.max() - p.min()), *weights)

    def coords(self, batch, partition) -> np.ndarray:
        lb = np.log2(np.asarray(batch, float))
        p = np.asarray(partition, float)
        return np.column_stack([
            self.batch_weight * (lb / self.log2_batch_span if self.log2_batch_span > 0 else np.zeros_like(lb)),
            self.partition_weight * (p / self.partition_span if self.partition_span > 0 else np.zeros_like(p))])


def axis_weights(rows: pd.DataFrame, slowdown: np.ndarray) -> tuple[float, float]:
    """How much the measured slowdown of the data set's (other) victims moves along each probe axis: per victim,
    the spread (std) of its mean log slowdown across its batches, and across its partitions; averaged over the
    victims and scaled to sum to 2 ((1, 1) when nothing moves).  A grid whose slowdowns follow the victim's batch
    (the A100's) spreads its probes over batches first."""
    r = rows.assign(_l=np.log(np.asarray(slowdown, float)))
    wb, wp = [], []
    for _, g in r.groupby("victim"):
        wb.append(float(np.nan_to_num(g.groupby("victim_batch")["_l"].mean().std(ddof=0))))
        wp.append(float(np.nan_to_num(g.groupby("victim_partition")["_l"].mean().std(ddof=0))))
    b, p = (float(np.mean(w)) if w else 0.0 for w in (wb, wp))
    if b + p <= 0:
        return 1.0, 1.0
    return 2 * b / (b + p), 2 * p / (b + p)


def _distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L1 distances between the rows of a (n x 2) and b (m x 2): n x m."""
    return np.abs(a[:, None, :] - b[None, :, :]).sum(axis=2)


def k_median(points: np.ndarray, k: int) -> list[int]:
    """Indices of k of `points` chosen greedily to minimise the summed distance of all points to their nearest
    chosen one (ties: the lowest index)."""
    d = _distance(points, points)
    chosen: list[int] = []
    best = np.full(len(points), np.inf)
    for _ in range(min(k, len(points))):
        cost = np.minimum(best[:, None], d).sum(axis=0)
        cost[chosen] = np.inf
        j = int(np.argmin(cost))
        chosen.append(j)
        best = np.minimum(best, d[:, j])
    return chosen


def plan_probes(victim: str, grid: pd.DataFrame, k: int, covered: np.ndarray | None = None,
                weights: tuple[float, float] = (1.0, 1.0)) -> list[ProbePoint]:
    """K probe co-runs for `victim` on the co-run grid `grid` (rows with PROBE_KEYS; the victim column is ignored:
    every (victim_batch, victim_partition, corunner_partition) layout of the grid is a candidate, `covered` masks
    the rows whose victim point the new model's solo profile covers; `weights`: `axis_weights`)."""
    if k < 1:
        raise InputError(f"probe count must be >= 1, got {k}")
    g = grid if covered is None else grid[np.asarray(covered, bool)]
    if g.empty:
        raise InputError(f"no point of the co-run grid lies inside {victim}'s solo profile: it cannot be probed")
    layouts = g[["victim_batch", "victim_partition", "corunner_partition"]].drop_duplicates()
    layouts = layouts.sort_values(list(layouts.columns)).reset_index(drop=True)
    scale = Scale.of(layouts["victim_batch"], layouts["victim_partition"], weights)
    chosen = k_median(scale.coords(layouts["victim_batch"], layouts["victim_partition"]), k)
    corunners = sorted(g["corunner"].unique())
    out = []
    for i, j in enumerate(chosen):
        lay = layouts.iloc[j]
        at = g[(g["victim_batch"] == lay["victim_batch"]) & (g["victim_partition"] == lay["victim_partition"])
               & (g["corunner_partition"] == lay["corunner_partition"])]
        # rotate co-runners over the probes; take one measured beside this layout, at its middle batch
        order = corunners[i % len(corunners):] + corunners[:i % len(corunners)]
        co = next(c for c in order if (at["corunner"] == c).any())
        batches = np.sort(at.loc[at["corunner"] == co, "corunner_batch"].unique())
        out.append(ProbePoint(victim, int(lay["victim_batch"]), float(lay["victim_partition"]), str(co),
                              int(batches[(len(batches) - 1) // 2]), float(lay["corunner_partition"])))
    if len(out) < k:
        log.warning("%s: the grid has only %d distinct layout(s); %d probe(s) planned", victim, len(out), len(out))
    return out


def probe_mask(rows: pd.DataFrame, probes: Sequence[ProbePoint]) -> np.ndarray:
    """Which rows of a co-run table are the planned probes (exact grid points)."""
    mask = np.zeros(len(rows), bool)
    for p in probes:
        m = np.ones(len(rows), bool)
        for key, value in p.to_dict().items():
            col = rows[key].to_numpy()
            m &= (col == value) if key in ("victim", "corunner") else np.isclose(col.astype(float), value)
        mask |= m
    return mask


@dataclass(frozen=True)
class Adaptation:
    """A victim's adapted sensitivity: its predicted excess slowdown I - 1 scaled by `sensitivity` (least squares
    of the probes' measured excess on the refitted predicted excess, >= 0)."""

    victim: str
    sensitivity: float
    probes: int

    def apply(self, pred: np.ndarray) -> np.ndarray:
        return 1.0 + self.sensitivity * (np.asarray(pred, float) - 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"victim": self.victim, "sensitivity": self.sensitivity, "probes": self.probes}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "Adaptation":
        try:
            a = Adaptation(str(d["victim"]), float(d["sensitivity"]), int(d["probes"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"probe adaptation: bad or missing field ({e})") from None
        if not (np.isfinite(a.sensitivity) and a.sensitivity >= 0 and a.probes >= 1):
            raise InputError(f"probe adaptation of {a.victim}: sensitivity must be finite and >= 0, probes >= 1")
        return a


#: predicted excess slowdown below which a probe says nothing about the sensitivity
MIN_EXCESS = 1e-3


def adaptation_from(victim: str, measured: np.ndarray, pred: np.ndarray) -> Adaptation:
    """The victim's sensitivity from its probe rows' measured and (refitted) predicted slowdowns."""
    ex = np.asarray(pred, float) - 1.0
    if ex.max(initial=0.0) < MIN_EXCESS:
        log.warning("%s: the form predicts no slowdown at any probe: its sensitivity stays 1", victim)
        return Adaptation(victim, 1.0, len(ex))
    ex = np.maximum(ex, MIN_EXCESS)
    a = float(np.sum((np.asarray(measured, float) - 1.0) * ex) / np.sum(ex * ex))
    return Adaptation(victim, max(0.0, a), len(ex))


def probed_prediction(model, form: str, train: CorunData, held: CorunData, k: int, *,
                      chosen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Predictions of a held-out victim's rows after K probes: the probes planned on its own grid (or the rows
    `chosen`), the form refitted on `train` + probe rows, its sensitivity adapted to the probes.  Returns
    (predictions, mask of the probe rows)."""
    rows = held.rows
    victim = str(rows["victim"].iloc[0])
    if chosen is None:
        chosen = probe_mask(rows, plan_probes(victim, rows, k, weights=axis_weights(train.rows, train.slowdown)))
    opts = model.options
    fitted = fit_form(form, _concat(train, held.take(chosen)), loss=opts.loss, f_scale=opts.f_scale,
                      gbm_params=opts.gbm_params(), seed=opts.seed)
    pred = predict_form(form, fitted, held)
    return adaptation_from(victim, held.slowdown[chosen], pred[chosen]).apply(pred), chosen


def _concat(a: CorunData, b: CorunData) -> CorunData:
    from stsched.latency.features import Side
    fields = ("l2_util", "dram_util", "fraction", "latency_ms", "batch", "elasticity")

    def side(x: Side, y: Side) -> Side:
        return Side(*(np.concatenate([getattr(x, f), getattr(y, f)]) for f in fields))

    return CorunData(pd.concat([a.rows, b.rows]), side(a.victim, b.victim), side(a.other, b.other),
                     np.concatenate([a.slowdown, b.slowdown]))


def apply_adaptations(adapted: dict[str, Adaptation], data: CorunData, pred: np.ndarray) -> np.ndarray:
    """`pred` with each adapted victim's rows scaled by its sensitivity."""
    out = np.array(pred, float)
    victims = data.rows["victim"].to_numpy()
    for v, a in adapted.items():
        m = victims == v
        out[m] = a.apply(out[m])
    return out


def read_probe_file(path: str, known_models: Sequence[str], source: str | None = None) -> pd.DataFrame:
    """Co-run rows of a probe file (any layout `stsched.latency.sources` reads), checked before any use: every
    victim and co-runner must be a model of the data set, no (victim, batches, partitions, co-runner) point may
    repeat, every victim latency must be > 0.  One line naming the first bad row otherwise."""
    from stsched.latency.features import CORUN_REQUIRED
    from stsched.latency.sources import read_measurements

    src, _, corun = read_measurements(path, source)
    if corun is None or corun.empty:
        raise InputError(f"no co-run rows (layout {src}): a probe file holds co-run measurements", source=path)
    missing = [c for c in CORUN_REQUIRED if c not in corun.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", source=path)
    df = corun.reset_index(drop=True)
    known = set(known_models)
    for i, r in df.iterrows():
        for side in ("victim", "corunner"):
            name = str(r[side]).strip().lower()
            if name not in known:
                raise InputError(f"row {i + 1}: unknown {side} model {r[side]!r} (the data set's models: "
                                 f"{', '.join(sorted(known))})", source=path)
        lat = pd.to_numeric(pd.Series([r["victim_latency_ms"]]), errors="coerce").iloc[0]
        if not (np.isfinite(lat) and lat > 0):
            raise InputError(f"row {i + 1}: victim_latency_ms must be a positive number, got "
                             f"{r['victim_latency_ms']!r}", source=path)
    key = df[list(PROBE_KEYS)].assign(victim=df["victim"].astype(str).str.strip().str.lower(),
                                      corunner=df["corunner"].astype(str).str.strip().str.lower())
    dup = key.duplicated().to_numpy()
    if dup.any():
        i = int(np.nonzero(dup)[0][0])
        first = int(np.nonzero((key == key.iloc[i]).all(axis=1).to_numpy())[0][0])
        raise InputError(f"row {i + 1} repeats row {first + 1} (the same victim, co-runner, batches and "
                         f"partitions)", source=path)
    return df


def fit_with_probes(profiles, probes: pd.DataFrame, options=None):
    """A latency model refitted to a data set's co-runs plus probe rows, each probed victim the data set never
    co-ran as a victim getting its sensitivity adapted to its own probe rows (under the model's default form, refitted with them), and the predictive distributions
    calibrated (`uncertainty.with_predictive`)."""
    from dataclasses import replace

    from stsched.latency.evaluate import _Frames
    from stsched.latency.model import FitOptions, corun_data, default_form, fit
    from stsched.latency.uncertainty import with_predictive

    base = getattr(profiles, "corun", None)
    rows = probes[[c for c in probes.columns if base is None or c in base.columns]]
    corun = rows if base is None or base.empty else pd.concat([base, rows], ignore_index=True)
    model = fit(_Frames(profiles.solo, corun, getattr(profiles, "meta", None)), options or FitOptions())
    if not model.coef:
        raise InputError(f"{model.dataset}: no interference form could be fitted")
    form = default_form(model)
    adapted = {}
    seen = set() if base is None or base.empty else set(base["victim"].astype(str).str.strip().str.lower())
    for victim, g in probes.assign(victim=probes["victim"].astype(str).str.strip().str.lower()).groupby("victim"):
        if victim in seen:  # e.g. the other side of a probe co-run (the profiler records both): refit data only
            continue
        data = corun_data(model, g, f"probe rows of {victim}")
        adapted[str(victim)] = adaptation_from(str(victim), data.slowdown,
                                               predict_form(form, model.coef[form], data))
        log.info("%s: sensitivity %.3f from %d probe(s)", victim, adapted[str(victim)].sensitivity, len(data))
    return with_predictive(replace(model, adapted=adapted), corun)
