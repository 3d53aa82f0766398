"""`stsched show INSTANCE PLAN [--out plan.png|plan.svg] [--text] [--sim SUMMARY.json]`: a plan as a picture or a
terminal table (stsched.view): one row per GPU, its partitions to scale, each partition's duty cycle to scale,
served vs offered rate and worst-case latency vs SLO per service, and a simulation's attainment per service.

Exit 0 when the plan was shown (a plan the checker rejects is shown too, its violations listed), 2 on bad input:
a missing file, a plan for another instance, a plan with an unknown service.
"""

from __future__ import annotations

import gc
import logging
import sys
import tempfile
import time
from pathlib import Path

from stsched.errors import InputError
from stsched.io import load_instance, load_plan, read_json, write_atomic
from stsched.outputs import output_file

log = logging.getLogger(__name__)


def add(sub) -> None:
    p = sub.add_parser("show", help="draw a plan (one row per GPU) or print it as a table")
    p.add_argument("instance", help="instance JSON file")
    p.add_argument("plan", help="plan JSON file")
    p.add_argument("--out", default=None, help="picture to write: .png or .svg")
    p.add_argument("--text", action="store_true", help="print the plan as a table (the default without --out)")
    p.add_argument("--sim", default=None, metavar="SUMMARY",
                   help="a `stsched simulate --out` summary: its attainment per service is shown")
    p.set_defaults(run=run)


def _same_plan(summary: dict, inst, plan, args) -> None:
    """A summary names the plan and instance it simulated (`plan_digest`, `instance_digest`): another's is bad
    input (it was shown as this plan's attainment); one that names none (written before they were recorded)
    gets a note on stderr."""
    from stsched.io import instance_digest, plan_digest

    missing = []
    for key, mine, kind, path in (("instance_digest", instance_digest(inst), "instance", args.instance),
                                  ("plan_digest", plan_digest(plan), "plan", args.plan)):
        given = summary.get(key)
        if given is None:
            missing.append(kind)
        elif given != mine:
            raise InputError(f"{key} {given!r}: a summary of another {kind} ({kind} {path} has {mine!r}); "
                             f"simulate this one: stsched simulate {args.instance} {args.plan} --out SUMMARY",
                             source=args.sim)
    if missing:
        print(f"stsched: note: {args.sim} does not say which {' and '.join(missing)} it simulated (written before "
              f"summaries carried plan_digest and instance_digest); shown as this plan's", file=sys.stderr)


def run(args) -> int:
    from stsched.view import check_plan_fits, format_text, plan_view, render, sim_attainment

    if args.out is not None and Path(args.out).suffix.lower() not in (".png", ".svg"):
        raise InputError(f"--out {args.out}: expected a .png or .svg file")
    output_file(args.out, inputs=(args.instance, args.plan, args.sim))
    inst = load_instance(args.instance)
    plan = load_plan(args.plan)
    check_plan_fits(inst, plan, args.plan)
    sim, overall = (None, None)
    if args.sim is not None:
        summary = read_json(args.sim)
        sim, overall = sim_attainment(summary, args.sim)
        unknown = sorted(set(sim) - set(inst.service_names))
        if unknown:
            raise InputError(f"per_service: {unknown[0]!r} is not a service of instance {inst.name!r} "
                             f"(a summary of another instance?)", source=args.sim)
        _same_plan(summary, inst, plan, args)
    view = plan_view(inst, plan, sim=sim, sim_overall=overall)
    if args.text or args.out is None:
        print(format_text(view))
    if args.out is not None:
        target = Path(args.out)
        t0, c0 = time.perf_counter(), time.process_time()
        collecting = gc.isenabled()
        gc.disable()  # importing matplotlib and drawing make many objects and few cycles: ~0.1 s of CPU saved
        try:
            with tempfile.TemporaryDirectory(prefix="stsched-show-") as private:  # drawn there, then one write
                drawn = Path(private) / f"plan{target.suffix.lower()}"
                render(view, str(drawn))
                write_atomic(target, drawn.read_bytes())
        finally:
            if collecting:
                gc.enable()
        log.info("wrote %s", target)
        print(f"{inst.name}: {len(view.gpus)} GPUs drawn in {time.perf_counter() - t0:.2f} s "
              f"({time.process_time() - c0:.2f} s CPU, matplotlib's import included) -> {target}")
    return 0
