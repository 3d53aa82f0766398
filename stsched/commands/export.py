"""`stsched export INSTANCE PLAN --format mig|mps|sm [--out FILE]`: what an operator applies to deploy a plan
(stsched.export): `nvidia-smi mig` commands with start slots, MPS percentages per process, or the green-context
layout the executor builds.

Exit 0 when written, 1 when the checker rejects the plan (nothing is written), 2 on bad input (a missing file, a
plan for another instance, a format that is not the instance's mechanism).
"""

from __future__ import annotations

import sys

from stsched.io import load_instance, load_plan, write_atomic
from stsched.outputs import output_file


def add(sub) -> None:
    p = sub.add_parser("export", help="write what deploys a plan: MIG commands, MPS percentages, green contexts")
    p.add_argument("instance", help="instance JSON file")
    p.add_argument("plan", help="plan JSON file")
    p.add_argument("--format", required=True, choices=["mig", "mps", "sm"],
                   help="mig: nvidia-smi mig script; mps: MPS launch script; sm: green-context layout (JSON)")
    p.add_argument("--out", default=None, help="file to write (default: print it)")
    p.set_defaults(run=run)


def run(args) -> int:
    from stsched.checker import check
    from stsched.export import check_format, export_plan
    from stsched.view import check_plan_fits

    output_file(args.out, inputs=(args.instance, args.plan))
    inst = load_instance(args.instance)
    check_format(inst, args.format)
    plan = load_plan(args.plan)
    check_plan_fits(inst, plan, args.plan)
    report = check(inst, plan)
    if not report.valid:
        print(f"stsched: the checker rejects {args.plan} ({len(report.violations)} violations, first: "
              f"{report.violations[0]}); nothing exported", file=sys.stderr)
        return 1
    text = export_plan(inst, plan, report, args.format)
    if args.out:
        write_atomic(args.out, text)
        print(f"{inst.name}: {report.stats.gpus_used} GPUs, {args.format} -> {args.out}")
    else:
        sys.stdout.write(text)
    return 0
