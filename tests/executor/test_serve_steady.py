"""The executor's worker loop waits by polling when asked (`spin_s`) and serves with its collector off
(`quiet_gc`) and its timer slack lowered (`timer_slack_ns`), restoring all; `ExecOptions.spin_ms` and
`timer_slack_ns` are checked."""

from __future__ import annotations

import gc
import sys

import pytest

from stsched.errors import InputError
from stsched.executor import ExecOptions


def test_spin_must_be_a_finite_non_negative_number():
    for bad in (-1.0, float("inf"), float("nan")):
        with pytest.raises(InputError, match="spin"):
            ExecOptions(spin_ms=bad)
    assert ExecOptions().spin_ms is None  # auto: `spin_ms_for`
    for bad in (0, -5, 2.5, True):
        with pytest.raises(InputError, match="timer slack"):
            ExecOptions(timer_slack_ns=bad)
    assert ExecOptions().timer_slack_ns == 1 and ExecOptions(timer_slack_ns=None).timer_slack_ns is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl timer slack is Linux's")
def test_timer_slack_is_set_while_serving_and_restored():
    from profiler.partitions.runner import PR_GET_TIMERSLACK, _prctl, timer_slack

    prctl = _prctl()
    before = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0)
    with timer_slack(1000) as inside:
        assert inside == prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == 1000
    assert prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == before
    with timer_slack(None) as inside:
        assert inside is None and prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0) == before


@pytest.mark.parametrize("spin_s", [0.0, 0.004])
def test_serve_polls_or_sleeps_and_restores_the_collector(spin_s):
    pytest.importorskip("torch")
    from profiler.measure import now
    from profiler.partitions.runner import Runner

    runner = Runner("cpu")
    calls = []
    runner._calls[("m", 2)] = lambda: calls.append(gc.isenabled())  # no model: the loop itself is under test
    arrivals = [0.05, 0.051, 0.1, 0.15]
    frozen, enabled = gc.get_freeze_count(), gc.isenabled()
    out = runner.serve([{"model": "m", "batch": 2, "arrivals": arrivals}], now(), 2.0, spin_s=spin_s, quiet_gc=True,
                       timer_slack_ns=1)
    assert gc.get_freeze_count() == frozen and gc.isenabled() == enabled
    assert calls and not any(calls)  # the collector was off during every batch
    starts = out["start"][0]
    assert len(starts) == 4 and all(s >= a for s, a in zip(starts, arrivals))  # all served, none early


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread usage is Linux's getrusage")
def test_serve_records_each_batch_cpu_time_faults_and_switches():
    """A batch that computes is on its core (its CPU time recorded), one that blocks is not:
    the record that tells a slow host core from a worker taken off its core (stsched.executor BATCH_COLUMNS)."""
    pytest.importorskip("torch")
    import time

    from profiler.measure import now
    from profiler.partitions.runner import Runner

    def compute():  # 3 ms of this thread's CPU, however long the clock takes on a loaded machine
        end = time.thread_time() + 0.003
        while time.thread_time() < end:
            pass

    runner = Runner("cpu")
    runner._calls[("spin", 1)] = compute
    runner._calls[("block", 1)] = lambda: time.sleep(0.02)
    out = runner.serve([{"model": "spin", "batch": 1, "arrivals": [0.0]},
                        {"model": "block", "batch": 1, "arrivals": [0.0]}], now(), 2.0)
    cpu, dur, who = out["batch_cpu"], out["batch_dur"], out["batch_tenant"]
    assert len(cpu) == len(dur) == len(out["batch_faults"]) == len(out["batch_switches"]) == 2
    by = {k: (c, d) for k, c, d in zip(who, cpu, dur)}
    # computing: the CPU it used to the microsecond (not rounded to a scheduler tick), never more than its duration
    assert 0.003 <= by[0][0] <= min(0.0035, by[0][1] + 1e-4)
    assert by[1][0] < 0.001 < 0.02 <= by[1][1]  # blocked: off the core
    assert all(f >= 0 for f in out["batch_faults"]) and all(w >= 0 for w in out["batch_switches"])


def test_auto_spin_polls_only_where_the_worker_owns_its_cores():
    """`ExecOptions.spin_ms` None (the default): a pinned cpu partition's worker polls (its idle core sleeping made
    the next batches slower: issue 15, session 17), an unpinned one or another backend's sleeps; a value given wins."""
    from types import SimpleNamespace

    from stsched.executor import spin_ms_for
    from stsched.executor.run import AUTO_SPIN_MS

    pinned, loose = SimpleNamespace(name="cpu", pin=True), SimpleNamespace(name="cpu", pin=False)
    mps = SimpleNamespace(name="mps")
    assert spin_ms_for(pinned, ExecOptions(), busy=0.1) == AUTO_SPIN_MS
    assert spin_ms_for(pinned, ExecOptions(), busy=1.5) == 0.0  # beside other work a poller is preempted
    assert spin_ms_for(loose, ExecOptions(), busy=0.1) == 0.0
    assert spin_ms_for(mps, ExecOptions(), busy=0.1) == 0.0
    assert spin_ms_for(pinned, ExecOptions(spin_ms=0.0), busy=0.1) == 0.0
    assert spin_ms_for(mps, ExecOptions(spin_ms=2.5), busy=2.0) == 2.5


def test_busy_cores_counts_the_ticks_not_idle(tmp_path, monkeypatch):
    """`busy_cores`: the cores' worth of non-idle ticks between two reads of /proc/stat (here a fake file that a
    patched sleep advances: one core fully busy, the other idle -> 1.0); None where the file cannot be read."""
    from stsched.executor import cpustat

    stat = tmp_path / "stat"
    stat.write_text("cpu  0 0 0 0 0 0 0 0\ncpu0 100 0 0 100 0 0 0 0\ncpu1 0 0 0 200 0 0 0 0\n")

    def advance(_s):
        stat.write_text("cpu  0 0 0 0 0 0 0 0\ncpu0 130 0 0 100 0 0 0 0\ncpu1 0 0 0 230 0 0 0 0\n")

    monkeypatch.setattr(cpustat.time, "sleep", advance)
    assert cpustat.busy_cores(0.3, str(stat)) == pytest.approx(1.0)
    assert cpustat.busy_cores(0.3, str(tmp_path / "none")) is None


def test_the_cpu_clock_brackets_the_timed_call_alone(monkeypatch):
    """The worker read `time.thread_time` first and `getrusage` after it before each batch (and the reverse
    after), so a batch's CPU time held a getrusage call the clock's bracket did not: batches never switched out
    ran 1.003-1.006 x as long on the CPU as on the clock.  Now getrusage is read outside, the CPU clock right
    around the timed call."""
    pytest.importorskip("torch")
    import itertools
    import time

    from profiler.partitions import runner as runner_mod
    from profiler.partitions.runner import Runner

    events: list[str] = []
    clock = itertools.count(0.0, 1e-4)
    real_thread_time = time.thread_time
    monkeypatch.setattr(runner_mod, "now", lambda: (events.append("now"), next(clock))[1])
    monkeypatch.setattr(runner_mod, "thread_counters", lambda: (events.append("counters"), (0, 0))[1])
    monkeypatch.setattr(runner_mod.time, "thread_time", lambda: (events.append("cpu"), real_thread_time())[1])
    runner = Runner("cpu")
    runner._calls[("m", 1)] = lambda: events.append("batch")
    runner._serve([{"model": "m", "batch": 1, "arrivals": [0.0]}], 0.0, 2.0, True, 0.0)
    i = events.index("batch")
    assert events[i - 3:i + 4] == ["counters", "cpu", "now", "batch", "now", "cpu", "counters"], events
