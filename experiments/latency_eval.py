"""Latency model comparison on honest splits: solo interpolation to unprofiled sizes/batches, interference on
unseen victim models and unseen pairs, the measurement noise floor, and the table-evaluation speed.

    .venv/bin/python experiments/latency_eval.py [--fresh]

Writes results/latency/{solo,slowdown}.csv (resumable), results/latency/summary.md and
results/latency/pred_vs_measured.png.  Every number is computed here from the shipped data
(data/profiles/{a100-mps,v100-mps,a100-mig,h200-sm}); no split is used to choose anything (forms and options are
fixed in stsched.latency before this script runs).  h200-sm, measured by this project, has no L2/DRAM
utilisation, so its co-runs are summarised as measured slowdowns (no interference form can be fitted to them),
beside the same pairs on the whole GPU (two streams, raw/gpu_*.csv) and the solo grid's repeat (raw/run1/).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.common import markdown_table, results_dir, run_grid  # noqa: E402
from stsched.data.loaders import load_profile, read_corun_csv, read_solo_csv  # noqa: E402
from stsched.latency import FitOptions, fit, tables_for  # noqa: E402
from stsched.latency.evaluate import (batch_holdout, error_stats, leave_one_model_out,  # noqa: E402
                                      leave_one_pair_out, measured_slowdowns, repeat_noise, size_holdout)
from stsched.latency.interference_fit import fit_form, predict_form  # noqa: E402
from stsched.latency.model import corun_data  # noqa: E402
from stsched.latency.solo import SOLO_FORMS  # noqa: E402

log = logging.getLogger("latency_eval")
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
    "h200-sm": [("SMs {16,32,64,132} -> {48,96}", "size", (16, 32, 64, 132)),
                *_loo((16, 32, 48, 64, 96, 132), (32, 48, 64, 96)),
                ("batches {1,4,16,32} -> {2,8}", "batch", (1, 4, 16, 32)),
                ("batches {1,2,8,32} -> {4,16}", "batch", (1, 2, 8, 32))],
}
CORUN_SETS = ("a100-mps", "v100-mps")
H200 = "h200-sm"  # measured by this project: no L2/DRAM utilisation, so no interference form can be fitted


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


def h200_slowdown_rows() -> tuple[list[dict], list[dict], list[dict]]:
    """h200-sm co-runs: slowdown (victim latency / solo at the same SM count) per layout and victim side, per
    co-runner; and the pairs measured on the whole GPU as two streams (raw/gpu_*.csv) beside the 64+64 layout."""
    prof = load_profile(H200)
    sd = measured_slowdowns(prof.corun, prof.solo, _model(H200), f"{H200} co-run")
    layouts = []
    for (vp, cp), g in sd.groupby(["victim_partition", "corunner_partition"]):
        small, big = sorted((vp, cp))
        layouts.append({"setting": f"green contexts {small:g}+{big:g}", "victim SMs": f"{vp:g}",
                        "solo from": "/".join(sorted(set(g["solo_from"]))), **_stats(g["slowdown"].to_numpy())})
    raw = prof.path / "raw"
    whole = measured_slowdowns(read_corun_csv(raw / "gpu_corun.csv"), read_solo_csv(raw / "gpu_solo.csv"),
                               source=f"{H200} raw/gpu_corun.csv")
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


def h200_repeat_row() -> dict:
    """The solo grid measured twice (raw/run1/sm_solo.csv, an earlier run of the same script, vs the shipped
    table): |run1/run2 - 1| over the common points; p90/sqrt(2) = a perfect predictor's p90 against one run."""
    prof = load_profile(H200)
    key = ["model", "batch", "partition", "procs"]
    run1 = read_solo_csv(prof.path / "raw" / "run1" / "sm_solo.csv")
    both = prof.solo.merge(run1, on=key, suffixes=("", "_run1"))
    d = np.abs(both["latency_ms_run1"].to_numpy() / both["latency_ms"].to_numpy() - 1.0)
    return {"dataset": H200, "comparison": "solo grid, run 1 vs run 2 (raw/run1)", "n": int(len(d)),
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
        from stsched.latency.evaluate import _Frames
        from stsched.latency.model import solo_rows_predict
        from dataclasses import replace
        m = fit(_Frames(prof.solo[keep], None, prof.meta), replace(FitOptions(), solo_form=sf))
        rows, pred = solo_rows_predict(m, prof.solo[~keep & prof.solo["partition"].isin([50.0, 80.0]).to_numpy()])
        ax.loglog(rows["latency_ms"], pred, ".", ms=3)
        lo, hi = rows["latency_ms"].min() * 0.9, rows["latency_ms"].max() * 1.1
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.set(title=f"a100 solo {sf}\n(sizes 50, 80 unseen)", xlabel="measured ms", ylabel="predicted ms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def h200_section(solo, layouts, corunners, pairs, repeat, pct) -> list[str]:
    """The summary's h200-sm section (measured by this project on an H200, green contexts)."""
    return ["## h200-sm: measured by this project (H200, green contexts)", "",
            "Solo latency at held-out SM counts and batches (refit without them; the same splits as above):", "",
            markdown_table(pct([r for r in solo if r["dataset"] == H200]),
                           ["split", "form", "n", "mape", "p90", "p99", "max"]), "",
            f"Repeat of the whole solo grid (raw/run1, an earlier run of the same script): n {repeat['n']}, "
            f"|difference| p50 {100 * repeat['p50_diff']:.2f} %, p90 {100 * repeat['p90_diff']:.2f} %, max "
            f"{100 * repeat['max_diff']:.2f} %; a perfect predictor would show p90 about "
            f"{100 * repeat['p90_single']:.2f} % against one run.", "",
            "Co-run slowdown = victim latency / solo latency at the same model, batch and SM count (batch 8 on "
            "both sides; solo from the model = the roofline-hybrid surface between 96 and 132 SMs, 112 having no "
            "solo row).  No L2/DRAM utilisation was measured, so no interference form is fitted to these rows.", "",
            markdown_table(layouts, ["setting", "victim SMs", "solo from", "n", "min", "median", "max"]), "",
            "By co-runner (green-context rows with a measured solo reference):", "",
            markdown_table(corunners, ["co-runner", "n", "min", "median", "max"]), "",
            "The whole-GPU pairs (two plain streams, every SM shared) beside the same pairs on 64+64 SMs:", "",
            markdown_table(pairs, ["victim", "co-runner", "batch", "whole-GPU solo ms", "two streams ms",
                                   "two streams slowdown", "64 SMs solo ms", "64+64 ms", "64+64 slowdown"]), ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fresh", action="store_true", help="recompute every row")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("stsched").setLevel(logging.ERROR)  # skipped-row notices repeat per fold

    solo_pts = [{"dataset": ds, "task": "solo", "split": s[0], "form": f}
                for ds, splits in SOLO_SPLITS.items() for s in splits for f in SOLO_FORMS]
    solo = run_grid(EXP, solo_pts, ["dataset", "task", "split", "form"], solo_point, fresh=args.fresh,
                    filename="solo.csv")
    corun_pts = [{"dataset": ds, "task": "slowdown", "split": sp, "form": f} for ds in CORUN_SETS
                 for sp in ("leave-one-model-out", "leave-one-pair-out", "in-sample")
                 for f in (*INTERFERENCE_FORMS, "constant")]
    corun = run_grid(EXP, corun_pts, ["dataset", "task", "split", "form"], corun_point, fresh=args.fresh,
                     filename="slowdown.csv")
    noise, speed, victims = noise_rows(), speed_rows(), per_victim_rows()
    h200_layouts, h200_corunners, h200_pairs = h200_slowdown_rows()
    noise.append(h200_repeat_row())

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
            *h200_section(solo, h200_layouts, h200_corunners, h200_pairs, noise[-1], pct)]
    (out / "summary.md").write_text("\n".join(text))
    if not args.no_plot:
        plot(out / "pred_vs_measured.png")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
