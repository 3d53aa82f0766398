"""Interference for models never co-run (issue 19): calibrated predictive distributions and few-shot probes,
each scored leave-one-victim-out on every shipped data set with co-runs.

    .venv/bin/python experiments/interference_eval.py [--section calibration|variants|cells|probes|plans|all]
        [--random-seeds 20]
    .venv/bin/python experiments/interference_eval.py --summary-only   # headline figures from the CSVs
    .venv/bin/python experiments/interference_eval.py --section population   # rewrite the shipped victim shifts
    .venv/bin/python experiments/interference_eval.py --section plans [--late-share X] [--quantile Q]
    .venv/bin/python experiments/interference_eval.py --section plans --target-attainment 0.99 [--budget-split each]

- population: every shipped data set's victim shifts (its default form fitted leave-one-victim-out, median log
  residual per victim) into data/interference/victim_shifts.csv, the population prior of the calibration
  (`stsched.latency.victim_prior`); the calibration of a data set never reads its own rows there.

- calibration: for every fitted form, nested leave-one-victim-out (`uncertainty.leave_one_victim_out_calibration`):
  the form and its conformal calibration computed from the other victims only, the held-out victim's rows checked
  against the predicted 0.9 quantile.  Pooled `coverage_q90` (target 0.85-0.95), each victim's (target >= 0.75),
  `q90_width` (median q0.9 / point - 1) and the point error p90.
- variants: the default form's calibration (victim shift as a random effect) against normalised conformal scores
  with a width from the victim's solo features (`stsched.latency.heteroscedastic`) and Mondrian scores by the
  victim's solo regime (`stsched.latency.mondrian`), per victim, with the upper log factor each held-out victim
  would have needed (its own 0.75 / 0.9 log-residual quantiles); and (calibration_uniform.csv) each victim's
  coverage under the one upper log factor that reaches 0.75 on the least predictable victim.
- cells (printed only): each victim's median measured and predicted slowdown per (batch, partition) cell, on the
  data sets whose victims run several batches (A100, V100).
- probes: for the default form, each victim held out, 0..4 probes chosen by the plan of `stsched probe-plan`
  (`probes.plan_probes`, axis weights from the other victims; `spread_p90`: the same K-median with both axes
  weighted equally, spreading over partitions as much as over batches) against the same number of probes drawn at random
  from the victim's measured rows (`--random-seeds` draws: mean and worst); the p90 absolute relative error of
  the remaining rows (target <= 0.15 with at most 4 probes), and the coverage of the probe-calibrated q0.9; and
  the error an oracle per-batch (and per-(batch, partition)) correction from all the victim's rows leaves
  (`oracle_floor`: what a per-regime correction learnt from probes could reach at best, roughly).

- plans: `experiments/interference_plans.py`: for each victim held out, min-gpus plans made with no
  interference, the mean, the 0.9 quantile (or `--quantile`) and 1-4 probes, simulated against the victim's
  measured slowdowns and, for the queueing share of the misses, with the planned slowdowns exactly; with
  `--target-attainment` the late share and quantile come from the target's miss budget
  (`stsched.latency.miss_budget`).

Writes results/interference/{calibration,calibration_variants,calibration_uniform,probes,plans}.csv and
summary.md.  Nothing here chooses anything: forms, calibration and probe plan are fixed in stsched.latency; the
folds are the data sets' victims (the only test).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.common import Study, hold_folder, markdown_table, results_dir, run_study, study_args  # noqa: E402
from stsched import validate as V  # noqa: E402
from stsched.data.loaders import load_profile  # noqa: E402
from stsched.latency import fit  # noqa: E402
from stsched.latency.miss_budget import SPLITS  # noqa: E402
from stsched.latency.evaluate import error_stats, fit_predict  # noqa: E402
from stsched.latency.model import corun_data, default_form, fitted_forms  # noqa: E402
from stsched.latency.probes import plan_probes, probe_mask, probed_prediction  # noqa: E402
from stsched.latency.uncertainty import leave_one_victim_out_calibration  # noqa: E402
from stsched.latency.victim_prior import held_out_victims  # noqa: E402

log = logging.getLogger("interference_eval")
EXP = "interference"
DATASETS = ("a100-mps", "v100-mps", "h100-sm", "h200-sm")
PROBES = (0, 1, 2, 3, 4)


def calibration_rows(ds: str) -> list[dict]:
    prof = load_profile(ds)
    model = fit(prof)
    rows = []
    for form in fitted_forms(model):
        res = leave_one_victim_out_calibration(model, prof.corun, form)
        p = res["pooled"]
        rows.append({"dataset": ds, "form": form, "victim": "pooled", "n": p["n"],
                     "p90_abs_rel_err": p["p90_abs_rel_err"], "coverage_q90": p["coverage_q90"],
                     "q90_width": p["q90_width"], "min_victim_coverage_q90": p["min_victim_coverage_q90"],
                     "fold_largest_shift": "", "victim_scale": "", "own_shift": "", "own_spread_q90": ""})
        for v in res["victims"]:
            rows.append({"dataset": ds, "form": form, "victim": v["victim"], "n": v["n"],
                         "p90_abs_rel_err": v["p90_abs_rel_err"], "coverage_q90": v["coverage_q90"],
                         "q90_width": v["q90_width"], "min_victim_coverage_q90": "",
                         "fold_largest_shift": v["shift"], "victim_scale": v["victim_scale"],
                         "own_shift": v["own_shift"], "own_spread_q90": v["own_spread_q90"]})
    return rows


@lru_cache(maxsize=None)
def victim_residuals(ds: str) -> dict[str, np.ndarray]:
    """Per victim of `ds`: its rows' log residuals ln(measured / predicted) under the default form fitted without it
    (leave-one-victim-out)."""
    prof = load_profile(ds)
    model = fit(prof)
    return {v: np.log(held.slowdown / predicted)
            for v, held, predicted in held_out_victims(model, prof.corun, default_form(model))}


def variant_rows(ds: str) -> list[dict]:
    """The default form's calibration, random-effect victim shift (the default) against the normalised
    (heteroscedastic) scores from solo features (`stsched.latency.heteroscedastic`) and the Mondrian scores by solo
    regime (`stsched.latency.mondrian`), all nested leave-one-victim-out; per victim coverage and width, and the
    held-out victim's own 0.75 / 0.9 quantiles of its log residual (the upper log factor it would have needed for
    0.75 / 0.9 coverage: diagnostics)."""
    from stsched.latency.heteroscedastic import leave_one_victim_out_normalised
    from stsched.latency.mondrian import leave_one_victim_out_mondrian
    prof = load_profile(ds)
    model = fit(prof)
    form = default_form(model)
    needed = {v: (float(np.quantile(r, 0.75)), float(np.quantile(r, 0.9))) for v, r in victim_residuals(ds).items()}
    rows = []
    for method, res in (("random-effect", leave_one_victim_out_calibration(model, prof.corun, form)),
                        ("normalised", leave_one_victim_out_normalised(model, prof.corun, form)),
                        ("mondrian", leave_one_victim_out_mondrian(model, prof.corun, form))):
        p = res["pooled"]
        rows.append({"dataset": ds, "form": form, "method": method, "victim": "pooled", "n": p["n"],
                     "coverage_q90": p["coverage_q90"], "q90_width": p["q90_width"],
                     "min_victim_coverage_q90": p["min_victim_coverage_q90"], "needed_log_q75": "",
                     "needed_log_q90": ""})
        for v in res["victims"]:
            rows.append({"dataset": ds, "form": form, "method": method, "victim": v["victim"], "n": v["n"],
                         "coverage_q90": v["coverage_q90"], "q90_width": v["q90_width"],
                         "min_victim_coverage_q90": "", "needed_log_q75": needed[v["victim"]][0],
                         "needed_log_q90": needed[v["victim"]][1]})
    return rows


def uniform_width_rows(datasets: tuple[str, ...] = DATASETS) -> list[dict]:
    """The evidence that no calibration from the other victims covers the least predictable one: the smallest
    upper log factor w* that covers every held-out victim's rows at 0.75 (the largest `needed_log_q75` over all
    shipped victims), and each victim's coverage if its 0.9 quantile were the point x exp(w*) -- what any
    method would have to give *every* victim to be sure of reaching 0.75 on that one, since nothing in the
    other victims' rows singles it out (the variants above)."""
    res = {(ds, v): r for ds in datasets for v, r in victim_residuals(ds).items()}
    need = {k: float(np.quantile(r, 0.75)) for k, r in res.items()}
    widest = max(need, key=need.get)
    w = need[widest]
    others = max(x for k, x in need.items() if k != widest)
    rows = []
    for (ds, v), r in res.items():
        rows.append({"dataset": ds, "victim": v, "n": len(r), "needed_log_q75": need[(ds, v)],
                     "needed_log_q90": float(np.quantile(r, 0.9)), "uniform_log_factor": w,
                     "coverage_at_uniform": float(np.mean(r <= w + 1e-12)),
                     "widest": f"{widest[0]} {widest[1]}", "next_widest_log_q75": others})
    allr = np.concatenate([r for k, r in res.items() if k != widest])
    rows.append({"dataset": "all but the widest", "victim": "pooled", "n": len(allr), "needed_log_q75": "",
                 "needed_log_q90": "", "uniform_log_factor": w,
                 "coverage_at_uniform": float(np.mean(allr <= w + 1e-12)),
                 "widest": f"{widest[0]} {widest[1]}", "next_widest_log_q75": others})
    return rows


def cell_tables(ds: str) -> list[str]:
    """Per victim of a data set whose victims run several batches: the median measured slowdown and the median
    leave-one-victim-out point prediction (default form) at each (victim batch, victim partition) cell, over the
    co-runners and their batches -- where a victim departs from the form, cell by cell (markdown)."""
    prof = load_profile(ds)
    model = fit(prof)
    form = default_form(model)
    out = []
    for v, held, predicted in held_out_victims(model, prof.corun, form):
        rows = held.rows.assign(measured=held.slowdown, predicted=predicted)
        if rows["victim_batch"].nunique() < 2:
            continue
        for what in ("measured", "predicted"):
            t = rows.pivot_table(index="victim_batch", columns="victim_partition", values=what, aggfunc="median")
            cols = [f"{c:g} %" for c in t.columns]
            out += [f"{ds} {v}: median {what} slowdown ({form}, leave-one-victim-out) by batch x partition", "",
                    "| batch | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
            out += [f"| {b} | " + " | ".join(f"{x:.2f}" for x in r) + " |" for b, r in t.iterrows()]
            out.append("")
    return out


def probe_rows(ds: str, seeds: int) -> list[dict]:
    prof = load_profile(ds)
    model = fit(prof)
    form = default_form(model)
    data = corun_data(model, prof.corun)
    victims = data.rows["victim"].to_numpy()
    cover = {k: leave_one_victim_out_calibration(model, prof.corun, form, probes=k) for k in PROBES}
    rows = []
    for v in np.unique(victims):
        test = victims == v
        train, held = data.take(~test), data.take(test)
        cov = {k: next(r for r in cover[k]["victims"] if r["victim"] == v) for k in PROBES}
        floor = oracle_floor(held, fit_predict(form, train, held, model.options))
        rows.append({"dataset": ds, "form": form, "victim": v, "probes": 0, "n": int(test.sum()),
                     "chosen_p90": cov[0]["p90_abs_rel_err"], "spread_p90": cov[0]["p90_abs_rel_err"],
                     "random_p90_mean": cov[0]["p90_abs_rel_err"],
                     "random_p90_worst": cov[0]["p90_abs_rel_err"], "chosen_coverage_q90": cov[0]["coverage_q90"],
                     "chosen_q90_width": cov[0]["q90_width"], **floor})
        for k in PROBES[1:]:
            pred, chosen = probed_prediction(model, form, train, held, k)
            planned = error_stats(pred[~chosen], held.slowdown[~chosen])["p90"]
            even = probe_mask(held.rows, plan_probes(str(v), held.rows, k, weights=(1.0, 1.0)))
            pe, _ = probed_prediction(model, form, train, held, k, chosen=even)
            spread = error_stats(pe[~even], held.slowdown[~even])["p90"]
            rnd = []
            for seed in range(seeds):
                rng = np.random.default_rng([seed, k])
                mask = np.zeros(len(held), bool)
                mask[rng.choice(len(held), size=k, replace=False)] = True
                pr, _ = probed_prediction(model, form, train, held, k, chosen=mask)
                rnd.append(error_stats(pr[~mask], held.slowdown[~mask])["p90"])
            rows.append({"dataset": ds, "form": form, "victim": v, "probes": k, "n": int((~chosen).sum()),
                         "chosen_p90": planned, "spread_p90": spread, "random_p90_mean": float(np.mean(rnd)),
                         "random_p90_worst": float(np.max(rnd)), "chosen_coverage_q90": cov[k]["coverage_q90"],
                         "chosen_q90_width": cov[k]["q90_width"], **floor})
    return rows


#: the victim's own grid coordinates an oracle correction may be indexed by ("regime": launch-bound where its solo
#: SM elasticity is below `REGIME_ELASTICITY`, else compute-bound)
ORACLE_KEYS = {"oracle_batch_p90": ["victim_batch"], "oracle_batch_partition_p90": ["victim_batch", "victim_partition"]}
OPT_KEYS = {"oracle_regime_p90opt": ["_regime"], "oracle_batch_p90opt": ["victim_batch"],
            "oracle_batch_partition_p90opt": ["victim_batch", "victim_partition"],
            "oracle_batch_partition_corunner_p90opt": ["victim_batch", "victim_partition", "corunner"]}
REGIME_ELASTICITY = 0.3
#: the factors an oracle cell may take: exp of this grid
OPT_GRID = np.linspace(-0.5, 0.5, 201)


def oracle_floor(held, pred: np.ndarray) -> dict[str, float]:
    """The p90 |relative error| left after an oracle correction indexed by the victim's own batch (and
    partition): each cell's prediction multiplied by the cell's median measured / predicted ratio, computed from
    *all* the victim's rows.  A reference for what a per-regime multiplicative correction learnt from probes can
    reach (not a strict bound: the median is not the p90-optimal factor, and a correction of another shape can
    differ); it is not a method: it reads the rows it is scored on.  The `*_p90opt` columns take instead each
    cell's factor (exp of `OPT_GRID`) that minimises the cell's own p90 error, also by solo regime (launch- vs
    compute-bound) and by (batch, partition, co-runner): closer to the best any factor per cell can do."""
    r = held.rows.assign(_r=np.log(held.slowdown / pred), _regime=held.victim.elasticity < REGIME_ELASTICITY)
    out = {}
    for name, keys in ORACLE_KEYS.items():
        corrected = pred * np.exp(r.groupby(keys)["_r"].transform("median").to_numpy())
        out[name] = error_stats(corrected, held.slowdown)["p90"]
    factors = np.exp(OPT_GRID)
    for name, keys in OPT_KEYS.items():
        corrected = np.array(pred, float)
        for _, idx in r.groupby(keys).indices.items():
            err = np.abs(factors[:, None] * pred[idx][None, :] / held.slowdown[idx][None, :] - 1.0)
            corrected[idx] = pred[idx] * factors[int(np.argmin(np.quantile(err, 0.9, axis=1)))]
        out[name] = error_stats(corrected, held.slowdown)["p90"]
    return out


def _write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def plans_file(late_share: float, target: float | None = None, quantile: float | None = None,
               split: str | None = None) -> str:
    from experiments.interference_plans import LATE_SHARE
    if target is not None:
        return f"plans-target{target:g}{'' if split in (None, 'union') else '-' + split}.csv"
    q = "" if quantile is None else f"-q{quantile:g}"
    return f"plans{q}.csv" if late_share == LATE_SHARE else f"plans-late{late_share:g}{q}.csv"


def aggregate(out: Path) -> list[str]:
    """The headline figures, from the CSVs the sections wrote: per plan kind the GPUs over all held-out victims,
    how many reach 99 % attainment and the worst; per probe count the victims within 0.15 and planned vs random."""
    import pandas as pd

    lines = []
    if (out / "calibration.csv").exists():
        c = pd.read_csv(out / "calibration.csv")
        c = c[c.victim == "pooled"]
        lines += ["| data set | form | pooled coverage_q90 | lowest victim | in target (0.85-0.95, >= 0.75) |",
                  "|---|---|---|---|---|"]
        for _, r in c.iterrows():
            ok = 0.85 <= r.coverage_q90 <= 0.95 and r.min_victim_coverage_q90 >= 0.75
            lines.append(f"| {r.dataset} | {r.form} | {r.coverage_q90:.3f} | {r.min_victim_coverage_q90:.3f} | "
                         f"{'yes' if ok else 'no'} |")
        lines.append("")
    if (out / "calibration_variants.csv").exists():
        c = pd.read_csv(out / "calibration_variants.csv")
        c = c[c.victim == "pooled"]
        lines += ["| data set | calibration | pooled coverage_q90 | lowest victim | q90_width |", "|---|---|---|---|---|"]
        for _, r in c.iterrows():
            lines.append(f"| {r.dataset} | {r.method} | {r.coverage_q90:.3f} | {r.min_victim_coverage_q90:.3f} | "
                         f"{r.q90_width:.3f} |")
        lines.append("")
    if (out / "probes.csv").exists():
        p = pd.read_csv(out / "probes.csv")
        even = "spread_p90" in p  # since issue 19's fourth session: the equally weighted plan beside it
        lines += ["| probes | victims with p90 <= 0.15 | planned <= random mean | planned <= random worst | "
                  "worst p90 |" + (" spread plan: victims with p90 <= 0.15 | spread < planned |" if even else ""),
                  "|---|---|---|---|---|" + ("---|---|" if even else "")]
        for k, g in p.groupby("probes"):
            lines.append(f"| {k} | {(g.chosen_p90 <= 0.15).sum()} / {len(g)} | "
                         f"{(g.chosen_p90 <= g.random_p90_mean + 1e-12).sum()} / {len(g)} | "
                         f"{(g.chosen_p90 <= g.random_p90_worst + 1e-12).sum()} / {len(g)} | "
                         f"{g.chosen_p90.max():.3f} ({g.loc[g.chosen_p90.idxmax(), 'dataset']} "
                         f"{g.loc[g.chosen_p90.idxmax(), 'victim']}) |"
                         + (f" {(g.spread_p90 <= 0.15).sum()} / {len(g)} | "
                            f"{(g.spread_p90 < g.chosen_p90 - 1e-12).sum()} / {len(g)} |" if even else ""))
        lines += ["", "| data set | probes | pooled coverage_q90 (probe-calibrated) | lowest victim | median q90_width |",
                  "|---|---|---|---|---|"]
        for (ds, k), g in p.groupby(["dataset", "probes"], sort=False):
            pooled = float((g.chosen_coverage_q90 * g.n).sum() / g.n.sum())
            lines.append(f"| {ds} | {k} | {pooled:.3f} | {g.chosen_coverage_q90.min():.3f} | "
                         f"{g.chosen_q90_width.median():.3f} |")
        lines.append("")
    for path in sorted(out.glob("plans*.csv")):
        q = pd.read_csv(path)
        split = "queue_only_attainment" in q  # since issue 19's fourth session: the queueing misses apart
        lines += [f"{path.name}:", "", "| plan | GPUs (all victims) | victims >= 99 % attainment | worst attainment |"
                  + (" victims < 99 % by queueing alone |" if split else ""), "|---|---|---|---|" + ("---|" * split)]
        for plan, g in q.groupby("plan", sort=False):
            worst = g.loc[g.slo_attainment.idxmin()]
            lines.append(f"| {plan} | {int(g.gpus.sum())} | {(g.slo_attainment >= 0.99).sum()} / {len(g)} | "
                         f"{worst.slo_attainment:.4f} ({worst.dataset} {worst.victim}) |"
                         + (f" {(g.queue_only_attainment < 0.99).sum()} |" if split else ""))
        lines.append("")
    return lines


STUDY = Study("interference_eval", "interference of unseen victims: calibration, few-shot probes, plans",
              typical="5 min", quick="calibration and probes with 3 random draws (no plans)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--section", default="all", choices=("population", "calibration", "variants", "cells", "probes", "plans", "all"))
    ap.add_argument("--random-seeds", type=V.count, default=20, help="random probe draws per victim and count")
    ap.add_argument("--summary-only", action="store_true", help="print the headline figures from the CSVs only")
    ap.add_argument("--late-share", type=V.real(0.0, 1.0, strict_max=True), default=None,
                    help="plans: the Poisson margin's late share (default 0.05; another writes plans-late<x>.csv)")
    ap.add_argument("--quantile", type=float, default=None,
                    help="plans: the interference quantile of the quantile and probe plans (default 0.9; another "
                         "adds -q<Q> to the file name)")
    ap.add_argument("--target-attainment", type=float, default=None,
                    help="plans: late share and interference quantile from this attainment target's miss budget "
                         "(stsched.latency.miss_budget; writes plans-target<A>.csv)")
    ap.add_argument("--budget-split", choices=SPLITS, default=None,
                    help="plans with --target-attainment: half the miss budget to each source (union, default) or "
                         "all of it to each (each; writes plans-target<A>-each.csv)")
    args = study_args(ap, argv, quick="calibration and probes with 3 random draws (no plans)")
    if args.quick:
        args.random_seeds = min(args.random_seeds, 3)
        args.section = "calibration+probes" if args.section == "all" else args.section
    budget = None
    if args.target_attainment is not None:
        from stsched.errors import InputError
        from stsched.latency.miss_budget import MissBudget
        if args.late_share is not None or args.quantile is not None:
            ap.error("--target-attainment sets the late share and the quantile: give --late-share / --quantile or "
                     "--target-attainment")
        try:
            budget = MissBudget(args.target_attainment, args.budget_split or "union")
        except InputError as e:
            ap.error(f"--target-attainment: {e}")
    elif args.budget_split is not None:  # it would be ignored
        ap.error("--budget-split splits the miss budget of --target-attainment: give that too")
    if args.quantile is not None and not 0.5 <= args.quantile <= 0.99:
        ap.error(f"--quantile must lie in [0.5, 0.99] (the stored levels), got {args.quantile:g}")
    if args.summary_only or args.plot_only:
        print("\n".join(aggregate(results_dir(EXP))))
        return 0
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.section == "population":
        from stsched.latency.victim_prior import victim_shift_rows, write_population
        rows = [r for ds in tqdm(DATASETS, desc="victim shifts") for r in victim_shift_rows(ds)]
        print(markdown_table([vars(r) for r in rows], ["dataset", "victim", "form", "shift", "n_rows"]))
        print(f"wrote {write_population(rows)}")
        return 0
    out = results_dir(EXP)
    hold_folder(out)  # a second run into it is refused (exit 2)
    summary = ["# Interference for models never co-run (experiments/interference_eval.py)", ""]
    if args.section in ("calibration", "calibration+probes", "all"):
        rows = [r for ds in tqdm(DATASETS, desc="calibration") for r in calibration_rows(ds)]
        _write(out / "calibration.csv", rows)
        cols = ["dataset", "form", "victim", "n", "p90_abs_rel_err", "coverage_q90", "q90_width",
                "min_victim_coverage_q90", "fold_largest_shift", "victim_scale", "own_shift", "own_spread_q90"]
        summary += ["## Calibration (nested leave-one-victim-out, predicted 0.9 quantile)", "",
                    markdown_table(rows, cols), ""]
        print(markdown_table(rows, cols))
    if args.section == "cells":
        print("\n".join(line for ds in DATASETS for line in cell_tables(ds)))
        return 0
    if args.section in ("variants", "all"):
        rows = [r for ds in tqdm(DATASETS, desc="calibration variants") for r in variant_rows(ds)]
        _write(out / "calibration_variants.csv", rows)
        cols = ["dataset", "form", "method", "victim", "n", "coverage_q90", "q90_width", "min_victim_coverage_q90",
                "needed_log_q75", "needed_log_q90"]
        summary += ["## Calibration variants (default form, nested leave-one-victim-out)", "",
                    markdown_table(rows, cols), ""]
        print(markdown_table(rows, cols))
        rows = uniform_width_rows()
        _write(out / "calibration_uniform.csv", rows)
        cols = ["dataset", "victim", "n", "needed_log_q75", "needed_log_q90", "uniform_log_factor",
                "coverage_at_uniform", "widest", "next_widest_log_q75"]
        summary += ["## One upper log factor for every victim, wide enough for the widest's 0.75", "",
                    markdown_table(rows, cols), ""]
        print(markdown_table(rows, cols))
    if args.section in ("probes", "calibration+probes", "all"):
        rows = [r for ds in tqdm(DATASETS, desc="probes") for r in probe_rows(ds, args.random_seeds)]
        _write(out / "probes.csv", rows)
        cols = ["dataset", "form", "victim", "probes", "n", "chosen_p90", "spread_p90", "random_p90_mean",
                "random_p90_worst",
                "chosen_coverage_q90", "chosen_q90_width", "oracle_batch_p90", "oracle_batch_partition_p90",
                *OPT_KEYS]
        summary += [f"## Few-shot probes (p90 |rel. error| of the held-out victim's other rows; random: "
                    f"{args.random_seeds} draws)", "", markdown_table(rows, cols), ""]
        print(markdown_table(rows, cols))
    if args.section in ("plans", "all"):
        from experiments.interference_plans import DURATION_S, LATE_SHARE, QUANTILE, plan_rows
        late = LATE_SHARE if args.late_share is None else args.late_share
        quantile = QUANTILE if args.quantile is None else args.quantile
        if budget is not None:
            late, quantile = budget.late_share, budget.quantile
            print(f"target attainment {budget.target:g} ({budget.split}): late share {late:g}, "
                  f"interference quantile {quantile:g}"
                  + (f" (capped from {budget.uncapped_quantile:g})" if budget.capped else ""))
        rows = [r for ds in tqdm(DATASETS, desc="plans") for r in plan_rows(ds, late_share=late, quantile=quantile)]
        _write(out / plans_file(late, None if budget is None else budget.target,
                                None if budget is not None or quantile == QUANTILE else quantile,
                                None if budget is None else budget.split), rows)
        cols = ["dataset", "victim", "plan", "form", "gpus", "slo_attainment", "queue_only_attainment",
                "exceed_share", "worst_service", "worst_service_attainment", "worst_service_neighbour", "note"]
        summary += [f"## Plans for the held-out victim (heuristic min-gpus, {DURATION_S:g} s Poisson, measured "
                    f"slowdowns)", "", markdown_table(rows, cols), ""]
        print(markdown_table(rows, cols))
    head = aggregate(out)
    print("\n".join(head))
    summary += ["## Headline figures", "", *head]
    (out / "summary.md").write_text("\n".join(summary))
    print(f"wrote {out}/summary.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
