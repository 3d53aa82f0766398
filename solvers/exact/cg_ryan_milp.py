"""The features branched on by the branch-and-price on configurations (solvers.exact.cg_ryan) and its pricing by
an exact MILP, used where the configurations are too many to list (solvers.exact.cg_enum prices the others).

A feature is a whole count of every plan: ``pair`` (s, t), the partitions that hold both s and t; ``usage`` (s, p),
s's partitions of size p; ``service`` s, all of s's partitions.  A node's rows lo <= sum_c h_f(c) x_c <= hi
restrict the plans; a row with hi = 0 forbids its configurations (`allowed`).

The pricing at a node must price each row's dual sigma_f: the value of a configuration is pi . a_c + sum_f sigma_f
h_f(c), quadratic in the tenants for pairs, so here it is an exact MILP per partition size (`price_sets`; HiGHS, its
matrix built sparse): a binary per operating point (service, batch) of the size, at most one per service, at least
two tenants; the duty d = sum of the chosen times enters through t = 1/d and q_i = z_i t (exact for binary z:
q_i <= t, q_i <= T z_i, q_i >= t - T (1 - z_i), sum_i e_i q_i = 1), a tenant's value is min(w_i q_i, u_i z_i)
(pi_s min(1000 credit(b) / d, clip r_s) / r_s, as the master's coverage), its latency d + e_i <= budget (big-M on
z_i), the memory of the set (cg_pricing's `mem_cap`, widened), forbidden pairs z_s + z_t <= 1, and a pair's
indicator (<= both, or >= their sum - 1, by the sign of its dual).  One-tenant configurations (every batch and
process count, either throughput rule) are enumerated (`price_singles`).  The MILP's dual bound is the proven V_p;
the sets it finds are columns (the greedy of solvers.exact.cg_pricing proposes more, filtered).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from solvers.exact.cg_pricing import _SizeData, mem_cap
from solvers.exact.patterns import Config, coverage, shared_config
from stsched.checker import tolerant_limit
from stsched.problem import Instance

MIP_GAP = 1e-7  # the pricing MILP's relative gap (its optimum is widened by it in the bound)


@dataclass(frozen=True)
class Feature:
    """A whole count of every plan: partitions holding both s and t (`pair`), s in a partition of `size`
    (`usage`), or s at all (`service`)."""

    kind: str
    s: int
    t: int = -1
    size: float = 0.0

    def count(self, c: Config) -> int:
        ss = {x for x, _ in c.tenants}
        if self.kind == "pair":
            return int(self.s in ss and self.t in ss)
        if self.kind == "usage":
            return int(c.size == self.size and self.s in ss)
        return int(self.s in ss)

    def label(self, names) -> str:
        if self.kind == "pair":
            return f"{names[self.s]}+{names[self.t]} together"
        if self.kind == "usage":
            return f"{names[self.s]} in size {self.size:g}"
        return f"{names[self.s]} partitions"


Row = tuple[Feature, float, float]  # (feature, lower, upper): lo <= sum_c h(c) x_c <= hi


def allowed(c: Config, rows: tuple[Row, ...]) -> bool:
    """Whether a configuration may be used at all under the rows (a feature capped at 0 forbids it)."""
    return all(not (hi <= 0 and f.count(c)) for f, _, hi in rows)


def feature_value(c: Config, sig: dict[Feature, float]) -> float:
    return sum(v * f.count(c) for f, v in sig.items() if v)


def price_singles(sd: _SizeData, pi: np.ndarray, sig: dict[Feature, float], rates: np.ndarray, clip: float,
                  rows: tuple[Row, ...]) -> list[tuple[float, Config]]:
    """Every one-tenant configuration of the size with its value (pi . a + sigma . h), the forbidden ones left out."""
    out = []
    for c in sd.singles:
        if allowed(c, rows):
            out.append((sum(pi[s] * a for s, a in coverage(c, rates, clip).items()) + feature_value(c, sig), c))
    return out


def price_sets(instance: Instance, sd: _SizeData, pi: np.ndarray, sig: dict[Feature, float], rates: np.ndarray,
               clip: float, rows: tuple[Row, ...], time_limit: float = 60.0) -> tuple[float, Config | None]:
    """The exact pricing of tenant sets (two tenants or more, one process) of size sd.size: (a proven upper bound on
    every such configuration's value pi . a + sigma . h under the rows, the best configuration found or None).  See
    the module docstring for the model."""
    cap_mem = mem_cap(instance, sd.size)  # the largest set memory the rule accepts, from below (bisection) ...
    cap_mem = cap_mem * (1 + 1e-9) + 1e-6 if math.isfinite(cap_mem) else cap_mem  # ... widened: the MILP may only
    # admit more sets than the rule, which keeps its bound valid
    ctx = instance.device.context_mb
    banned = {(f.s, f.size) for f, _, hi in rows if hi <= 0 and f.kind == "usage"}
    banned_s = {f.s for f, _, hi in rows if hi <= 0 and f.kind == "service"}
    keep = [i for i in range(len(sd.svc)) if (int(sd.svc[i]), sd.size) not in banned and int(sd.svc[i]) not in banned_s
            and rates[sd.svc[i]] > 0 and sd.mem[i] <= cap_mem * (1 + 1e-9)]
    if not keep or (instance.mechanism.max_tenants is not None and instance.mechanism.max_tenants < 2):
        return -math.inf, None
    lin_all = np.zeros(len(sd.svc))  # per-point constants of the features linear in the tenants
    for f, v in sig.items():
        if v and f.kind in ("usage", "service") and (f.kind == "service" or f.size == sd.size):
            lin_all[sd.svc == f.s] += v
    up = {f.s for f, v in sig.items() if f.kind == "pair" and v > 0} | {f.t for f, v in sig.items()
                                                                           if f.kind == "pair" and v > 0}
    # a set's tenant of dual 0 with no positive feature adds nothing but time and memory
    # (so of such a service only its points of least time and memory are kept: exact, and a smaller model)
    useless = {int(sd.svc[i]) for i in keep} - {int(sd.svc[i]) for i in keep if pi[sd.svc[i]] > 0 or lin_all[i] > 0}
    useless -= up
    keep = [i for i in keep if int(sd.svc[i]) not in useless or not any(
        int(sd.svc[j]) == int(sd.svc[i]) and sd.e[j] <= sd.e[i] and sd.mem[j] <= sd.mem[i]
        and (sd.e[j], sd.mem[j], j) < (sd.e[i], sd.mem[i], i) for j in keep)]
    if keep:  # a point too long to share its budget with the shortest point of another service is in no set
        short = {}
        for i in keep:
            short[int(sd.svc[i])] = min(short.get(int(sd.svc[i]), math.inf), float(sd.e[i]))
        other = {s: min((v for t, v in short.items() if t != s), default=math.inf) for s in short}
        keep = [i for i in keep if sd.e[i] + other[int(sd.svc[i])] + sd.e[i] <= tolerant_limit(sd.budget[i])]
    svcs = sorted({int(sd.svc[i]) for i in keep})
    if len(svcs) < 2:
        return -math.inf, None
    n = len(keep)
    e = sd.e[keep].astype(float)
    budget = tolerant_limit(sd.budget[keep])  # the checker's tolerance (stsched.layouts.fits)
    svc = sd.svc[keep]
    r = rates[svc]
    w = pi[svc] * sd.cred[keep] / r  # value per unit of 1/d
    u = pi[svc] * clip
    short = {int(x): float(e[svc == x].min()) for x in svcs}
    other = np.array([min(v for t, v in short.items() if t != int(x)) for x in svc])
    t_lo, t_hi = 1.0 / float(budget.max()), 1.0 / float((e + other).min())
    pair_sig = [(f, v) for f, v in sig.items() if f.kind == "pair" and v and f.s in svcs and f.t in svcs]
    lin = lin_all[keep]
    forbid = [(f.s, f.t) for f, _, hi in rows if hi <= 0 and f.kind == "pair"]
    # variables: z (n), q (n), v (n), t (1), y (pairs)
    m = len(pair_sig)
    nv = 3 * n + 1 + m
    iz, iq, iv, it = 0, n, 2 * n, 3 * n
    cost = np.zeros(nv)
    cost[iv:iv + n] = -1.0
    cost[iz:iz + n] = -lin
    for k, (_, v) in enumerate(pair_sig):
        cost[it + 1 + k] = -v
    r_idx: list[np.ndarray] = []  # the constraint matrix, built sparse (row by row: indices, values)
    r_val: list[np.ndarray] = []
    lo, hi = [], []

    def row(coefs: dict[int, float], lower: float, upper: float) -> None:
        nz = {j: x for j, x in coefs.items() if x != 0.0}
        r_idx.append(np.fromiter(nz.keys(), dtype=np.int32, count=len(nz)))
        r_val.append(np.fromiter(nz.values(), dtype=float, count=len(nz)))
        lo.append(lower), hi.append(upper)

    by_s: dict[int, list[int]] = {}
    for i in range(n):
        by_s.setdefault(int(svc[i]), []).append(i)
    for s, idx in by_s.items():
        row({iz + i: 1.0 for i in idx}, -np.inf, 1.0)
    kmax = instance.mechanism.max_tenants
    row({iz + i: 1.0 for i in range(n)}, 2.0, float(kmax) if kmax else np.inf)
    row({iq + i: float(e[i]) for i in range(n)}, 1.0, 1.0)  # t * d = 1
    for i in range(n):
        row({iq + i: 1.0, it: -1.0}, -np.inf, 0.0)  # q <= t
        row({iq + i: 1.0, iz + i: -1.0 / float(e[i] + other[i])}, -np.inf, 0.0)  # q <= z / (shortest duty with i)
        row({iq + i: 1.0, it: -1.0, iz + i: -t_hi}, -t_hi, np.inf)  # q >= t - T (1 - z)
        row({iv + i: 1.0, iq + i: -float(w[i])}, -np.inf, 0.0)
        row({iv + i: 1.0, iz + i: -float(u[i])}, -np.inf, 0.0)
    d_max = float(budget.max())
    for s, idx in by_s.items():  # d + e_s <= budget_s when s is a tenant (one budget per service)
        b_s = float(budget[idx[0]])
        big_m = max(0.0, d_max - b_s)
        lat = {iz + j: float(e[j]) for j in range(n)}
        for i in idx:
            lat[iz + i] += float(e[i]) + big_m
        row(lat, -np.inf, b_s + big_m)
    if math.isfinite(cap_mem):
        row({iz + i: float(sd.mem[keep[i]] - ctx) for i in range(n)}, -np.inf, cap_mem - ctx)
    for s, t in forbid:
        if s in by_s and t in by_s:
            row({**{iz + i: 1.0 for i in by_s[s]}, **{iz + i: 1.0 for i in by_s[t]}}, -np.inf, 1.0)
    for k, (f, v) in enumerate(pair_sig):
        j = it + 1 + k
        zs, zt = {iz + i: 1.0 for i in by_s[f.s]}, {iz + i: 1.0 for i in by_s[f.t]}
        if v > 0:  # the indicator is pushed up: cap it by each tenant
            row({j: 1.0, **{a: -1.0 for a in zs}}, -np.inf, 0.0)
            row({j: 1.0, **{a: -1.0 for a in zt}}, -np.inf, 0.0)
        else:  # pushed down: at least both tenants' sum - 1
            row({j: 1.0, **{a: -1.0 for a in zs}, **{a: -1.0 for a in zt}}, -1.0, np.inf)
    import highspy

    from solvers.exact.milp import quiet_highs

    lb = np.zeros(nv)
    ub = np.full(nv, highspy.kHighsInf)
    ub[iz:iz + n], ub[iq:iq + n], ub[it + 1:] = 1.0, t_hi, 1.0
    lb[it], ub[it] = t_lo, t_hi
    h = quiet_highs()
    h.setOptionValue("mip_rel_gap", MIP_GAP)
    h.setOptionValue("time_limit", float(max(time_limit, 0.05)))
    h.addVars(nv, lb, ub)
    h.changeColsCost(nv, np.arange(nv, dtype=np.int32), cost)
    starts = np.r_[0, np.cumsum([len(i) for i in r_idx])[:-1]].astype(np.int32)
    inf = highspy.kHighsInf
    h.addRows(len(lo), np.array([x if math.isfinite(x) else -inf for x in lo]),
              np.array([x if math.isfinite(x) else inf for x in hi]), int(sum(len(i) for i in r_idx)), starts,
              np.concatenate(r_idx).astype(np.int32), np.concatenate(r_val))
    h.changeColsIntegrality(n, np.arange(iz, iz + n, dtype=np.int32),
                            np.array([highspy.HighsVarType.kInteger] * n))
    h.run()
    status = h.getModelStatus()
    info = h.getInfo()
    # a valid bound whatever the MILP's status: every tenant's and feature's most, and HiGHS's dual bound (or, when
    # it says optimal, its optimum widened by the gap tolerance: its dual bound can be stale, docs/SOLVERS.md)
    best_s = {s: max(max(float(u[i]), 0.0) + max(float(lin[i]), 0.0) for i in idx) for s, idx in by_s.items()}
    trivial = sum(sorted(best_s.values(), reverse=True)[: kmax or len(best_s)]) + sum(max(v, 0.0) for _, v in pair_sig)
    if status == highspy.HighsModelStatus.kInfeasible:  # every set holds a feasible pair: trusted if none is
        d2 = e[:, None] + e[None, :]
        ok = (d2 + e[:, None] <= budget[:, None]) & (d2 + e[None, :] <= budget[None, :]) \
            & (svc[:, None] != svc[None, :])
        if math.isfinite(cap_mem):
            mem_k = sd.mem[keep].astype(float)
            ok &= mem_k[:, None] + mem_k[None, :] - ctx <= cap_mem
        for s, t in forbid:
            ok &= ~(((svc[:, None] == s) & (svc[None, :] == t)) | ((svc[:, None] == t) & (svc[None, :] == s)))
        return (trivial if ok.any() else -math.inf), None
    has = info.primal_solution_status == 2
    dual = -float(info.mip_dual_bound) if abs(info.mip_dual_bound) < 1e30 else trivial
    if status == highspy.HighsModelStatus.kOptimal and has:
        obj = -float(info.objective_function_value)
        dual = min(dual, obj + MIP_GAP * abs(obj) + 1e-9)
    bound = min(dual + 1e-7 * abs(dual) + 1e-10, trivial)
    x = np.asarray(h.getSolution().col_value) if has else None
    if x is None:
        return bound, None
    pts = sorted((keep[i] for i in range(n) if x[iz + i] > 0.5), key=lambda i: sd.svc[i])
    if len(pts) < 2:
        return bound, None
    d = float(sum(sd.e[i] for i in pts))
    if any(d > sd.room[i] for i in pts):  # (the checker's rule, `stsched.layouts.duty_room`)
        return bound, None
    c = shared_config(instance, sd.size, tuple(int(sd.svc[i]) for i in pts), tuple(int(sd.batch[i]) for i in pts), d)
    return bound, (c if c is not None and allowed(c, rows) else None)


__all__ = ["Feature", "MIP_GAP", "Row", "allowed", "feature_value", "price_sets", "price_singles"]
