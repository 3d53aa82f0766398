"""Issue 15: what the Poisson margin gives each tenant and what the simulator shows it needed -- one tenant per row.

    python -m experiments.tenant_margin                        # 12 services, seed 4, 120 s
    python -m experiments.tenant_margin --services 64 --seed 4 --duration 120

Instance: `stsched.scenarios.random_instance(S services, S GPUs, seed, arrivals="poisson")` (the default margin,
docs/RULES.md "Margins"); plan: the registered "heuristic", min-gpus, margin alone (no attainment loop); simulated
for `duration` s of Poisson arrivals (seed 1000 + seed).  Per tenant: batch b, the mean arrivals per cycle it
serves (lambda = rate x d / 1000) as a share of b, its credit (`Margin.tenant_credit`) as a share of b and which term of the rule gave it
(`credited_by`: the per-batch credit or the per-tenant model's), the slack cycles (S - e) / d, its share of its service's requests, the model's late-share bound at lambda
(`stsched.queueing.late_share_bound`) and the simulated share of its requests that missed the SLO.  Rows:
results/tenant_margin/rows.csv; a Markdown table and the utilisation of the tenants by batch are printed.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from experiments.common import Study, markdown_table, results_dir, run_study, study_args
from stsched.checker import tenant_share
from stsched.queueing import late_share_bound, slack_cycles
from stsched.registry import Objective, SolveOptions, run_solver
from stsched.scenarios import random_instance
from stsched.simulation import ArrivalSpec, SimOptions, simulate
from stsched.timing import cycle_ms, gpu_timings
from stsched import validate as V
from stsched.validate import count, seed as seed_arg, services as services_arg

log = logging.getLogger(__name__)

STUDY = Study("tenant_margin", "the Poisson margin per tenant vs the late share the simulator shows",
              typical="1-3 min (12 services)", quick="12 services, 30 s")


def tenant_rows(services: int, seed: int, duration: float) -> list[dict[str, object]]:
    inst = random_instance(services, services, seed, arrivals="poisson")
    judged = run_solver("heuristic", inst, SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=60.0, seed=seed))
    plan = judged.result.plan
    if plan is None or not judged.valid:
        raise SystemExit(f"no valid plan: {judged.result.message}")
    rec = simulate(inst, plan, ArrivalSpec.parse("poisson"), SimOptions(duration_s=duration, seed=1000 + seed)).records
    late = rec.latency_ms() > np.array([s.slo_ms for s in inst.services])[rec.service]
    planned = plan.served()
    rows = []
    for gi, gpu in enumerate(plan.gpus):
        for qi, (p, times) in enumerate(zip(gpu.partitions, gpu_timings(inst, gpu))):
            d = p.duty_ms if p.duty_ms is not None else cycle_ms(times)
            for t, tt in zip(p.tenants, times):
                si = inst.service_names.index(t.service)
                mine = (rec.gpu == gi) & (rec.partition == qi) & (rec.service == si)
                share = tenant_share(inst, plan, t.service, t.rate, planned[t.service])
                budget = inst.slo_budget_ms(t.service)
                lam = t.rate * d / 1000.0
                cycles = slack_cycles(budget, tt.exec_ms, d)
                credit = inst.margin.tenant_credit(t.batch, budget, tt.exec_ms, d, share)
                # which term of the rule's max gave the credit: the per-batch credit or the per-tenant model's
                source = "tenant" if credit > inst.margin.credit(t.batch) else "batch"
                rows.append({"gpu": gi, "partition": qi, "size": p.size, "service": t.service, "batch": t.batch,
                             "load_of_batch": round(lam / t.batch, 3), "credit_of_batch": round(credit / t.batch, 3),
                             "cycles": cycles, "share": float(f"{share:.4g}"), "credited_by": source,
                             "bound": round(late_share_bound(lam, t.batch, cycles, share), 4) if p.procs == 1 else "",
                             "late": round(float(late[mine].mean()), 4) if mine.any() else ""})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=services_arg, default=12)
    ap.add_argument("--seed", type=seed_arg, default=4)
    ap.add_argument("--duration", type=V.positive, default=120.0, help="seconds of Poisson arrivals (default 120)")
    args = study_args(ap, argv, quick="12 services, 30 s", grid=False)
    rows = tenant_rows(12 if args.quick else args.services, args.seed, 30.0 if args.quick else args.duration)
    keys = list(rows[0])
    out = results_dir("tenant_margin") / "rows.csv"
    import pandas as pd

    pd.DataFrame(rows).to_csv(out, index=False)
    print(markdown_table(rows, keys))
    print("\n| batch | tenants | load of batch (min-max) | simulated late (max) |\n|---|---|---|---|")
    for b in sorted({int(r["batch"]) for r in rows}):
        sel = [r for r in rows if r["batch"] == b]
        lates = [float(r["late"]) for r in sel if r["late"] != ""]
        print(f"| {b} | {len(sel)} | {min(float(r['load_of_batch']) for r in sel):.2f}-"
              f"{max(float(r['load_of_batch']) for r in sel):.2f} | {max(lates, default=0.0):.4f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
