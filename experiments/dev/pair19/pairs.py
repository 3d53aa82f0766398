"""Step 1 of issue 17 / session 19: do rank-1 Chvatal-Gomory cuts over SEVERAL coverage rows lift the converged
configuration LP with per-service rounding cuts?  Over the fixed columns of a saved run (converge.py), no pricing.

    python -m experiments.dev.pair19.pairs I.json RUN.pkl [--rounds 3]

The rows: every plan has whole x_c >= 0 and sum_c a_{c,s} x_c >= 1 for every service s.  For services S (two or
three) and multipliers u_s > 0,

    sum_c ceil(sum_{s in S} u_s a_{c,s}) x_c >= ceil(sum_s u_s)

holds for every plan (the left side is whole and at least sum_s u_s).  A group S whose services never share a column
is dominated by the sum of its single-row cuts (ceil(u1 + u2) <= ceil(u1) + ceil(u2)), so the groups are the tenant
sets (and their pairs) of the columns the LP uses fractionally; the multipliers come from the coverages of the
columns holding each service in the LP's support (u = (1 - 1e-7) m / a, m = 1..3, and 0 for a service), as the
per-service separation does for one row.

Over fixed columns an LP only rises when rows are added, so each value here bounds from above what the same rows can
give the full LP (new columns can lower it).  Arms, each from the saved master (columns and per-service cuts):
  single  - more rounds of the per-service cuts (solvers.exact.cg_cuts) alone: the calibration (these cuts, priced,
            gave about a fifth of their rise over fixed columns in the record);
  multi   - rounds of the several-row cuts alone;
  both    - both families each round;
  objective - the row sum_L y_L >= ceil(bound) (valid: the bound is), then both families: whether the LP passes it.
Development only; CPU time of this process; printed as lines.
"""

from __future__ import annotations

import argparse
import itertools
import math
import pickle
import time

import numpy as np

from solvers.exact.cg_cuts import ROUND, T_SHRINK, CutOptions, CutPool
from solvers.exact.cg_master import _Master
from solvers.exact.patterns import coverage
from stsched.io import instance_digest, load_instance
from stsched.registry import Objective

MIN_VIOL = 0.02  # as the per-service cuts (a share of the right-hand side)


def multipliers(pts: list[float], multiples: int = 3, grid: float = 0.0) -> list[float]:
    us = {(1 - T_SHRINK) * m / a for a in pts for m in range(1, multiples + 1) if a > 1e-9}
    if grid > 0:  # and a uniform grid of multipliers in (0, 3] (a wider search than the coverages suggest)
        us |= {(1 - T_SHRINK) * k * grid for k in range(1, int(round(3 / grid)) + 1)}
    return sorted(u for u in us if u <= 4.0)  # (u above 4 only restates a coverage row many times)


class Multi:
    """Several-row CG cuts: (services, multipliers, rhs)."""

    def __init__(self, grid: float = 0.0):
        self.keys: set[tuple] = set()
        self.grid = grid

    def separate(self, covs, x, groups_max: int = 3, per_group: int = 1):
        support = np.flatnonzero(x > 1e-9)
        frac = [i for i in support if x[i] - math.floor(x[i] + 1e-9) > 1e-6]
        groups: set[tuple[int, ...]] = set()
        for i in frac:
            ten = sorted(covs[i])
            for k in range(2, min(groups_max, len(ten)) + 1):
                groups.update(itertools.combinations(ten, k))
        # per service, the coverages of the support columns holding it (multiplier candidates)
        pts: dict[int, list[float]] = {}
        for i in support:
            for s, a in covs[i].items():
                pts.setdefault(s, []).append(a)
        found = []
        for g in groups:
            cols = [i for i in support if any(s in covs[i] for s in g)]
            A = np.array([[covs[i].get(s, 0.0) for s in g] for i in cols])  # (cols, |g|)
            xv = x[cols]
            cand = [[0.0] + multipliers(pts[s], grid=self.grid) for s in g]
            U = np.array(list(itertools.product(*cand)))  # (combos, |g|)
            U = U[(U > 0).sum(axis=1) >= 2]  # a single nonzero multiplier is a per-service cut
            if not len(U):
                continue
            rhs = np.ceil(U.sum(axis=1) - ROUND)
            lhs = xv @ np.ceil(A @ U.T + ROUND)  # (combos,)
            viol = (rhs - lhs) / rhs
            ok = (rhs >= 2) & (viol > MIN_VIOL)
            for j in np.argsort(-viol)[:per_group]:
                if ok[j]:
                    key = (g, tuple(np.round(U[j], 9)))
                    if key not in self.keys:
                        self.keys.add(key)
                        found.append((float(viol[j]), g, U[j].copy(), float(rhs[j])))
        found.sort(key=lambda f: -f[0])
        return found, len(groups)


def coefs_multi(covs, g, u, rhs):
    out = {}
    for i, cov in enumerate(covs):
        v = sum(uu * cov.get(s, 0.0) for s, uu in zip(g, u))
        if v > 0:
            out[i] = math.ceil(v + ROUND) / rhs
    return out


def build(inst, r, covs, cuts):
    active = [s for s, sv in enumerate(inst.services) if sv.rate > 0]
    m = _Master(inst.mechanism.sizes, r.layouts, active, Objective.MIN_GPUS, inst.gpus)
    for c, cov in zip(r.configs, covs):
        m.add_config(c, cov)
    for cut in cuts:
        m.add_cut_row({i: cut.coef(cov[cut.service]) for i, cov in enumerate(covs) if cov.get(cut.service, 0.0) > 0})
    return m


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("instance")
    ap.add_argument("run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--arms", default="single,multi,both,objective")
    ap.add_argument("--grid", type=float, default=0.0, help="also multipliers k * GRID in (0, 3]")
    ap.add_argument("--groups-max", type=int, default=3, help="services per several-row cut: 2 or 3")
    args = ap.parse_args()
    inst = load_instance(args.instance)
    with open(args.run, "rb") as f:  # (a pickle written by converge.py: development files only)
        saved = pickle.load(f)
    if not isinstance(saved, dict) or saved.get("instance") != instance_digest(inst):
        ap.error(f"{args.run}: not a run saved by converge.py for {args.instance}")  # (one line, exit 2)
    r, cuts = saved["result"], saved["cuts"]
    rates = np.array([s.rate for s in inst.services], dtype=float)
    covs = [coverage(c, rates, r.clip_alpha) for c in r.configs]
    print(f"saved run: bound {r.bound:.4f} (rounded {math.ceil(r.bound - 1e-6)}), master {r.lp_value:.4f}, converged "
          f"{r.converged}, {len(cuts)} per-service cuts, {len(covs)} columns, {saved['cpu_s']:.0f} s of CPU")
    m0 = build(inst, r, covs, cuts)
    v0 = m0.solve()[0]
    x0 = m0.config_x()
    sup = np.flatnonzero(x0 > 1e-9)
    fr = [i for i in sup if x0[i] - math.floor(x0[i] + 1e-9) > 1e-6]
    ten = np.array([len(covs[i]) for i in fr])
    print(f"restricted master with the per-service cuts: {v0:.4f}; support {len(sup)} columns, {len(fr)} fractional "
          f"(fractional parts {sum(x0[i] - math.floor(x0[i] + 1e-9) for i in fr):.1f}); tenants of the fractional "
          f"columns: " + ", ".join(f"{k}: {int((ten == k).sum())}" for k in sorted(set(ten.tolist()))))
    per = np.zeros(len(rates))
    for i in fr:
        for s in covs[i]:
            per[s] += 1
    print("fractional columns holding a service (0/10/50/90/100 %): "
          f"{np.quantile(per[rates > 0], [0, .1, .5, .9, 1]).round(1).tolist()}")
    for arm in args.arms.split(","):
        t0 = time.process_time()
        m = build(inst, r, covs, cuts)
        pool = CutPool(len(rates), CutOptions(rounds=args.rounds))
        pool.add(list(cuts))
        multi = Multi(args.grid)
        v = m.solve()[0]
        line = [f"{v:.4f}"]
        broken = 0  # several-row cuts that a whole covering point violates (must stay 0)
        if arm == "objective":
            idx = list(range(len(r.layouts)))
            need = math.ceil(r.bound - 1e-6)
            m.add_y_row({i: 1.0 for i in idx}, float(need), math.inf)
            v = m.solve()[0]
            line.append(f"row y>={need}: {v:.4f}")
        for rnd in range(1, args.rounds + 1):
            x = m.config_x()
            n1 = n2 = 0
            if arm in ("single", "both", "objective"):
                new = pool.separate(covs, x)
                for cut in new:
                    m.add_cut_row({i: cut.coef(cov[cut.service]) for i, cov in enumerate(covs)
                                   if cov.get(cut.service, 0.0) > 0})
                n1 = len(new)
            if arm in ("multi", "both", "objective"):
                found, ng = multi.separate(covs, x, groups_max=args.groups_max)
                whole = np.ceil(x - 1e-9)  # a whole point that covers every service: each cut must hold there
                for _, g, u, rhs in found:
                    h = coefs_multi(covs, g, u, rhs)
                    broken += sum(v * whole[i] for i, v in h.items()) < 1 - 1e-9
                    m.add_cut_row(h)
                n2 = len(found)
            out = m.solve()
            v = out[0] if out else math.nan
            line.append(f"r{rnd}: {v:.4f} (+{n1} single, +{n2} multi)")
        print(f"arm {arm}: " + " -> ".join(line) + f"  [{time.process_time() - t0:.1f} s CPU]"
              + (f" ({broken} cuts violated by a whole point: INVALID)" if broken else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
