"""HiGHS is stopped at the limit from its interrupt callbacks (solvers.exact.milp.interrupt_at, issue 17 session 17):
cg's integer master ran 5.1 s of a 1 s limit in the root's separation, where HiGHS does not read its own clock.
Tested by the mechanism, not by timing: with a deadline already passed and no time limit of HiGHS's own, a MIP that
takes branching stops at once (kInterrupt, no node), where it is solved to optimality without the callbacks."""

from __future__ import annotations

import highspy
import numpy as np

from solvers.exact.milp import interrupt_at, quiet_highs


def _knapsacks(seed: int = 1, n: int = 60, m: int = 8):
    rng = np.random.default_rng(seed)
    h = quiet_highs()
    for _ in range(n):
        h.addVar(0, 5)
    idx = np.arange(n, dtype=np.int32)
    h.changeColsIntegrality(n, idx, np.array([highspy.HighsVarType.kInteger] * n))
    h.changeColsCost(n, idx, -rng.integers(10, 100, n).astype(float))
    for _ in range(m):
        a = rng.integers(5, 60, n).astype(float)
        h.addRow(-highspy.kHighsInf, float(a.sum() * 1.7), n, idx, a)
    return h


def test_a_passed_deadline_interrupts_highs_without_its_own_limit():
    plain = _knapsacks()
    plain.run()
    assert plain.getModelStatus() == highspy.HighsModelStatus.kOptimal
    assert plain.getInfo().mip_node_count > 1  # (it branches: there is work to interrupt)
    cut = _knapsacks()
    interrupt_at(cut, 0.0)  # (time.perf_counter() is past 0 at once)
    cut.run()
    assert cut.getModelStatus() == highspy.HighsModelStatus.kInterrupt
    assert cut.getInfo().mip_node_count <= 1


def test_a_deadline_on_another_clock_interrupts_and_release_unsubscribes():
    """`clock`: the deadline is read on it (cg's cpu clock); `release` takes the callbacks off for later solves."""
    cut = _knapsacks()
    release = interrupt_at(cut, 1.0, clock=lambda: 2.0)  # (that clock is past its deadline)
    cut.run()
    assert cut.getModelStatus() == highspy.HighsModelStatus.kInterrupt
    release()
    cut.run()
    assert cut.getModelStatus() == highspy.HighsModelStatus.kOptimal
