"""Column generation for tenant sets too numerous to enumerate into a model (price-and-branch).

When the configurations of tenant sets of k services exceed the model limits (`max_enumerated` raw or `max_configs`
after dominance), they are not dropped: they are generated as candidates once (up to `max_priced`, kept as arrays,
not as model columns), and the LP relaxation of the slots model picks the ones worth adding.  With duals pi_s of the
coverage rows and mu_p of the slot rows, configuration c of size p improves the LP when

    sum_s pi_s * a_{c,s} > mu_p          (a_{c,s}: clipped capacity / rate, as in the model)

Each round adds the `per_round` best such columns and re-solves; when none is left the LP bound of the model with
every candidate is reached.  The MILP then branches over the generated columns only, so its optimum is optimal for
that column set (the result says so); the layout LP of stsched.bounds still bounds the full problem.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

from solvers.exact.patterns import Config, Stop, TooLarge, grow, poll, shared_config
from stsched.checker import cycle_rate
from stsched.problem import Instance
from stsched.registry import Objective

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PricingOptions:
    max_priced: int = 800_000  # candidate configurations generated for pricing at most
    rounds: int = 40
    per_round: int = 400


def _lp_duals(columns: list[Config], layouts, sizes, rates, clip_alpha, objective: Objective, gpus: int):
    """Solve the slots LP over `columns`; return (value, pi per service, mu per size)."""
    n_x, n_y = len(columns), len(layouts)
    active = [s for s, r in enumerate(rates) if r > 0]
    row_of_size = {p: i for i, p in enumerate(sizes)}
    row_of_serv = {s: len(sizes) + i for i, s in enumerate(active)}
    rows, cols, vals = [], [], []
    for j, c in enumerate(columns):
        rows.append(row_of_size[c.size])
        cols.append(j)
        vals.append(1.0)
        for (s, _), cap in zip(c.tenants, c.cap):
            if rates[s] > 0:
                rows.append(row_of_serv[s])
                cols.append(j)
                vals.append(-min(cap, clip_alpha * rates[s]) / rates[s])
    for li, L in enumerate(layouts):
        for p in set(L):
            rows.append(row_of_size[p])
            cols.append(n_x + li)
            vals.append(-float(L.count(p)))
    maxi = objective is Objective.MAX_SCALE
    n = n_x + n_y + (1 if maxi else 0)
    m = len(sizes) + len(active) + (1 if maxi else 0)
    b = np.zeros(m)
    cost = np.zeros(n)
    if maxi:
        for s in active:
            rows.append(row_of_serv[s])
            cols.append(n - 1)
            vals.append(1.0)
        for li in range(n_y):
            rows.append(m - 1)
            cols.append(n_x + li)
            vals.append(1.0)
        b[m - 1] = gpus
        cost[n - 1] = -1.0
    else:
        b[len(sizes):] = -1.0
        cost[n_x:n_x + n_y] = 1.0
    a = coo_matrix((vals, (rows, cols)), shape=(m, n)).tocsr()
    res = linprog(cost, A_ub=a, b_ub=b, bounds=(0, None), method="highs")
    if res.status != 0:
        return None
    marg = -np.asarray(res.ineqlin.marginals)
    pi = np.zeros(len(rates))
    for s in active:
        pi[s] = marg[row_of_serv[s]]
    mu = {p: marg[row_of_size[p]] for p in sizes}
    return (res.fun if not maxi else -res.fun), pi, mu


def _coverage_matrix(instance: Instance, cands: list[tuple], rates: list[float], clip_alpha: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate (size, tenant set, batches, duty) its tenants' services and coverage coefficients, row by row,
    padded with service 0 at coefficient 0: each tenant's cycle rate (`cycle_rate`) clipped at `clip_alpha` x its
    service's rate, over that rate.  Vectorised (session 20: the loop over every candidate's tenants was 10 % of
    the adaptive policy's slowest decisions at 256 services); the same operations in the same order as the scalar
    rule, so the same floats."""
    lens = np.fromiter((len(c[1]) for c in cands), dtype=int, count=len(cands))
    rows = np.repeat(np.arange(len(cands)), lens)
    cols = np.arange(len(rows)) - np.repeat(np.cumsum(lens) - lens, lens)  # each tenant's place in its set
    credit = {b: instance.margin.credit(b) for b in {b for c in cands for b in c[2]}}
    s = np.fromiter((x for c in cands for x in c[1]), dtype=int, count=len(rows))
    b_credit = np.fromiter((credit[b] for c in cands for b in c[2]), dtype=float, count=len(rows))
    rate = np.asarray(rates, dtype=float)[s]
    serv = np.zeros((len(cands), int(lens.max())), dtype=int)
    coef = np.zeros((len(cands), int(lens.max())))
    serv[rows, cols] = s
    coef[rows, cols] = np.minimum(cycle_rate(b_credit, np.repeat([c[3] for c in cands], lens)),
                                  clip_alpha * rate) / rate
    return serv, coef


def priced_configs(instance: Instance, layer: list, pts: dict, first: int, last: int, base: list[Config],
                   layouts, clip_alpha: float, objective: Objective, opts: PricingOptions = PricingOptions(),
                   stop: Stop = None) -> tuple[list[Config], int, str]:
    """`base` plus the configurations of `first`..`last` tenants that the LP prices in; `layer` holds the sets of
    `first - 1` tenants to grow from.  Returns the columns, the largest tenant count among the candidates and a
    note for the discretisation.  `stop` is polled while growing and every LP round (OutOfTime)."""
    rates = [s.rate for s in instance.services]
    sizes = list(instance.mechanism.sizes)
    cands: list[tuple] = []
    k, cut = first - 1, ""
    while k < last:
        try:
            layer = grow(instance, layer, pts, opts.max_priced - len(cands), stop)
        except TooLarge as e:
            cut = f"; candidates stopped at {len(cands)} ({e})"
            break
        if not layer:
            break
        k += 1
        cands += [(p, ss, bs, d) for p, ss, bs, d, _ in layer]
    if not cands:
        return base, first - 1, f"no candidate tenant sets of {first}..{last}"
    poll(stop, "the LP pricing's candidates")
    serv, coef = _coverage_matrix(instance, cands, rates, clip_alpha)
    size_idx = np.array([sizes.index(c[0]) for c in cands])
    # one column per (size, tenant set) and round: the best priced one (the others of its group are no better
    # for these duals, and often dominated)
    group = np.unique(np.column_stack([size_idx, serv]), axis=0, return_inverse=True)[1].ravel()
    columns = list(base)
    taken = np.zeros(len(cands), dtype=bool)
    converged, rounds, value = False, 0, None
    for rounds in range(1, opts.rounds + 1):
        poll(stop, "the LP pricing of larger tenant sets")
        lp = _lp_duals(columns, layouts, sizes, rates, clip_alpha, objective, instance.gpus)
        if lp is None:
            break
        value, pi, mu = lp
        gain = (pi[serv] * coef).sum(axis=1) - np.array([mu[sizes[i]] for i in range(len(sizes))])[size_idx]
        gain[taken] = -np.inf
        order = np.argsort(-gain, kind="stable")
        order = order[gain[order] > 1e-7]
        _, first_of_group = np.unique(group[order], return_index=True)
        best = order[np.sort(first_of_group)][:opts.per_round]
        if len(best) == 0:
            converged = True
            break
        for i in best:
            taken[i] = True
            p, ss, bs, d = cands[i]
            c = shared_config(instance, p, ss, bs, d)
            if c is not None:
                columns.append(c)
    added = len(columns) - len(base)
    note = (f"tenant sets of {first}..{k}: {added} of {len(cands)} candidate configurations priced in by the LP "
            f"({'converged' if converged else 'not converged'} after {rounds} rounds, LP value "
            f"{value if value is None else f'{value:.6g}'}){cut}")
    log.info(note)
    return columns, k, note


__all__ = ["PricingOptions", "priced_configs"]
