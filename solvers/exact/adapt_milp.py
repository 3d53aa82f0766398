"""Exact adapt objective (MILP): from the plan in force, the fewest layout reconfigurations, then the fewest GPUs.

A GPU of the plan in force is *kept* when it runs the same layout (multiset of partition sizes with tenants)
afterwards; its tenants, batches and rate shares may change freely (docs/RULES.md: cheap).  Every other GPU of
the plan in force is rebuilt with a new layout or switched off, and a GPU beyond them is switched on: each is one
reconfiguration (`stsched.heuristic.layout_changes`, GPUs matched by index).  With N GPUs in force, k of them kept
and n new layouts built (on rebuilt or switched-on GPUs), the reconfigurations are max(N - k, n).

Built on the slots formulation (`solvers.exact.patterns.ModelData`, docs/SOLVERS.md), with

    y_L   GPUs with a new layout L (integer)       x_c   partitions with configuration c on new layouts
    k_K   kept GPUs of in-force layout K (0..m_K)   w_c   partitions with configuration c on kept GPUs
    z     reconfigurations

    min Q ((G + 1) z + sum_K k_K + sum_L y_L) - sum_(p,S) m_(p,S)
    s.t. sum_{c: size p} x_c <= sum_L n_L(p) y_L            every size p   (new layouts, slots may stay empty)
         sum_{c: size p} w_c  = sum_K n_K(p) k_K            every size p   (a kept layout keeps every partition)
         sum_c a_{c,s} (x_c + w_c) >= 1                      every service s
         sum_K k_K + sum_L y_L <= G,   z >= N - sum_K k_K,   z >= sum_L y_L
         m_(p,S) <= n_(p,S),   m_(p,S) <= sum_{c: size p, services S} w_c

The last term, third in rank (Q = partitions in force + 1, so it never outweighs one GPU), keeps tenants where
they are: n_(p,S) partitions of size p ran the services S in the plan in force, and the plan is assembled with
such configurations on such partitions first (tenant changes are cheap, not free: a model load).

Configurations are timed as in the slots model (with the worst slowdown of any legal neighbour when the instance
has interference), so any placement of them is valid; GPU memory is held per partition as there.  The coverage
rows are the min-gpus models' (`ModelData.row_coverage`, `row_need`: the checker's tolerance, a relaxation), so its
INFEASIBLE and OPTIMAL speak of the problem (session 19 review: at exact capacities a need 9e-7 above 2 GPUs was
INFEASIBLE on 2); an incumbent the checker rejects (one leaning on the tolerance beyond what a plan may) is replaced
by the plan of the model at exact capacities, FEASIBLE, as in `solvers.exact.driver`.  The optimum is exact for that
model (`ModelData.exact` says when that model is the full problem).  The plan is assembled with
kept GPUs on their old indices (MIG partitions keep their start slices), new layouts on the freed indices first.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pulp

from stsched.bounds import unservable
from solvers.exact.driver import FALLBACK_MIN_S, engine_limit, fallback_note, prepare
from solvers.exact.patterns import ModelData, TooLarge
from solvers.exact.plans import Counts, gpus_of, to_plan
from stsched.checker import check
from stsched.plan import GpuLayout, Plan, gpu_layout, layout_changes
from stsched.problem import Instance
from stsched.registry import Objective, SolveOptions, SolveResult, Status

log = logging.getLogger(__name__)


def _kept_layouts(current: Plan) -> dict[tuple[float, ...], list[int]]:
    """In-force layouts (sizes with tenants) -> the indices of the GPUs that run them."""
    out: dict[tuple[float, ...], list[int]] = {}
    for i, g in enumerate(current.gpus):
        key = gpu_layout(g)
        if key:
            out.setdefault(key, []).append(i)
    return out


def _old_tenant_sets(data: ModelData, current: Plan) -> dict[tuple[float, frozenset[int]], int]:
    """(size, tenant service indices) -> partitions of the plan in force running them (services of the instance)."""
    index = {n: i for i, n in enumerate(data.names)}
    out: dict[tuple[float, frozenset[int]], int] = {}
    for g in current.gpus:
        for p in g.partitions:
            if p.tenants and p.services <= index.keys():
                key = (float(p.size), frozenset(index[n] for n in p.services))
                out[key] = out.get(key, 0) + 1
    return out


def _build(data: ModelData, kept: dict[tuple[float, ...], list[int]],
           old_sets: dict[tuple[float, frozenset[int]], int], tolerant: bool):
    """The model; `tolerant`: the coverage rows as the checker's tolerance credits them (`ModelData.row_coverage`,
    `row_need`, as the min-gpus models: a relaxation, so its INFEASIBLE and OPTIMAL speak of the problem)."""
    G = data.instance.gpus
    prob = pulp.LpProblem("stsched_adapt", pulp.LpMinimize)
    y = {li: pulp.LpVariable(f"y_{li}", 0, G, cat=pulp.LpInteger) for li in range(len(data.layouts))}
    x = {ci: pulp.LpVariable(f"x_{ci}", 0, None, cat=pulp.LpInteger) for ci in range(len(data.configs))}
    w = {ci: pulp.LpVariable(f"w_{ci}", 0, None, cat=pulp.LpInteger) for ci in range(len(data.configs))}
    keys = list(kept)
    k = {j: pulp.LpVariable(f"k_{j}", 0, len(kept[K]), cat=pulp.LpInteger) for j, K in enumerate(keys)}
    z = pulp.LpVariable("z", 0)
    sizes = sorted(set(data.sizes) | {p for K in keys for p in K})
    for p in sizes:
        xs = [x[ci] for ci, c in enumerate(data.configs) if c.size == p]
        ws = [w[ci] for ci, c in enumerate(data.configs) if c.size == p]
        new_slots = pulp.lpSum(data.slots(L, p) * y[li] for li, L in enumerate(data.layouts))
        if xs:
            prob += pulp.lpSum(xs) <= new_slots, f"slots_{p:g}"
        prob += pulp.lpSum(ws) == pulp.lpSum(K.count(p) * k[j] for j, K in enumerate(keys)), f"kept_{p:g}"
    for s, r in enumerate(data.rates):
        if r > 0:
            terms = [a * (x[ci] + w[ci]) for ci, c in enumerate(data.configs) for si, a in
                     data.row_coverage(c, tolerant).items() if si == s]
            prob += pulp.lpSum(terms) >= data.row_need(s, tolerant), f"cover_{s}"
    kept_gpus, new_gpus = pulp.lpSum(k.values()), pulp.lpSum(y.values())
    prob += kept_gpus + new_gpus <= G, "gpus"
    prob += z >= sum(len(v) for v in kept.values()) - kept_gpus, "z_freed"
    prob += z >= new_gpus, "z_built"
    # third: partitions of kept layouts that keep their tenant services (m <= old ones, m <= kept configs alike)
    by_set: dict[tuple[float, frozenset[int]], list] = {}
    for ci, c in enumerate(data.configs):
        by_set.setdefault((float(c.size), frozenset(s for s, _ in c.tenants)), []).append(w[ci])
    same = {}
    for key, n in old_sets.items():
        alike = by_set.get(key)
        if alike:
            same[key] = pulp.LpVariable(f"m_{len(same)}", 0, n)
            prob += same[key] <= pulp.lpSum(alike), f"same_{len(same)}"
    q = sum(old_sets.values()) + 1  # the third term never outweighs one GPU
    prob += q * ((G + 1) * z + kept_gpus + new_gpus) - pulp.lpSum(same.values())
    return prob, y, x, w, k, keys


def _assemble(data: ModelData, current: Plan, kept: dict, keys: list, k_val: dict[int, int],
              w_val: dict[int, int], new_gpus: list, solver: str) -> Plan:
    """Kept GPUs on their old indices with configurations of their sizes, a partition's old tenant services first
    (configurations are timed for any neighbours, so every placement is valid); new layouts on freed indices
    first."""
    pool: dict[float, list] = {}
    for ci, n in sorted(w_val.items()):
        pool.setdefault(data.configs[ci].size, []).extend([data.configs[ci]] * n)

    def services(c) -> frozenset[str]:
        return frozenset(data.names[s] for s, _ in c.tenants)

    slots: dict[int, list] = {}  # old index -> configurations (kept GPUs, old partition order)
    for j, K in enumerate(keys):
        for i in kept[K][:k_val.get(j, 0)]:
            slots[i] = [None] * len([p for p in current.gpus[i].partitions if p.tenants])
    for fill_any in (False, True):  # same tenant services where the pool has them, then whatever is left
        for i, chosen in slots.items():
            old = [p for p in current.gpus[i].partitions if p.tenants]
            for n, p in enumerate(old):
                if chosen[n] is not None:
                    continue
                m = next((m for m, c in enumerate(pool[p.size]) if fill_any or services(c) == p.services), None)
                if m is not None:
                    chosen[n] = pool[p.size].pop(m)
    order: list[list | None] = []
    fresh = iter(new_gpus)
    for i in range(len(current.gpus)):
        order.append(slots[i] if i in slots else next(fresh, None))
    order.extend(fresh)
    plan = to_plan(data, [g for g in order if g], Objective.MIN_GPUS, solver)
    built = iter(plan.gpus)
    gpus = []
    for i, g in enumerate(order):
        if not g:
            gpus.append(GpuLayout(()))
            continue
        layout = next(built)
        if i in slots:  # a kept GPU keeps its partitions' places (MIG start slices)
            old = [p for p in current.gpus[i].partitions if p.tenants]
            layout = GpuLayout(tuple(replace(p, start=o.start) for p, o in zip(layout.partitions, old)))
        gpus.append(layout)
    while gpus and not gpus[-1].partitions:
        gpus.pop()
    return replace(plan, gpus=tuple(gpus))


def solve_adapt(solver: str, instance: Instance, options: SolveOptions, solve_model) -> SolveResult:
    """`solve_model(prob, options, limit) -> (status, bound)`: the engine (CBC or HiGHS through PuLP)."""
    t0 = time.perf_counter()
    current = options.current_plan
    if current is None:
        return SolveResult(solver, Status.UNKNOWN, message="adapt needs options.current_plan")
    bad = unservable(instance, Objective.MIN_GPUS)
    if bad:
        return SolveResult(solver, Status.INFEASIBLE, message="; ".join(f"{k}: {v}" for k, v in bad.items()),
                           infeasible_services=tuple(bad))
    opts = replace(options, objective=Objective.MIN_GPUS,
                   params=tuple(kv for kv in options.params if kv[0] != "formulation") + (("formulation", "slots"),))
    try:
        data = prepare(instance, opts)
    except TooLarge as e:
        return SolveResult(solver, Status.UNKNOWN, message=f"model too large to enumerate: {e}")
    kept = _kept_layouts(current)
    old_sets = _old_tenant_sets(data, current)

    def run(tolerant: bool):
        """The model with the checker's tolerance (`tolerant`) or at exact capacities, its build counted in the
        limit (`engine_limit`); the fallback (not `tolerant`) is skipped ("skipped") with under FALLBACK_MIN_S left
        after its build."""
        prob, y, x, w, k, keys = _build(data, kept, old_sets, tolerant)
        left = options.time_limit_s - (time.perf_counter() - t0)
        if not tolerant and left < FALLBACK_MIN_S:
            return f"skipped: {max(left, 0.0):.2g} s left", None, "", 0
        status, _ = solve_model(prob, opts, engine_limit(options.time_limit_s, t0))
        if status not in ("optimal", "feasible"):
            return status, None, "", 0

        def val(var) -> int:
            return int(round(var.varValue or 0.0))

        new = gpus_of(data, Counts(layouts={li: val(v) for li, v in y.items() if val(v)},
                                   configs={ci: val(v) for ci, v in x.items() if val(v)}))
        plan = _assemble(data, current, kept, keys, {j: val(v) for j, v in k.items()},
                         {ci: val(v) for ci, v in w.items() if val(v)}, new, solver)
        report = check(instance, plan)
        rejected = "; ".join(str(v) for v in report.violations[:3])
        return status, (plan if report.valid else None), rejected, sum(val(v) for v in k.values())

    notes: list[str] = []
    tolerant = data.tolerant  # (the min-gpus models' rows: the checker's tolerance, a relaxation)
    status, plan, rejected, kept_n = run(tolerant)
    if status == "infeasible":
        return SolveResult(solver, Status.INFEASIBLE if data.exact else Status.UNKNOWN,
                           message=f"no plan on {instance.gpus} GPUs serves the new rates"
                           + ("" if data.exact else " in the restricted model"), discretisation=data.discretisation)
    if rejected and tolerant:
        # the relaxation's incumbent leans on the tolerance beyond what a plan may (only within it of an edge): the
        # plan from the model at exact capacities, not proven optimal (as solvers.exact.driver's fallback)
        first = rejected
        status, plan, rejected, kept_n = run(False)
        if status.startswith("skipped"):  # (rejected cleared, as the driver does: no false "rejected" error)
            notes.append(fallback_note(first, f"no time left ({status[len('skipped: '):]}) for the model at exact "
                                              f"capacities"))
        else:
            notes.append(fallback_note(first, f"the plan from the model at exact capacities ({status})"))
            status = "feasible" if status == "optimal" else status  # (the exact model restricts the problem)
    if plan is None and not rejected:
        lead = "no plan" if notes else "no incumbent within the time limit"  # (notes: the fallback's status)
        return SolveResult(solver, Status.UNKNOWN, message="; ".join([lead, *notes]),
                           discretisation=data.discretisation)
    if plan is None:
        msg = "extracted plan rejected by the checker: " + rejected
        log.error("%s: %s", solver, msg)
        return SolveResult(solver, Status.UNKNOWN, message="; ".join([*notes, msg]),
                           discretisation=data.discretisation)
    changes = layout_changes(current, plan)
    optimal = status == "optimal" and data.exact
    msg = (f"adapt: {changes} layout reconfigurations, {plan.gpus_used} GPUs ({kept_n} kept of "
           f"{sum(len(v) for v in kept.values())} in force)"
           + ("" if data.exact else "; optimal only for the restricted model" if status == "optimal" else ""))
    return SolveResult(solver, Status.OPTIMAL if optimal else Status.FEASIBLE, float(changes),
                       float(changes) if optimal else None, plan=plan, discretisation=data.discretisation,
                       message="; ".join([msg, *notes, *data.notes]))

