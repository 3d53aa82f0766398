"""Session 17 dev check: the executor's two models on core 0, never preempted, while core 1 runs a neighbour.

    python -m experiments.dev.exec_vs_sim.neighbour [--phases off compute memory ...] [--seconds 3] [--csv OUT]

Builds resnet-tiny and vgg-tiny at batch 1 (`profiler.zoo`, one torch thread) in this process, pins it to core 0
and, where allowed (root), sets it to SCHED_FIFO 10 so that no other task of the machine preempts it; then, per
phase, runs the two models alternately with a 1 ms sleep after each batch (about the executor's idle share) while
a neighbour process pinned to core 1 runs a Python loop (`compute`), copies a 64 MB numpy array (`memory`) or
nothing of ours (`off`: core 1 runs whatever else the machine runs).  Prints per model and phase the batch
count, median and p90 wall time and median CPU time (ms), and the share of 100 ms windows whose median batch is
more than `SLOW_FACTOR` x its model's fast level (`stsched.executor.accounting`), and the range of the per-second
median of that slowness.  With `--csv` every batch.
Not a test and not reproducible as figures: it measures the machine it runs on, at that moment.
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from stsched.executor.accounting import FAST_QUANTILE, SLOW_FACTOR, WINDOW_S

NEIGHBOURS = {"compute": "x = 0\nwhile True:\n    x += 1\n",
              "memory": "import numpy as np\na = np.ones(2 ** 23)\nb = np.empty_like(a)\nwhile True:\n"
                        "    np.copyto(b, a)\n"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phases", nargs="+", default=["off", "compute", "memory"] * 3,
                    choices=["off", *NEIGHBOURS])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--csv", default=None)
    args = ap.parse_args(argv)
    os.sched_setaffinity(0, {0})
    import torch

    from profiler import zoo

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    names = ("vgg-tiny", "resnet-tiny")
    models = {n: zoo.build(n, "cpu", 0) for n in names}
    inputs = {n: zoo.make_input(n, 1, "cpu", 0) for n in names}

    def run(n: str) -> None:
        with torch.inference_mode():
            models[n](inputs[n])
    for _ in range(100):
        for n in names:
            run(n)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    except (OSError, AttributeError) as e:
        print(f"not SCHED_FIFO ({e}): other tasks may preempt the loop", file=sys.stderr)
    gc.disable()
    rows = []
    for phase in args.phases:
        neighbour = None
        if phase != "off":
            neighbour = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-c", NEIGHBOURS[phase]])
        try:  # the busy child is killed however the phase ends (Ctrl-C, an error): it would spin on core 1 for ever
            if neighbour is not None:
                time.sleep(0.3)
            end, i = time.monotonic() + args.seconds, 0
            while time.monotonic() < end:
                n = names[i % 2]
                i += 1
                c0, t0 = time.thread_time(), time.perf_counter()
                run(n)
                t1, c1 = time.perf_counter(), time.thread_time()
                rows.append((phase, n, t0, (t1 - t0) * 1e3, (c1 - c0) * 1e3))
                time.sleep(0.001)
        finally:
            if neighbour is not None:
                neighbour.kill()
                neighbour.wait()
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    df = pd.DataFrame(rows, columns=["phase", "model", "t", "wall_ms", "cpu_ms"])
    df["t"] -= df["t"].min()
    norm = df["wall_ms"] / df.groupby("model")["wall_ms"].transform(lambda v: v.quantile(FAST_QUANTILE))
    slow = norm.groupby([df["phase"], np.floor(df["t"] / WINDOW_S)]).median() > SLOW_FACTOR
    out = df.groupby(["model", "phase"]).agg(batches=("wall_ms", "size"), wall_median=("wall_ms", "median"),
                                             wall_p90=("wall_ms", lambda v: v.quantile(0.9)),
                                             cpu_median=("cpu_ms", "median"))
    print(out.round(3).to_string())
    print("slow 100 ms windows by phase:", slow.groupby(level=0).mean().round(3).to_dict())
    per_s = norm.groupby([df["phase"], np.floor(df["t"])]).median()  # both models' batches, over their fast levels
    print("per-second median slowness by phase (min-max):",
          {ph: f"{v.min():.2f}-{v.max():.2f}" for ph, v in per_s.groupby(level=0)})
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
