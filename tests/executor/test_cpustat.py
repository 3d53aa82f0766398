"""The /proc/stat sampler beside an executor run (`stsched.executor.cpustat`): ticks per core and state since the
sample before, on the executor's clock, from a thread pinned away from the worker."""

from __future__ import annotations

import os
import time

from stsched.executor.cpustat import STATES, CpuSampler, read_proc_stat


def _stat(path, ticks):
    lines = ["cpu  " + " ".join(str(2 * t) for t in ticks)]
    lines += [f"cpu{k} " + " ".join(str(t) for t in ticks) + " 0 0" for k in range(2)]
    tmp = path.with_suffix(".tmp")  # replaced whole, as the kernel's file is read: never seen half written
    tmp.write_text("\n".join(lines + ["intr 1 2 3", "ctxt 5"]) + "\n")
    os.replace(tmp, path)


def test_ticks_per_core_and_state_between_samples(tmp_path):
    path = tmp_path / "stat"
    _stat(path, [10, 0, 5, 100, 0, 0, 0, 1])
    assert read_proc_stat(str(path)) == {"cpu0": (10, 0, 5, 100, 0, 0, 0, 1), "cpu1": (10, 0, 5, 100, 0, 0, 0, 1)}
    with CpuSampler(0.01, cores=(), path=str(path)) as cs:
        time.sleep(0.05)
        _stat(path, [13, 0, 5, 107, 0, 0, 0, 4])  # 3 user, 7 idle and 3 steal ticks later
        time.sleep(0.05)
    t0 = time.monotonic()
    f = cs.frame(t0)
    assert list(f.columns) == ["t_s", "cpu", *STATES] and set(f["cpu"]) == {0, 1}
    assert (f["t_s"] < 0).all() and (f["t_s"] > -1.0).all()  # on the monotonic clock, before t0
    for col, moved in (("user", 3), ("idle", 7), ("steal", 3), ("system", 0)):
        assert f.groupby("cpu")[col].sum().tolist() == [moved, moved]


def test_no_proc_stat_no_rows(tmp_path):
    with CpuSampler(0.01, path=str(tmp_path / "missing")) as cs:
        time.sleep(0.02)
    assert cs.frame().empty
