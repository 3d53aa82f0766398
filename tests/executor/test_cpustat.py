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


def test_a_core_missing_from_the_first_read_is_left_out(tmp_path, monkeypatch):
    """A core that is in the later read only (hot-plugged between the reads, or missed by a partial read) holds its
    ticks since boot, not since the first read: `tick_deltas` leaves it out for both users.  `busy_cores` counted it
    as a core with no ticks, so one core fully busy beside it read as 2.0 cores; the sampler's rows already left it
    out until its second sample."""
    from stsched.executor import cpustat

    first = {"cpu0": (100, 0, 0, 100, 0, 0, 0, 0)}
    later = {"cpu0": (130, 0, 0, 100, 0, 0, 0, 0), "cpu1": (5000, 0, 0, 9000, 0, 0, 0, 0)}
    assert cpustat.tick_deltas(first, later) == {"cpu0": (30, 0, 0, 0, 0, 0, 0, 0)}
    assert cpustat.tick_deltas(later, first) == {"cpu0": (-30, 0, 0, 0, 0, 0, 0, 0)}  # one gone: no end either

    def text(ticks):
        return "cpu  0 0 0 0 0 0 0 0\n" + "".join(f"{k} {' '.join(map(str, v))}\n" for k, v in ticks.items())

    stat = tmp_path / "stat"
    stat.write_text(text(first))
    monkeypatch.setattr(cpustat.time, "sleep", lambda _s: stat.write_text(text(later)))
    assert cpustat.busy_cores(0.3, str(stat)) == 1.0
    # the sampler's rows: cpu1 from the sample after the one it first appears in
    sampler = CpuSampler(0.01, cores=(), path=str(stat))
    after = {k: tuple(x + 10 for x in v) for k, v in later.items()}
    sampler._samples = [(1.0, first), (2.0, later), (3.0, after)]
    f = sampler.frame()
    assert list(zip(f["t_s"], f["cpu"], f["user"])) == [(2.0, 0, 30), (3.0, 0, 10), (3.0, 1, 10)]
