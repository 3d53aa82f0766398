"""`stsched check INSTANCE PLAN [--current OLD_PLAN [--allow-invalid]] [--json]`: the checker's verdict (exit 0 valid, 1 violations,
2 bad input, a --current plan the checker rejects included), and with `--current` what moving from the plan in
force to this one reconfigures (the adapt objective's terms: layout reconfigurations, tenant changes, GPUs before and after; `stsched.plan.Reconfiguration`)."""

from __future__ import annotations

import json
import sys

from stsched.checker import check
from stsched.errors import InputError, InvalidPlanError
from stsched.io import check_plan_services, load_instance, load_plan
from stsched.judge import RATE_FREE, load_judged_plan
from stsched.plan import Reconfiguration


def add(sub) -> None:
    p = sub.add_parser("check", help="check a plan against an instance",
                       description="Judge a plan against an instance with the independent checker: every rule of "
                                   "docs/RULES.md, exit 0 valid, 1 violations, 2 bad input.")
    p.add_argument("instance", help="instance JSON file")
    p.add_argument("plan", help="plan JSON file")
    p.add_argument("--current", default=None, metavar="OLD_PLAN",
                   help="the plan in force: also report the reconfiguration from it to PLAN")
    p.add_argument("--allow-invalid", action="store_true",
                   help="with --current: use a plan in force that the checker rejects anyway (it is judged, as "
                        "solve --current judges it, by the rules that hold whatever the rates)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def format_report(report) -> str:
    s = report.stats
    lines = [f"{'VALID' if report.valid else 'INVALID'}: {s.gpus_used} GPUs used, "
             f"{len(report.violations)} violations, capacity allocated {s.capacity_used:.1%}, "
             f"busy {s.busy_capacity:.1%}"]
    lines += [f"  {v}" for v in report.violations]
    for name, served in s.served.items():
        worst = s.worst_latency_ms.get(name)
        lines.append(f"  {name:<24} served {served:10.6g} req/s   worst latency "
                     f"{'-' if worst is None else f'{worst:8.2f} ms'}")
    return "\n".join(lines)


def run(args) -> int:
    if args.allow_invalid and not args.current:
        raise InputError("--allow-invalid applies to the plan in force (--current): without it, it would be ignored")
    inst = load_instance(args.instance)
    plan = load_plan(args.plan)
    check_plan_services(inst, plan, args.plan)
    reconf = None
    if args.current:  # a plan of another instance was counted from (solve --current refuses it)
        try:  # bad input (exit 2): exit 1 is PLAN's verdict, and --json prints nothing else
            old = load_judged_plan(inst, args.current, allow_invalid=args.allow_invalid, what="--current",
                                   rules=RATE_FREE, hint=f"`stsched check {args.instance} {args.current}` lists "
                                                         "them, --allow-invalid uses it anyway")
        except InvalidPlanError as e:
            raise InputError(str(e)) from None
        reconf = Reconfiguration.between(old, plan)
    report = check(inst, plan)
    if args.json:
        d = report.to_dict()
        if reconf is not None:
            d["reconfiguration"] = reconf.to_dict()
        json.dump(d, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_report(report))
        if reconf is not None:
            print(f"  from {args.current}: {reconf.layout_changes} layout reconfigurations (GPUs "
                  f"{', '.join(map(str, reconf.changed_gpus)) or 'none'} change layout), {reconf.tenant_changes} "
                  f"tenant changes, {reconf.gpus_before} -> {reconf.gpus_after} GPUs")
    return 0 if report.valid else 1
