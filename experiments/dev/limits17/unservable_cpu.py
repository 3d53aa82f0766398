"""CPU time of `stsched.bounds.unservable` (the feasibility scan every solver and bound runs first) on one instance,
both objectives: `python experiments/dev/limits17/unservable_cpu.py /tmp/r100k.json` (docs/RESULTS.md, "Limits and
faults", session 17)."""

import sys
import time

from stsched.bounds import unservable
from stsched.io import load_instance
from stsched.registry import Objective

if __name__ == "__main__":
    inst = load_instance(sys.argv[1])
    for objective in (Objective.MIN_GPUS, Objective.MAX_SCALE):
        c = time.process_time()
        bad = unservable(inst, objective)
        print(objective.value, "unservable", len(bad), "cpu_s", round(time.process_time() - c, 2), flush=True)
