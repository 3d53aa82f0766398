"""Latency model comparison on honest splits: solo interpolation to unprofiled sizes/batches, interference on
unseen victim models and unseen pairs, the measurement noise floor, and the table-evaluation speed.

    .venv/bin/python experiments/latency_eval.py [--fresh]

Writes results/latency/{solo,slowdown}.csv (resumable), results/latency/summary.md and
results/latency/pred_vs_measured.png.  Every number is computed here from the shipped data
(data/profiles/{a100-mps,v100-mps,a100-mig,h200-sm,h100-sm}); no split is used to choose anything (forms and
options are fixed in stsched.latency before this script runs).  h200-sm and h100-sm, measured by this project on
the same grid, have no L2/DRAM utilisation, so their co-runs are summarised as measured slowdowns and scored
against the counter-free form stsched-elastic (the only one that reads no utilisation; held out by layout, victim,
co-runner, pair, and across the two GPUs, beside the constant and no-interference baselines), beside the same pairs on the whole GPU (two streams, raw/gpu_*.csv) and, where one
exists, the solo grid's repeat (h200-sm raw/run1/).  Across the two GPUs: a model fitted on one predicts the
other's solo grid, the other's co-run slowdowns are compared as measured, and the solo latencies side by side.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from itertools import permutations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.common import Study, markdown_table, results_dir, run_grid, run_study, study_args  # noqa: E402
from stsched.data.loaders import load_profile, read_corun_csv, read_solo_csv  # noqa: E402
from stsched.latency import FitOptions, fit, tables_for  # noqa: E402
from stsched.latency.evaluate import (_Frames, batch_holdout, error_stats, in_sample,  # noqa: E402
                                      leave_one_group_out, leave_one_model_out, leave_one_pair_out,
                                      measured_slowdowns, repeat_noise, size_holdout, transfer)
from stsched.latency.interference_fit import fit_form, predict_form  # noqa: E402
from stsched.latency.model import corun_data, solo_rows_predict  # noqa: E402
from stsched.latency.solo import SOLO_FORMS  # noqa: E402

log = logging.getLogger("latency_eval")
STUDY = Study("latency_eval", "latency model on honest splits: solo interpolation, interference, noise floor",
              typical="15 min", results="latency", quick="the splits of the first data set of each grid only")
EXP = "latency"
INTERFERENCE_FORMS = ("gpulet-linear", "igniter", "stsched-contention", "stsched-regime", "gbm")


def _loo(sizes, interior):
    return [(f"leave-one-size-out {s:g}", "size", tuple(x for x in sizes if x != s)) for s in interior]


#: (label, axis, values kept for training); held out = the other profiled values strictly inside their range
SOLO_SPLITS = {
    "a100-mps": [("sizes {20,40,60,100} -> {50,80}", "size", (20, 40, 60, 100)),
                 *_loo((20, 40, 50, 60, 80, 100), (40, 50, 60, 80)),
                 ("batches {1,4,16,64} -> {2,8,32}", "batch", (1, 4, 16, 64))],
    "v100-mps": [("sizes {20,40,60,80} -> {50}", "size", (20, 40, 60, 80)),
                 ("sizes {20,50,80} -> {40,60}", "size", (20, 50, 80)),
                 *_loo((20, 40, 50, 60, 80), (40, 50, 60)),
                 ("batches {1,2,4,8,16,32} -> the other 26", "batch", (1, 2, 4, 8, 16, 32))],
    "a100-mig": [("slices {1,2,4,7} -> {3}", "size", (1, 2, 4, 7)),
                 ("batches {1,4,16,64,256} -> {2,8,32,128}", "batch", (1, 4, 16, 64, 256))],
}
#: measured by this project (scripts/gpu_check.sh, green contexts, the same grid): no L2/DRAM utilisation, so no
#: interference form can be fitted; each gets the same splits
MEASURED = {"h200-sm": "H200", "h100-sm": "H100"}
SM_SPLITS = [("SMs {16,32,64,132} -> {48,96}", "size", (16, 32, 64, 132)),
             *_loo((16, 32, 48, 64, 96, 132), (32, 48, 64, 96)),
             ("batches {1,4,16,32} -> {2,8}", "batch", (1, 4, 16, 32)),
             ("batches {1,2,8,32} -> {4,16}", "batch", (1, 2, 8, 32))]
SOLO_SPLITS.update({ds: SM_SPLITS for ds in MEASURED})
CORUN_SETS = ("a100-mps", "v100-mps")
#: the counter-free form fitted to the measured sets' co-runs, against the trivial baselines (evaluate.BASELINES)
SM_CORUN_FORMS = ("stsched-elastic", "constant", "none")
SM_CORUN_SPLITS = ("in-sample", "leave-one-layout-out", "leave-one-model-out", "leave-one-corunner-out",
                   "leave-one-pair-out", *(f"fitted on {ds}" for ds in MEASURED))


def solo_point(p) -> dict:
    prof = load_profile(p["dataset"])
    split = next(s for s in SOLO_SPLITS[p["dataset"]] if s[0] == p["split"])
    fn = size_holdout if split[1] == "size" else batch_holdout
    (r,) = fn(prof, split[2], FitOptions(), solo_forms=(p["form"],))
    return {k: r[k] for k in ("n", "mape", "p50", "p90", "p99", "max")}


_MODELS: dict[str, object] = {}


def _model(ds: str):
    if ds not in _MODELS:
        _MODELS[ds] = fit(load_profile(ds))
    return _MODELS[ds]


def _constant(model, corun, split: str) -> dict:
    """Reference: predict the median training slowdown for every row."""
    data = corun_data(model, corun)
    v, o = data.rows["victim"].to_numpy(), data.rows["corunner"].to_numpy()
    groups = v if split == "leave-one-model-out" else np.array(["|".join(sorted(x)) for x in zip(v, o)])
    pred = np.empty(len(data))
    for g in np.unique(groups):
        pred[groups == g] = np.median(data.slowdown[groups != g])
    return error_stats(pred, data.slowdown)


def corun_point(p) -> dict:
    prof = load_profile(p["dataset"])
    model = _model(p["dataset"])
    if p["form"] == "constant":
        r = _constant(model, prof.corun, p["split"])
    elif p["split"] == "in-sample":
        data = corun_data(model, prof.corun)
        o = model.options
        fitted = fit_form(p["form"], data, loss=o.loss, f_scale=o.f_scale, gbm_params=o.gbm_params(), seed=o.seed)
        r = error_stats(predict_form(p["form"], fitted, data), data.slowdown)
    else:
        fn = leave_one_model_out if p["split"] == "leave-one-model-out" else leave_one_pair_out
        stats, _, _ = fn(model, prof.corun, [p["form"]])
        r = stats[p["form"]]
    return {k: r[k] for k in ("n", "mape", "p50", "p90", "p99", "max")}


def sm_corun_point(p) -> dict:
    """One (measured set, split, form) cell of the counter-free interference evaluation: `in-sample`,
    `leave-one-<layout|model|corunner|pair>-out` (evaluate.GROUPINGS), or `fitted on <other set>` (the other GPU's
    co-runs and features, scored on this one's)."""
    ds, split, form = p["dataset"], p["split"], p["form"]
    model, corun = _model(ds), load_profile(ds).corun
    if split == "in-sample":
        stats, _, _ = in_sample(model, corun, [form])
    elif split.startswith("fitted on "):
        other = split.removeprefix("fitted on ")
        stats, _, _ = transfer(_model(other), load_profile(other).corun, model, corun, [form])
    else:
        stats, _, _ = leave_one_group_out(model, corun, split.removeprefix("leave-one-").removesuffix("-out"), [form])
    return {k: stats[form][k] for k in ("n", "mape", "p50", "p90", "p99", "max")}


def noise_rows() -> list[dict]:
    out = []
    for ds, batches in (("a100-mps", (1, 2)), ("v100-mps", (2, 4))):
        data = corun_data(_model(ds), load_profile(ds).corun)
        n = repeat_noise(data, batches)
        out.append({"dataset": ds, "comparison": f"co-runner batch {batches[0]} vs {batches[1]}", **n})
        if ds == "a100-mps":
            el = data.victim.elasticity
            for label, mask in (("launch-bound victims (SM elasticity < 0.3)", el < 0.3),
                                ("compute-bound victims (SM elasticity >= 0.3)", el >= 0.3)):
                out.append({"dataset": ds, "comparison": f"co-runner batch 1 vs 2, {label}",
                            **repeat_noise(data.take(mask), batches)})
    return out


def per_victim_rows() -> list[dict]:
    """Leave-one-model-out errors broken down by the unseen victim model."""
    out = []
    for ds in CORUN_SETS:
        stats, preds, data = leave_one_model_out(_model(ds), load_profile(ds).corun, list(INTERFERENCE_FORMS))
        for victim in sorted(set(data.rows["victim"])):
            m = (data.rows["victim"] == victim).to_numpy()
            for f in INTERFERENCE_FORMS:
                out.append({"dataset": ds, "unseen victim": victim, "form": f,
                            **error_stats(preds[f][m], data.slowdown[m])})
    return out


def _stats(x: np.ndarray) -> dict:
    return {"n": int(len(x)), "min": float(np.min(x)), "median": float(np.median(x)), "max": float(np.max(x))}


def _slowdowns(ds: str):
    prof = load_profile(ds)
    return prof, measured_slowdowns(prof.corun, prof.solo, _model(ds), f"{ds} co-run")


def sm_slowdown_rows(ds: str) -> tuple[list[dict], list[dict], list[dict]]:
    """A measured green-context set's co-runs: slowdown (victim latency / solo at the same SM count) per layout
    and victim side, per co-runner; and the pairs measured on the whole GPU as two streams (raw/gpu_*.csv)
    beside the 64+64 layout."""
    prof, sd = _slowdowns(ds)
    layouts = []
    for (vp, cp), g in sd.groupby(["victim_partition", "corunner_partition"]):
        small, big = sorted((vp, cp))
        layouts.append({"setting": f"green contexts {small:g}+{big:g}", "victim SMs": f"{vp:g}",
                        "solo from": "/".join(sorted(set(g["solo_from"]))), **_stats(g["slowdown"].to_numpy())})
    raw = prof.path / "raw"
    whole = measured_slowdowns(read_corun_csv(raw / "gpu_corun.csv"), read_solo_csv(raw / "gpu_solo.csv"),
                               source=f"{ds} raw/gpu_corun.csv")
    layouts.append({"setting": "whole GPU, two streams", "victim SMs": "132 shared", "solo from": "measured",
                    **_stats(whole["slowdown"].to_numpy())})
    by_corunner = [{"co-runner": c, **_stats(g["slowdown"].to_numpy())}
                   for c, g in sd[sd["solo_from"] == "measured"].groupby("corunner")]
    key = ["victim", "victim_batch", "corunner", "corunner_batch"]
    half = sd[(sd["victim_partition"] == 64) & (sd["corunner_partition"] == 64)].set_index(key)
    pairs = []
    for r in whole.itertuples(index=False):
        k = (r.victim, r.victim_batch, r.corunner, r.corunner_batch)
        h = half.loc[k] if k in half.index else None
        pairs.append({"victim": r.victim, "co-runner": r.corunner, "batch": r.victim_batch,
                      "whole-GPU solo ms": r.solo_ms, "two streams ms": r.victim_latency_ms,
                      "two streams slowdown": r.slowdown,
                      "64 SMs solo ms": np.nan if h is None else h["solo_ms"],
                      "64+64 ms": np.nan if h is None else h["victim_latency_ms"],
                      "64+64 slowdown": np.nan if h is None else h["slowdown"]})
    return layouts, by_corunner, pairs


def repeat_row(ds: str) -> dict | None:
    """The solo grid measured twice (raw/run1/sm_solo.csv, an earlier run of the same script, vs the shipped
    table): |run1/run2 - 1| over the common points; p90/sqrt(2) = a perfect predictor's p90 against one run.
    None where the data set has no repeat (for h100-sm run1 is the later of the two runs)."""
    prof = load_profile(ds)
    key = ["model", "batch", "partition", "procs"]
    if not (prof.path / "raw" / "run1" / "sm_solo.csv").is_file():
        return None
    run1 = read_solo_csv(prof.path / "raw" / "run1" / "sm_solo.csv")
    both = prof.solo.merge(run1, on=key, suffixes=("", "_run1"))
    d = np.abs(both["latency_ms_run1"].to_numpy() / both["latency_ms"].to_numpy() - 1.0)
    return {"dataset": ds, "comparison": "solo grid, run 1 vs run 2 (raw/run1)", "n": int(len(d)),
            "p50_diff": float(np.quantile(d, 0.5)), "p90_diff": float(np.quantile(d, 0.9)),
            "p90_single": float(np.quantile(d, 0.9) / np.sqrt(2.0)), "max_diff": float(d.max())}


def speed_rows(repeats: int = 5) -> list[dict]:
    """Wall time of tables_for on a 64-service instance's full grid (services share their models' tables)."""
    out = []
    for ds, batches, sizes, procs in (("a100-mps", range(1, 65), np.arange(5.0, 100.1, 5.0), (1,)),
                                      ("a100-mig", range(1, 257), (1.0, 2.0, 3.0, 4.0, 7.0), (1, 2, 3))):
        model = _model(ds)
        rng = np.random.default_rng(0)
        services = [str(m) for m in rng.choice(model.models, size=64)]
        times, entries = [], 0
        for _ in range(repeats):
            t = time.perf_counter()
            tables = tables_for(model, services, list(batches), list(sizes), procs)
            times.append(time.perf_counter() - t)
            entries = sum(len(tb.entries) for tb in tables)
        out.append({"dataset": ds, "services": 64, "models": len(set(services)), "batches": len(batches),
                    "sizes": len(sizes), "procs": len(procs), "entries": entries,
                    "median_s": float(np.median(times)), "max_s": float(np.max(times))})
    return out


def plot(path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    forms = INTERFERENCE_FORMS
    fig, axes = plt.subplots(len(CORUN_SETS) + 1, len(forms), figsize=(3.2 * len(forms), 3.2 * 3), squeeze=False)
    for row, ds in enumerate(CORUN_SETS):
        model = _model(ds)
        _, preds, data = leave_one_model_out(model, load_profile(ds).corun, list(forms))
        lim = (0.95, max(data.slowdown.max(), *(np.nanmax(p) for p in preds.values())) * 1.02)
        for col, f in enumerate(forms):
            ax = axes[row][col]
            for victim in sorted(set(data.rows["victim"])):
                m = (data.rows["victim"] == victim).to_numpy()
                ax.scatter(data.slowdown[m], preds[f][m], s=3, alpha=0.4, label=victim)
            ax.plot(lim, lim, "k-", lw=0.8)
            ax.plot(lim, [lim[0] * 1.1, lim[1] * 1.1], "k:", lw=0.6)
            ax.plot(lim, [lim[0] / 1.1, lim[1] / 1.1], "k:", lw=0.6)
            ax.set(xlim=lim, ylim=lim, title=f"{ds}: {f}", xlabel="measured slowdown", ylabel="predicted (LOMO)")
            if col == 0:
                ax.legend(fontsize=6, markerscale=3)
    prof = load_profile("a100-mps")
    for col, sf in enumerate(list(SOLO_FORMS)[:len(forms)]):
        ax = axes[-1][col]
        keep = prof.solo["partition"].isin([20.0, 40.0, 60.0, 100.0]).to_numpy()
        m = fit(_Frames(prof.solo[keep], None, prof.meta), replace(FitOptions(), solo_form=sf))
        rows, pred = solo_rows_predict(m, prof.solo[~keep & prof.solo["partition"].isin([50.0, 80.0]).to_numpy()])
        ax.loglog(rows["latency_ms"], pred, ".", ms=3)
        lo, hi = rows["latency_ms"].min() * 0.9, rows["latency_ms"].max() * 1.1
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set(title=f"a100 solo {sf}\n(sizes 50, 80 unseen)", xlabel="measured ms", ylabel="predicted ms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cross_device_rows() -> list[dict]:
    """A model fitted on one measured GPU predicts the other's solo grid (same models, batches and SM counts):
    every point, and SMs 48/96 with the fit also made without them (both generalisations at once)."""
    out = []
    for a, b in permutations(MEASURED, 2):
        pa, pb = load_profile(a), load_profile(b)
        for label, sizes in (("every point", None), ("SMs {16,32,64,132} -> {48,96}", (16.0, 32.0, 64.0, 132.0))):
            keep_a = np.ones(len(pa.solo), bool) if sizes is None else pa.solo["partition"].isin(sizes).to_numpy()
            test = pb.solo if sizes is None else pb.solo[pb.solo["partition"].isin((48.0, 96.0))]
            for sf in SOLO_FORMS:
                m = fit(_Frames(pa.solo[keep_a], None, pa.meta), replace(FitOptions(), solo_form=sf))
                rows, pred = solo_rows_predict(m, test, f"{b} solo rows")
                out.append({"fitted on": a, "predicts": b, "points": label, "form": sf,
                            **error_stats(pred, rows["latency_ms"].to_numpy())})
    return out


def cross_corun_rows() -> list[dict]:
    """One GPU's measured co-runs taken as the other's prediction, row for row (victim latency and slowdown;
    rows whose solo reference is measured on both)."""
    key = ["victim", "victim_batch", "victim_partition", "corunner", "corunner_batch", "corunner_partition"]
    (a, sa), (b, sb) = ((ds, _slowdowns(ds)[1]) for ds in MEASURED)
    m = sa.merge(sb, on=key, suffixes=("_a", "_b"))
    m = m[(m["solo_from_a"] == "measured") & (m["solo_from_b"] == "measured")]
    out = []
    for col in ("victim_latency_ms", "slowdown"):
        for (x, y), (sx, sy) in (((a, b), ("_a", "_b")), ((b, a), ("_b", "_a"))):
            out.append({"quantity": col, "measured on": x, "predicts": y,
                        **error_stats(m[col + sx].to_numpy(), m[col + sy].to_numpy())})
    return out


def solo_ratio_rows() -> list[dict]:
    """Solo latency of the second measured GPU over the first's at the same point, per model and overall."""
    (a, b), key = MEASURED, ["model", "batch", "partition", "procs"]
    m = load_profile(b).solo.merge(load_profile(a).solo, on=key, suffixes=("_b", "_a"))
    m = m.assign(ratio=m["latency_ms_b"] / m["latency_ms_a"])
    rows = [{"model": mod, **_stats(g["ratio"].to_numpy())} for mod, g in m.groupby("model")]
    return rows + [{"model": "all", **_stats(m["ratio"].to_numpy())}]


def sm_section(ds, solo, layouts, corunners, pairs, repeat, pct) -> list[str]:
    """The summary's section for one data set measured by this project (green contexts)."""
    if repeat is None:
        noise = ("No repeat of the solo grid was measured for this data set (no raw/run1), so it has no noise "
                 "floor of its own.")
    else:
        noise = (f"Repeat of the whole solo grid (raw/run1, an earlier run of the same script): n {repeat['n']}, "
                 f"|difference| p50 {100 * repeat['p50_diff']:.2f} %, p90 {100 * repeat['p90_diff']:.2f} %, max "
                 f"{100 * repeat['max_diff']:.2f} %; a perfect predictor would show p90 about "
                 f"{100 * repeat['p90_single']:.2f} % against one run.")
    return [f"## {ds}: measured by this project ({MEASURED[ds]}, green contexts)", "",
            "Solo latency at held-out SM counts and batches (refit without them; the same splits as above):", "",
            markdown_table(pct([r for r in solo if r["dataset"] == ds]),
                           ["split", "form", "n", "mape", "p90", "p99", "max"]), "", noise, "",
            "Co-run slowdown = victim latency / solo latency at the same model, batch and SM count (batch 8 on "
            "both sides; solo from the model = the roofline-hybrid surface between 96 and 132 SMs, 112 having no "
            "solo row).  No L2/DRAM utilisation was measured: only the counter-free form is fitted to these rows "
            "(section \"Counter-free interference\" below).", "",
            markdown_table(layouts, ["setting", "victim SMs", "solo from", "n", "min", "median", "max"]), "",
            "By co-runner (green-context rows with a measured solo reference):", "",
            markdown_table(corunners, ["co-runner", "n", "min", "median", "max"]), "",
            "The whole-GPU pairs (two plain streams, every SM shared) beside the same pairs on 64+64 SMs:", "",
            markdown_table(pairs, ["victim", "co-runner", "batch", "whole-GPU solo ms", "two streams ms",
                                   "two streams slowdown", "64 SMs solo ms", "64+64 ms", "64+64 slowdown"]), ""]


def sm_corun_section(rows, coef, pct) -> list[str]:
    """The summary's section on the counter-free form fitted to the measured sets' co-runs."""
    fitted = "; ".join(f"{ds}: kappa {c[0]:.4f}, mu {c[1]:.4f}" for ds, c in coef.items())
    return ["## Counter-free interference (stsched-elastic) on the measured sets", "",
            "`1 + kappa (1 - s_v) + mu f_o` (s_v: the victim's SM elasticity from its solo surface, f_o: the "
            "neighbour's share of the 132 SMs), fitted to each set's 80 co-run rows (batch 8, layouts 16+112, "
            "32+96, 64+64), against `constant` (the median training slowdown) and `none` (slowdown 1). The error "
            "is that of the co-run latency, model solo latency x predicted slowdown vs the measured victim latency "
            "(= the slowdown's error, the solo reference being the same model surface). Held-out splits refit on "
            "the other groups; `fitted on X`: coefficients (and the constant) from X's co-runs, features from this "
            f"set's own solo profile. Fitted on all rows: {fitted}.", "",
            markdown_table(pct(rows), ["dataset", "split", "form", "n", "mape", "p50", "p90", "p99", "max"]), ""]


def cross_section(cross, corun, ratios, pct) -> list[str]:
    a, b = MEASURED
    return [f"## Across GPUs: {a} <-> {b} (the same grid measured on both)", "",
            "Solo latency: a model fitted on one GPU's profile predicts the other's (every point; and SMs 48/96 "
            "held out of the fit as well):", "",
            markdown_table(pct(cross), ["fitted on", "predicts", "points", "form", "n", "mape", "p50", "p90",
                                        "p99", "max"]), "",
            "Co-runs: one GPU's measured rows as the prediction of the other's, row for row (64 rows with a "
            "measured solo reference on both):", "",
            markdown_table(pct(corun), ["quantity", "measured on", "predicts", "n", "mape", "p50", "p90", "p99",
                                        "max"]), "",
            f"Solo latency {MEASURED[b]} / {MEASURED[a]} at the same model, batch and SM count:", "",
            markdown_table(ratios, ["model", "n", "min", "median", "max"]), ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-plot", action="store_true")
    args = study_args(ap, argv, quick="the splits of the first data set of each grid only")  # the shared block
    logging.getLogger("stsched").setLevel(logging.ERROR)  # skipped-row notices repeat per fold
    if args.plot_only:
        plot(results_dir(EXP) / "pred_vs_measured.png")  # recomputed from the shipped data (no rows needed)
        print(results_dir(EXP) / "pred_vs_measured.png")
        return 0

    solo_pts = [{"dataset": ds, "task": "solo", "split": s[0], "form": f}
                for ds, splits in SOLO_SPLITS.items() for s in splits for f in SOLO_FORMS]
    if args.quick:
        solo_pts = [p for p in solo_pts if p["dataset"] == solo_pts[0]["dataset"]]
    solo = run_grid(EXP, solo_pts, ["dataset", "task", "split", "form"], solo_point, fresh=args.fresh,
                    filename="solo.csv")
    corun_pts = [{"dataset": ds, "task": "slowdown", "split": sp, "form": f} for ds in CORUN_SETS
                 for sp in ("leave-one-model-out", "leave-one-pair-out", "in-sample")
                 for f in (*INTERFERENCE_FORMS, "constant")]
    if args.quick:
        corun_pts = [p for p in corun_pts if p["dataset"] == corun_pts[0]["dataset"]]
    corun = run_grid(EXP, corun_pts, ["dataset", "task", "split", "form"], corun_point, fresh=args.fresh,
                     filename="slowdown.csv")
    sm_pts = [{"dataset": ds, "task": "sm-slowdown", "split": sp, "form": f} for ds in MEASURED
              for sp in SM_CORUN_SPLITS if sp != f"fitted on {ds}" for f in SM_CORUN_FORMS]
    if args.quick:
        sm_pts = [p for p in sm_pts if p["dataset"] == sm_pts[0]["dataset"]]
    sm_corun = run_grid(EXP, sm_pts, ["dataset", "task", "split", "form"], sm_corun_point, fresh=args.fresh,
                        filename="sm_slowdown.csv")
    # --quick: the per-victim, cross-device and speed summaries are left out (the same code runs in the full study)
    sm_sets = list(MEASURED)[:1] if args.quick else list(MEASURED)
    noise, speed = noise_rows(), speed_rows(1 if args.quick else 5)
    victims = [] if args.quick else per_victim_rows()
    measured = {ds: sm_slowdown_rows(ds) for ds in sm_sets}
    repeats = {ds: repeat_row(ds) for ds in sm_sets}
    noise += [r for r in repeats.values() if r is not None]
    cross, cross_corun, ratios = ([], [], []) if args.quick else (cross_device_rows(), cross_corun_rows(),
                                                                   solo_ratio_rows())

    def pct(rows, cols=("mape", "p50", "p90", "p99", "max")):
        return [{**r, **{c: f"{100 * float(r[c]):.2f}%" for c in cols if c in r}} for r in rows]

    out = results_dir(EXP)
    text = ["# Latency model: honest splits", "",
            "Command: `.venv/bin/python experiments/latency_eval.py`.  Errors are |pred/measured - 1|.", "",
            "## Solo latency at unprofiled sizes and batches (refit without them)", "",
            markdown_table(pct(solo), ["dataset", "split", "form", "n", "mape", "p90", "p99", "max"]), "",
            "## Interference slowdown (victim latency co-running / solo)", "",
            markdown_table(pct(corun), ["dataset", "split", "form", "n", "mape", "p50", "p90", "p99"]), "",
            "## Leave-one-model-out by unseen victim", "",
            markdown_table(pct(victims), ["dataset", "unseen victim", "form", "n", "mape", "p50", "p90", "p99"]),
            "", "## Noise floor: near-identical co-run measurements", "",
            markdown_table(pct(noise, ("p50_diff", "p90_diff", "p90_single")),
                           ["dataset", "comparison", "n", "p50_diff", "p90_diff", "p90_single"]), "",
            "p90_single = p90(|difference|)/sqrt(2): the p90 error of a perfect predictor against one measurement.",
            "", "## Table evaluation speed (tables_for, 64 services)", "",
            markdown_table(speed, ["dataset", "services", "models", "batches", "sizes", "procs", "entries",
                                   "median_s", "max_s"]), "",
            *(line for ds in sm_sets for line in sm_section(ds, solo, *measured[ds], repeats[ds], pct)),
            *sm_corun_section(sm_corun, {ds: _model(ds).coef["stsched-elastic"] for ds in sm_sets}, pct),
            *([] if args.quick else cross_section(cross, cross_corun, ratios, pct))]
    (out / "summary.md").write_text("\n".join(text))
    if not (args.no_plot or args.quick):
        plot(out / "pred_vs_measured.png")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
