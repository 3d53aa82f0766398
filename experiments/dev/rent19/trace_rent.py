"""The compaction rent decision by decision on one window of the frontier study (issue 18, session 19): for each
decision of the adaptive policy, its time and kind, the GPUs of the plan taken, the LP bound, the GPUs of the plan
from scratch (when asked), the rent before and after, and why the rent was started again; then each decision that
changed layouts (`AdaptResult.changes`: its reconfigurations, GPUs switched on / off / rebuilt, the policy's note).

    python -m experiments.dev.rent19.trace_rent --offset 8 [--policy 'adaptive[rent_pause=1]'] [--changes]

Plan-only, the study's point options (gpulet scen1 x 4000, 8 h, 300 s epochs, standby, 60 s per solver call as
the study's runs in docs/RESULTS.md).  Instruments `Compaction._compact_spare` (reads its state, changes nothing) and
`Compaction.set_time` (records the kind of decision the controller tells the policy); each change's kind is
`AdaptResult.changes`' own.
"""

from __future__ import annotations

import argparse
import logging

from experiments.adapt_frontier import EPOCH_S, parse_policy
from stsched.plan import layout_changes
from stsched.planning.adapt import AdaptOptions, run_adapt
from stsched.planning.adapt.compaction import Compaction
from stsched.scenarios import gpulet_mix

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--offset", type=int, required=True)
    ap.add_argument("--policy", default="adaptive")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--changes", action="store_true", help="print only decisions that changed the rent's course")
    args = ap.parse_args(argv)
    rows: list[tuple] = []
    original, set_time = Compaction._compact_spare, Compaction.set_time
    told = {"kind": "?"}  # the kind of the decision being made, as the controller tells it (`set_time`)

    def timed(self, t_s, kind="epoch"):
        told["kind"] = kind
        return set_time(self, t_s, kind)

    def traced(self, instance, current, plan, note, lp=None):
        before = self._rent_paid
        out = original(self, instance, current, plan, note, lp)
        fresh = self._fresh_plan.gpus_used if self._fresh_asked and self._fresh_plan is not None else None
        rows.append((self._clock_s, told["kind"], plan.gpus_used, lp, fresh, layout_changes(current, plan) > 0,
                     before, self._rent_paid, out[0].gpus_used, out[1]))
        return out

    name, extra = parse_policy(args.policy)
    opts = AdaptOptions(**{"policy": name, "epoch_s": EPOCH_S, "downtime": "standby", "function_offset": args.offset,
                           "time_limit_s": args.time_limit, "simulate": False, **extra})
    Compaction._compact_spare, Compaction.set_time = traced, timed
    try:
        r = run_adapt(gpulet_mix("scen1", 400, rate=4000.0), opts)
    finally:
        Compaction._compact_spare, Compaction.set_time = original, set_time
    print("t_min kind gpus lp fresh changed rent_before rent_after gpus_out note")
    for t, kind, gpus, lp, fresh, changed, before, after, out, note in rows:
        reset = before > 0 and after == 0
        if args.changes and not (reset or out != gpus or changed):
            continue
        print(f"{(t or 0) / 60:6.1f} {kind:9s} {gpus:3d} {lp} {fresh} {int(changed)} {before:5.1f} "
              f"{after:5.1f} {out:3d} {'RESET ' if reset else ''}{note}")
    for c in r.changes:
        print(f"change {c.t_s / 60:6.1f} {c.kind:9s} {c.reconfigurations} (on {c.switched_on}, off {c.switched_off}, "
              f"rebuilt {c.rebuilt}) {c.gpus_before} -> {c.gpus_after} GPUs: {c.note}")
    print(f"reconfigurations {r.reconfigurations}, GPU-hours {r.gpu_hours:.2f}, decisions {r.decisions}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
