"""Review mends of s19-edge, second review (docs/RESULTS.md, session 19, item 5): the screen's per-GPU reach
before (the best single partition size times how many fit, `max_count`) and after (`stsched.bounds.gpu_reach`: the
best over the legal layouts), per service of the shipped scenarios, and the screen's verdicts on each scenario as
given and with every service alone on 1 GPU at 0.99 x its reach before (where the two can differ).
`PYTHONPATH=. python experiments/dev/edge19/reach_same.py`."""

from dataclasses import replace

import numpy as np

from stsched import bounds
from stsched.registry import Objective
from stsched.scenarios import GPULET_MIXES, gpulet_mix, igniter_example, parvagpu, random_instance


def _before(inst, caps):
    return max(c * bounds.max_count(inst, p) for c, p in zip(caps, inst.mechanism.sizes))


if __name__ == "__main__":
    cases = [(f"parvagpu {r}", parvagpu(r)) for r in range(1, 5)] + [("igniter", igniter_example())]
    cases += [(f"gpulet {m}", gpulet_mix(m, 8)) for m in GPULET_MIXES]
    cases += [("random 8/5/3 mps", random_instance(8, 5, 3, device="a100-mps")),
              ("random 8/5/3 mig", random_instance(8, 5, 3, device="a100-mig"))]
    for name, inst in cases:
        same = bounds.unservable(inst, Objective.MIN_GPUS)
        ratios, flips, was = [], 0, []
        for s in inst.services:
            caps = bounds._scan(inst, s.name, None, gpu=True).size_caps
            before, after = _before(inst, caps), float(bounds.gpu_reach(inst, np.array(caps)))
            ratios.append(after / before if before > 0 else 1.0)
            if s.name not in same and bounds.beyond_gpus(s.rate, before, inst.gpus):  # (the rule before)
                was.append(s.name)
            alone = replace(inst, services=(replace(s, rate=0.99 * before if before > 0 else 1.0),), gpus=1)
            flips += "exceeds" in bounds.unservable(alone, Objective.MIN_GPUS).get(s.name, "")  # (not before)
        print(f"{name}: {len(inst.services)} services, unservable as given {same or 'none'} (before also: {was or 'none'}), reach after/before "
              f"{min(ratios):.4f}-{max(ratios):.4f}, alone at 0.99 x before now beyond all GPUs: {flips}")
