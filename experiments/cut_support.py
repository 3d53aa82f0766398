"""Where the configuration LP is loose, and what the rounding cuts could do without pricing (min-gpus).

    python -m experiments.cut_support INSTANCE [--rounds 4] [--time-limit 60]
    stsched experiment cut_support --quick             # a random 16-service A100 MPS instance (seed 7), 2 rounds

One instance (a `stsched scenario ... --out` file): the configuration LP by column generation (solvers.exact.colgen,
`--time-limit` seconds of this process's CPU time), then over its columns only (no more pricing):
- the LP's support: columns used, partitions in all and their fractional parts, partitions per service (quantiles);
- the per-service partition-count rows sum_{c holding s} x_c >= k_s (k_s = ceil(1 / the largest coverage one
  configuration gives s): the one-tenant configurations of the pricing's set-up) added: the LP value with them;
- `--rounds` rounds of the rounding cuts of solvers.exact.cg_cuts separated and added, no pricing: the LP after each.
Over fixed columns an LP only rises, so when the column generation converged these values bound from above what the
same rows do in the full LP (where the pricing finds columns that meet them cheaply: `stsched bound --param cuts=K`
measures that).  Printed as lines; no files.  Used for docs/RESULTS.md ("Rounding cuts in the configuration LP").
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from experiments.common import Study, instance_arg, instance_or_quick, run_study, study_args
from solvers.exact.cg_common import pricing_setup
from solvers.exact.cg_cuts import CutOptions, CutPool
from solvers.exact.cg_master import _Master
from solvers.exact.cg_pricing import CgOptions
from solvers.exact.colgen import column_generation
from solvers.exact.patterns import coverage
from stsched import validate as V
from stsched.registry import Objective

STUDY = Study("cut_support", "where the configuration LP is loose; the rounding cuts over its own columns",
              typical="1-2 min per 256-service instance", quick="16 services, 2 rounds")


def _master(inst, r, covs) -> _Master:
    active = [s for s, sv in enumerate(inst.services) if sv.rate > 0]
    m = _Master(inst.mechanism.sizes, r.layouts, active, Objective.MIN_GPUS, inst.gpus)
    for c, cov in zip(r.configs, covs):
        m.add_config(c, cov)
    return m


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    instance_arg(ap)
    ap.add_argument("--rounds", type=V.whole(0), default=4, help="rounds of cuts over the fixed columns (default 4)")
    ap.add_argument("--time-limit", type=V.time_limit, default=60.0, help="CPU seconds for the column generation")
    args = study_args(ap, argv, quick="a random 16-service A100 MPS instance (seed 7), 2 rounds", grid=False)
    inst = instance_or_quick(ap, args)
    if args.quick:
        args.rounds = min(args.rounds, 2)
    r = column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=args.time_limit, clock="cpu"))
    rates = np.array([s.rate for s in inst.services], dtype=float)
    covs = [coverage(c, rates, r.clip_alpha) for c in r.configs]
    m = _master(inst, r, covs)
    value = m.solve()[0]
    x = m.config_x()
    used = np.flatnonzero(x > 1e-9)
    per = np.zeros(len(rates))
    for i in used:
        for s in covs[i]:
            per[s] += x[i]
    print(f"column generation: {'converged' if r.converged else 'not converged'}, {r.columns} columns, "
          f"LP {value:.4f} (bound {r.bound:.4f})")
    print(f"support: {len(used)} columns, {x.sum():.1f} partitions, fractional parts {(x - np.floor(x)).sum():.1f}; "
          f"partitions per service (0/10/50/90/100 %): {np.round(np.quantile(per, [0, .1, .5, .9, 1]), 2).tolist()}")
    best = np.zeros(len(rates))
    for sd in pricing_setup(inst, r.layouts, CgOptions()).data.values():
        for s, cap in zip(sd.single_svc, sd.single_cap):
            best[s] = max(best[s], min(cap, rates[s]) / rates[s])
    k = np.ceil(1 / np.maximum(best, 1e-12) - 1e-9)
    for s in np.flatnonzero(k >= 2):
        m.add_cut_row({i: 1.0 / k[s] for i, cov in enumerate(covs) if cov.get(int(s), 0.0) > 0})
    print(f"count rows: {int((k >= 2).sum())} services with k_s >= 2 (max {int(k.max())}); "
          f"LP with them {m.solve()[0]:.4f}")
    m = _master(inst, r, covs)
    m.solve()
    pool = CutPool(len(rates), CutOptions(rounds=args.rounds))
    for rnd in range(1, args.rounds + 1):
        new = pool.separate(covs, m.config_x())
        for cut in new:
            m.add_cut_row({i: cut.coef(cov[cut.service]) for i, cov in enumerate(covs)
                           if cov.get(cut.service, 0.0) > 0})
        out = m.solve()
        print(f"cuts round {rnd} over the fixed columns: {len(new)} new ({len(pool)} in all), "
              f"LP {out[0] if out else math.nan:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_study(main))
