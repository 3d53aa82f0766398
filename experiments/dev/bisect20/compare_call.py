"""Issue 18, session 20: the adapt calls of one decision, as two commits answered them, judged by the same terms.

    PYTHONPATH=/tmp/bis20 python experiments/dev/bisect20/compare_call.py OLD.pkl NEW.pkl [--solve]

OLD.pkl, NEW.pkl: `trace_calls --dump-at MIN` of the same decision at two commits.  Checks that the calls were asked
the same question (instance and plan in force equal), then prints for each adapt call and each plan returned:
the exact adapt model's objective (`solvers/exact/adapt_milp.py` `_build`) and its term `same`, its layout changes, GPUs, GPUs kept / switched on / freed, the exact model's first term z (max of freed
and switched on), tenant changes on kept GPUs, and the least share of a service's rate that its tenants carry at
exact capacities (below 1: the plan leans on the checker's tolerance; the policy's `rebalance` accepts 1 - 1e-9).
With --solve, the call is also run again by the code on PYTHONPATH (both models' answers on the same question).
"""

from __future__ import annotations

import argparse
import pickle
from collections import Counter
from pathlib import Path

from stsched.plan import Plan, kept_layout, layout_changes, tenant_changes
from stsched.planning.adapt.rebalance import service_capacities
from stsched.registry import run_solver

try:  # run as a file from another commit's worktree: this directory is on sys.path
    from trace_calls import fingerprint, layout_print
except ImportError:
    from experiments.dev.bisect20.trace_calls import fingerprint, layout_print


def _tenant_sets(partitions) -> Counter:
    return Counter((float(p.size), p.services) for p in partitions if p.tenants)


def terms(instance, current: Plan, plan: Plan | None) -> str:
    """The exact adapt model's objective terms of `plan` from `current` (solvers/exact/adapt_milp.py `_build`:
    q ((G + 1) z + kept + new) - same), and the plan's layout and tenant changes, least share and fingerprint."""
    if plan is None:
        return "no plan"
    kept_at = [k for k in range(len(plan.gpus)) if kept_layout(current, plan, k)]
    kept = len(kept_at)
    new, freed = plan.gpus_used - kept, current.gpus_used - kept
    old = _tenant_sets(p for g in current.gpus for p in g.partitions)
    now = _tenant_sets(p for k in kept_at for p in plan.gpus[k].partitions)
    same = sum(min(n, now[key]) for key, n in old.items())
    q = sum(old.values()) + 1
    objective = q * ((instance.gpus + 1) * max(new, freed) + kept + new) - same
    caps = service_capacities(instance, plan)
    least = min(caps.get(s.name, 0.0) / s.rate for s in instance.services if s.rate > 0)
    return (f"objective={objective} same={same} "
            f"changes={layout_changes(current, plan)} gpus={plan.gpus_used} kept={kept} on={new} freed={freed} "
            f"z={max(new, freed)} tenant_changes={tenant_changes(current, plan)} least_share={least:.9f} "
            f"fp={fingerprint(plan)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--solve", action="store_true")
    ap.add_argument("--layouts", action="store_true", help="print the plan in force's and both plans' layouts")
    args = ap.parse_args(argv)
    old, new = pickle.loads(args.old.read_bytes()), pickle.loads(args.new.read_bytes())
    for i, (a, b) in enumerate(zip(old, new)):
        name, inst, opts, plan_a = a
        _, inst_b, opts_b, plan_b = b
        same = inst == inst_b and opts.current_plan == opts_b.current_plan and opts.objective == opts_b.objective
        print(f"call {i}: {name} {opts.objective.value} G={inst.gpus} same question: {same}")
        if opts.current_plan is None:
            continue
        print("   old:", terms(inst, opts.current_plan, plan_a))
        print("   new:", terms(inst_b, opts_b.current_plan, plan_b))
        if args.layouts:
            for label, p in (("in force", opts.current_plan), ("old", plan_a), ("new", plan_b)):
                print(f"   {label:8s} {layout_print(p)}")
        if args.solve:
            judged = run_solver(name, inst, opts)
            print("   now:", terms(inst, opts.current_plan, judged.result.plan if judged.valid else None),
                  judged.result.status.value, judged.result.message[:120])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
