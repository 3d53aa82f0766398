"""Issue 18, session 20: every solver call of the adaptive policy on one window, with a fingerprint of what it
returned, so that two commits' runs can be compared call by call (which call's answer moved first, not only which
decision changed layouts).

    cd /tmp/bis20 && PYTHONPATH=/tmp/bis20 python /work/wt-17b/experiments/dev/bisect20/trace_calls.py --offset 18 \
        [--layouts] [--dump-at 19.1 --dump calls.pkl] > calls.txt

Run as a file from a worktree at the commit to trace, that worktree on PYTHONPATH (it uses only interfaces present
from commit a766c37 on).  One line per call: the decision's minute and kind, the solver, objective, GPUs offered,
the status, the plan's GPUs, its layout changes from the plan handed in, the least share of a service's rate that
its tenants carry at exact capacities (below 1: the plan leans on the checker's tolerance), a fingerprint (a short
hash of its layouts, tenants and rates rounded to 1e-6) and the plan handed in's; then every change of layouts.
Plan-only, the study's point options (gpulet scen1 x 4000, 8 h, 300 s epochs, standby, 60 s per call).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import pickle
from pathlib import Path

import stsched.planning.adapt.calls as calls
from experiments.adapt_frontier import EPOCH_S, parse_policy
from stsched.plan import Plan, layout_changes
from stsched.planning.adapt import AdaptOptions, run_adapt
from stsched.planning.adapt.compaction import Compaction
from stsched.planning.adapt.rebalance import service_capacities
from stsched.scenarios import gpulet_mix

log = logging.getLogger(__name__)


def fingerprint(plan: Plan | None) -> str:
    """A short hash of the plan's layouts (partition sizes and starts), tenants (service, batch) and rates."""
    if plan is None:
        return "-"
    text = repr([[(p.size, p.start, [(t.service, t.batch, round(t.rate, 6)) for t in p.tenants])
                  for p in g.partitions] for g in plan.gpus])
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def least_share(instance, plan: Plan | None) -> str:
    """The least share of a service's rate (of the instance asked) that the plan's tenants carry at exact
    capacities: below 1 a plan leans on the checker's tolerance (`rebalance` accepts 1 - 1e-9)."""
    if plan is None:
        return "-"
    caps = service_capacities(instance, plan)
    return f"{min(caps.get(s.name, 0.0) / s.rate for s in instance.services if s.rate > 0):.9f}"


def layout_print(plan: Plan | None) -> str:
    """The layouts only (partition sizes and their services), GPU by GPU."""
    if plan is None:
        return "-"
    return " | ".join(",".join(f"{p.size:g}:" + "+".join(sorted({t.service for t in p.tenants}))
                               for p in g.partitions) for g in plan.gpus if g.partitions)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offset", type=int, required=True)
    ap.add_argument("--policy", default="adaptive")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--until-min", type=float, default=None, help="stop printing after this minute")
    ap.add_argument("--layouts", action="store_true", help="print each plan's layouts too")
    ap.add_argument("--dump-at", type=float, default=None,
                    help="pickle every call of the decision at this minute (instance, options, plan) to --dump")
    ap.add_argument("--dump", type=Path, default=Path("/tmp/bis20out/calls.pkl"))
    args = ap.parse_args(argv)
    now = {"t": 0.0, "kind": "?"}
    lines: list[str] = []
    dumped: list[tuple] = []
    original_run, set_time = calls.run_solver, Compaction.set_time

    def timed(self, t_s, kind="epoch"):
        now["t"], now["kind"] = t_s, kind
        return set_time(self, t_s, kind)

    def traced(name, instance, options):
        judged = original_run(name, instance, options)
        res, cur = judged.result, options.current_plan
        plan = res.plan if judged.valid else None
        if args.dump_at is not None and abs(now["t"] / 60 - args.dump_at) < 0.05:
            dumped.append((name, instance, options, plan))
        changes = layout_changes(cur, plan) if cur is not None and plan is not None else "-"
        lines.append(f"call {now['t'] / 60:6.1f} {now['kind']:9s} {name:9s} {options.objective.value:9s} "
                     f"G={instance.gpus:2d} {res.status.value:10s} gpus={plan.gpus_used if plan else '-'} "
                     f"ch={changes} least={least_share(instance, plan)} fp={fingerprint(plan)} in={fingerprint(cur)}"
                     + (f" [{layout_print(plan)}]" if args.layouts else "") + f" msg={res.message[:160]!r}")
        return judged

    name, extra = parse_policy(args.policy)
    opts = AdaptOptions(**{"policy": name, "epoch_s": EPOCH_S, "downtime": "standby", "function_offset": args.offset,
                           "time_limit_s": args.time_limit, "simulate": False, **extra})
    calls.run_solver, Compaction.set_time = traced, timed
    try:
        r = run_adapt(gpulet_mix("scen1", 400, rate=4000.0), opts)
    finally:
        calls.run_solver, Compaction.set_time = original_run, set_time
    if dumped:
        args.dump.write_bytes(pickle.dumps(dumped))
    for line in lines:
        if args.until_min is None or float(line.split()[1]) <= args.until_min:
            print(line)
    for c in r.changes:
        print(f"change {c.t_s / 60:6.1f} {c.kind:9s} {c.reconfigurations} {c.gpus_before} -> {c.gpus_after}: {c.note}")
    print(f"reconfigurations {r.reconfigurations}, GPU-hours {r.gpu_hours:.2f}, decisions {r.decisions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
