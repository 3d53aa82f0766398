"""`stsched fit` and `stsched evaluate-model`: fit a latency model to a shipped data set, score it on a file.

    stsched fit --dataset a100 --out a100.model.json [--form stsched-regime] [--solo-form roofline-hybrid]
                [--probe FILE [--probe-source FORMAT]] [--json]
    stsched evaluate-model a100.model.json [--data interference.csv] [--source FORMAT] [--form NAME] [--json]

`fit` also calibrates every saved form's predictive distribution (`stsched.latency.uncertainty`); `--probe FILE`
adds a new model's probe co-runs (`stsched probe-plan`) and adapts its sensitivity (`stsched.latency.probes`).
`--dataset` (alias: the older `--device`) takes a shipped data set name (`stsched.data.loaders.list_datasets()`)
or an alias: `a100` is the A100 MPS data set (a100-mps), `v100` iGniter's V100 data (v100-mps), `mig` ParvaGPU's
A100 MIG data (a100-mig).
`evaluate-model --json` prints one object with `mape`, `p90_abs_rel_err` and `n` (rows scored): for a co-run file
the error of the predicted co-run latency (solo x slowdown of the model's form), for a solo file of the latency;
for co-runs also `coverage_q90` (share of rows whose slowdown is at or below the predicted 0.9 quantile),
`q90_width` (median q0.9 / point - 1) and `per_model` rows.  It always adds `leave_one_victim_out`: the model's
data set (when shipped with co-runs of two or more victims) refitted and recalibrated without each victim in turn.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace

import numpy as np

from stsched.errors import InputError

log = logging.getLogger(__name__)

DEVICE_ALIASES = {"a100": "a100-mps", "v100": "v100-mps", "mig": "a100-mig"}


def _saveable_forms() -> list[str]:
    from stsched.latency.forms import FORM_SPECS
    return [n for n, s in FORM_SPECS.items() if s.fit != "gbm"]


def add(sub) -> None:
    from stsched.latency.solo import SOLO_FORMS
    from stsched.latency.sources import SOURCES

    p = sub.add_parser("fit", help="fit a latency model (solo surfaces + interference forms) to a data set")
    p.add_argument("--dataset", default=None, help="data set name or alias (a100, v100, mig)")
    p.add_argument("--device", dest="device", default=None, help=argparse.SUPPRESS)  # the older spelling
    p.add_argument("--probe", default=None, metavar="FILE",
                   help="probe co-runs of a new model (stsched probe-plan) to refit with and adapt its sensitivity")
    p.add_argument("--probe-source", choices=list(SOURCES), default=None, help="layout of --probe (default: detect)")
    p.add_argument("--form", choices=_saveable_forms(), default=None,
                   help="interference form for predictions (default: the project's best, stsched-regime)")
    p.add_argument("--solo-form", choices=list(SOLO_FORMS), default=None, help="solo latency form")
    p.add_argument("--out", required=True, help="model JSON file to write (checked before the fit)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_fit)

    e = sub.add_parser("evaluate-model", help="score a fitted latency model on a measurement file")
    e.add_argument("model", help="model JSON file (from stsched fit)")
    e.add_argument("--data", default=None,
                   help="measurement file (co-run or solo; layout detected); without it only the model's data set's "
                        "leave-one-victim-out folds are scored")
    e.add_argument("--source", choices=list(SOURCES), default=None, help="layout of --data (default: detect)")
    e.add_argument("--form", choices=_saveable_forms(), default=None,
                   help="interference form to score (default: the model's)")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(run=run_evaluate)


def _dataset(name: str) -> str:
    from stsched.data.loaders import list_datasets
    ds = DEVICE_ALIASES.get(name.lower(), name.lower())
    known = list_datasets()
    if ds not in known:
        raise InputError(f"unknown data set {name!r} (data sets: {', '.join(known)}; aliases: "
                         f"{', '.join(f'{k}={v}' for k, v in DEVICE_ALIASES.items())})")
    return ds


def run_fit(args) -> int:
    from stsched.data.loaders import load_profile
    from stsched.latency import FitOptions, evaluate, fit, save
    from stsched.latency.model import default_form

    from stsched.outputs import output_file

    if (args.dataset is None) == (args.device is None):
        raise InputError("give the data set once: --dataset NAME (--device is its older spelling)")
    output_file(args.out, inputs=(args.probe,))
    prof = load_profile(_dataset(args.dataset or args.device))
    if not prof.meta.has_latency:
        raise InputError(f"data set {prof.name!r} has no latency measurements (utilisation only): nothing to fit")
    probes = None
    if args.probe:
        from stsched.latency.probes import read_probe_file
        probes = read_probe_file(args.probe, sorted(set(prof.solo["model"].astype(str).str.strip().str.lower())),
                                 args.probe_source)
    opts = FitOptions()
    if args.solo_form:
        opts = replace(opts, solo_form=args.solo_form)
    if args.form:
        from stsched.latency.forms import get_spec
        forms = opts.forms if args.form in opts.forms else (*opts.forms, args.form)  # the form asked for is fitted
        opts = replace(opts, forms=forms, form=args.form, carry_form=args.form if get_spec(args.form).carryable
                       else opts.carry_form)
    if probes is not None:
        from stsched.latency.probes import fit_with_probes
        model = fit_with_probes(prof, probes, opts)
    else:
        from stsched.latency.uncertainty import with_predictive
        model = fit(prof, opts)
        if prof.corun is not None and len(prof.corun):
            model = with_predictive(model, prof.corun)
    save(model, args.out)
    table = evaluate(model, prof, forms=list(model.coef))
    thin = thin_surfaces(model)
    warning = thin_warning(model, thin)
    if warning:
        log.warning("%s", warning)
    form = default_form(model) if model.coef else "none"
    carried = default_form(model, carry=True) if model.coef else "none"
    if args.json:
        json.dump({"out": args.out, "dataset": model.dataset, "models": model.models, "solo_form": opts.solo_form,
                   "form": form, "carry_form": carried,
                   "data_hash": model.data_hash, "in_sample": table.to_dict(orient="records"),
                   "predictive": {k: {"shift": p.shift, "q90_log_factor": float(p.log_factor(0.9)),
                                      "grouping": p.grouping, "n_groups": p.n_groups, "probes": p.probes,
                                      "victim_scale": p.victim_scale, "victim_df": p.victim_df}
                                  for k, p in model.predictive.items()},
                   "adapted": {k: a.to_dict() for k, a in model.adapted.items()},
                   "warnings": [warning] if warning else []}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"fitted {model.dataset} ({model.device}, {model.mechanism}): {len(model.models)} models, "
          f"{len(model.surfaces)} surfaces; solo form {opts.solo_form}; interference form {form}, "
          f"instances carry {carried}")
    print(f"wrote {args.out} (data hash {model.data_hash[:16]})")
    for k, p in model.predictive.items():
        effect = (f"victim shift ~ {p.victim_scale:.3f} x t_{p.victim_df}" if p.total
                  else f"largest victim shift {p.shift:.3f}")
        print(f"  predictive {k}: q0.9 = point x {np.exp(p.log_factor(0.9)):.3f} ({effect}, "
              f"{p.n_groups} {p.grouping} groups)")
    for k, a in model.adapted.items():
        print(f"  probed {k}: sensitivity {a.sensitivity:.3f} from {a.probes} probe(s)")
    print("in-sample errors (honest splits: experiments/latency_eval.py):")
    for r in table.to_dict(orient="records"):
        if r["kind"] == "solo" and len(thin) == len(model.surfaces):
            # every surface reproduces its own points: on so few rows the error is 0 by construction
            print(f"  {r['kind']:<9} {r['form']:<20} n={r['n']:<5} no judgement (every surface is its own rows)")
            continue
        print(f"  {r['kind']:<9} {r['form']:<20} n={r['n']:<5} MAPE {r['mape']:.2%}  p90 {r['p90']:.2%}  "
              f"p99 {r['p99']:.2%}")
    return 0


def thin_surfaces(model) -> list[tuple[str, int, int]]:
    """(model, procs, rows) of the solo surfaces fitted on fewer than MIN_PRIOR_ROWS profiled points: such a surface
    fits no prior (it is its measurements and the extrapolation rules), and its in-sample error, 0 by construction,
    says nothing (`stsched fit` on one solo row printed 'MAPE 0.00% n=1' without a word)."""
    from stsched.latency.solo import MIN_PRIOR_ROWS

    return sorted((m, k, len(s.points["latency_ms"])) for (m, k), s in model.surfaces.items()
                  if len(s.points["latency_ms"]) < MIN_PRIOR_ROWS)


def thin_warning(model, thin: list[tuple[str, int, int]]) -> str:
    """One line naming the thin surfaces ('' if none)."""
    from stsched.latency.solo import MIN_PRIOR_ROWS

    if not thin:
        return ""
    names = ", ".join(f"{m}{'' if k == 1 else f' ({k} procs)'}: {n} row{'s' if n > 1 else ''}" for m, k, n in thin)
    return (f"{len(thin)} of {len(model.surfaces)} solo surfaces rest on fewer than {MIN_PRIOR_ROWS} profiled points "
            f"({names}): no prior is fitted, each predicts from its points by the extrapolation rules alone "
            f"(docs/LATENCY.md), and an in-sample error on them is no judgement; profile more batches and sizes")


def _same_units(model, solo, corun, source: str) -> None:
    """A model scores only measurements of its own partition mechanism (units: MPS %, SM count, MIG slices)."""
    found = set()
    for table in (solo, corun):
        if table is not None and len(table) and "mechanism" in table:
            found |= {str(m) for m in table["mechanism"].dropna().unique()}
    other = sorted(found - {model.mechanism})
    if other:
        raise InputError(f"the file measures {', '.join(other)} partitions, the model {model.dataset!r} was fitted "
                         f"on {model.mechanism} partitions (other units): refused", source=source)


def _clean(v):
    if isinstance(v, float):
        return v if np.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _lovo(model, form: str | None) -> dict | None:
    """Nested leave-one-victim-out calibration on the model's shipped data set (None when it has no such folds)."""
    from stsched.data.loaders import list_datasets, load_profile
    from stsched.latency import fit
    from stsched.latency.model import default_form
    from stsched.latency.uncertainty import leave_one_victim_out_calibration

    if model.dataset not in list_datasets():
        return None
    prof = load_profile(model.dataset)
    if prof.corun is None or prof.corun.empty or prof.corun["victim"].nunique() < 2:
        return None
    base = fit(prof, model.options)
    return leave_one_victim_out_calibration(base, prof.corun, form or default_form(base))


def run_evaluate(args) -> int:
    from stsched.latency import load
    from stsched.latency.evaluate import error_stats
    from stsched.latency.model import corun_data, default_form, predict_slowdown, solo_rows_predict
    from stsched.latency.sources import read_measurements
    from stsched.latency.uncertainty import score

    model = load(args.model)
    out: dict = {"model": model.dataset}
    if args.data is not None:
        source, solo, corun = read_measurements(args.data, args.source)
        _same_units(model, solo, corun, str(args.data))
        if corun is not None and len(corun):
            form = args.form or default_form(model)
            if not model.coef:
                raise InputError(f"model {args.model} has no interference coefficients: it cannot score co-runs")
            data = corun_data(model, corun, str(args.data))
            pred = data.victim.latency_ms * predict_slowdown(model, data, form)
            stats = error_stats(pred, data.rows["victim_latency_ms"].to_numpy())
            kind, total = "corun_latency", len(corun)
        elif solo is not None and len(solo):
            form = model.options.solo_form
            rows, pred = solo_rows_predict(model, solo, str(args.data))
            stats = error_stats(pred, rows["latency_ms"].to_numpy())
            kind, total = "solo_latency", len(solo)
            if stats["n"] < len(rows):
                print(f"stsched: {len(rows) - stats['n']} row(s) outside the model's profiled range not scored",
                      file=sys.stderr)
        else:
            raise InputError("no rows to score", source=str(args.data))
        if stats["n"] == 0:
            raise InputError("no row of the file matches the model's profiles", source=str(args.data))
        out.update({"mape": stats["mape"], "p90_abs_rel_err": stats["p90"], "n": stats["n"],
                    "p50_abs_rel_err": stats["p50"], "p99_abs_rel_err": stats["p99"],
                    "max_abs_rel_err": stats["max"], "kind": kind, "form": form, "source": source,
                    "rows_in_file": int(total)})
        if kind == "corun_latency":
            if form in model.predictive:
                sc = score(model, data, form)
                out.update({"coverage_q90": sc["coverage_q90"], "q90_width": sc["q90_width"],
                            "per_model": sc["per_model"]})
            else:
                print(f"stsched: model {args.model} has no predictive distribution of {form} (refit it with "
                      f"`stsched fit`): no coverage_q90", file=sys.stderr)
    lovo = _lovo(model, args.form)
    if lovo is None and args.data is None:
        raise InputError(f"model {args.model}: no --data and its data set {model.dataset!r} has no shipped co-runs "
                         f"of two or more victims: nothing to score")
    out["leave_one_victim_out"] = lovo
    if args.json:
        json.dump(_clean(out), sys.stdout)
        sys.stdout.write("\n")
        return 0
    if "kind" in out:
        print(f"{out['kind']} of {args.data} ({out['source']}) under model {model.dataset}, form {out['form']}: "
              f"n={out['n']} (of {out['rows_in_file']} rows)  MAPE {out['mape']:.2%}  "
              f"p50 {out['p50_abs_rel_err']:.2%}  p90 {out['p90_abs_rel_err']:.2%}  "
              f"p99 {out['p99_abs_rel_err']:.2%}  max {out['max_abs_rel_err']:.2%}")
        if "coverage_q90" in out:
            print(f"  q0.9: coverage {out['coverage_q90']:.3f}, width {out['q90_width']:.3f}")
            for r in out["per_model"]:
                print(f"    {r['victim']:<14} n={r['n']:<5} p90 {r['p90_abs_rel_err']:.2%}  "
                      f"coverage {r['coverage_q90']:.3f}  width {r['q90_width']:.3f}")
    if lovo is not None:
        p = lovo["pooled"]
        print(f"leave-one-victim-out on {lovo['dataset']} ({lovo['form']}): p90 {p['p90_abs_rel_err']:.2%}  "
              f"coverage_q90 {p['coverage_q90']:.3f} (worst victim {p['min_victim_coverage_q90']:.3f})  "
              f"q90_width {p['q90_width']:.3f}")
        for r in lovo["victims"]:
            print(f"    {r['victim']:<14} n={r['n']:<5} p90 {r['p90_abs_rel_err']:.2%}  "
                  f"coverage {r['coverage_q90']:.3f}  width {r['q90_width']:.3f}")
    return 0
