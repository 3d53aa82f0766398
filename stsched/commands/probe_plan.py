"""`stsched probe-plan`: the co-runs to measure for a model never co-run, on a data set's own grid.

    stsched probe-plan MODEL --dataset a100 --k 4 [--json]

MODEL needs a solo profile in the data set (a probe's slowdown is its co-run latency over its solo latency at the
same point); the data set needs co-run rows (their layouts are the grid).  The plan spreads the probes over the
model's batch regimes and partition sizes, weighted by how much the data set's measured slowdowns move along each
(`stsched.latency.probes.plan_probes`); `--json` prints a list of
objects with victim, victim_batch, victim_partition, corunner, corunner_batch, corunner_partition (on MPS the
co-runner holds the rest of the GPU).  Measure them, then `stsched fit --dataset D --probe FILE`.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from stsched.errors import InputError


def add(sub) -> None:
    p = sub.add_parser("probe-plan", help="co-runs to measure for a model never co-run (few-shot probes)")
    p.add_argument("model", help="the new model (it needs a solo profile in the data set)")
    p.add_argument("--dataset", required=True, help="data set name or alias (a100, v100, h100-sm, h200-sm)")
    p.add_argument("--k", required=True, help="number of probes (>= 1)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(run=run)


def run(args) -> int:
    from stsched.commands.fit import _dataset
    from stsched.data.loaders import load_profile
    from stsched.latency.features import clean_solo
    from stsched.latency.evaluate import measured_slowdowns
    from stsched.latency.probes import axis_weights, plan_probes

    try:
        k = int(args.k)
    except ValueError:
        k = 0
    if k < 1:
        raise InputError(f"--k: the number of probes must be an integer >= 1, got {args.k!r}")
    name = str(args.model).strip().lower()
    prof = load_profile(_dataset(args.dataset))
    if prof.corun is None or prof.corun.empty:
        raise InputError(f"data set {prof.name!r} has no co-run rows: it has no co-run grid to probe on")
    solo = clean_solo(prof.solo, f"{prof.name} solo")
    mine = solo[(solo["model"] == name) & (solo["procs"] == 1)]
    if mine.empty:
        raise InputError(f"model {args.model!r} has no solo profile in data set {prof.name!r}: it cannot be probed "
                         f"(profile it solo first; models: {', '.join(sorted(solo['model'].unique()))})")
    grid = prof.corun.copy()
    grid["corunner"] = grid["corunner"].astype(str).str.strip().str.lower()
    points = set(zip(mine["batch"].astype(int), mine["partition"].astype(float)))
    covered = np.array([(int(b), float(p)) in points
                        for b, p in zip(grid["victim_batch"], grid["victim_partition"])])
    meas = measured_slowdowns(prof.corun, prof.solo, source=f"{prof.name} co-run")
    weights = axis_weights(meas, meas["slowdown"].to_numpy())
    probes = plan_probes(name, grid, k, covered, weights)
    if args.json:
        json.dump([p.to_dict() for p in probes], sys.stdout)
        sys.stdout.write("\n")
        return 0
    print(f"{len(probes)} probe co-run(s) for {name} on {prof.name} (victim = {name}):")
    for i, p in enumerate(probes, 1):
        print(f"  {i}. batch {p.victim_batch} on {p.victim_partition:g}  beside {p.corunner} batch "
              f"{p.corunner_batch} on {p.corunner_partition:g}")
    return 0
