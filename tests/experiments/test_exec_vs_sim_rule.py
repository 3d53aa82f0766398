"""The executor-vs-simulator pass rule (experiments/exec_vs_sim.py): medians over the executor's repetitions and
the prediction's draws, attainment within 2 points and p99 within 15 %."""

from __future__ import annotations

import pytest

from experiments.exec_vs_sim import verdict


def test_medians_not_single_runs_decide():
    # the executor's seed 4 of the quiet re-run: 9.5 / 15.1 / 9.1 ms; one slow run does not move the reference
    row = verdict(4, [0.999, 0.998, 1.0], [9.5, 15.1, 9.1], [0.999, 0.997, 0.998], [10.2, 13.0, 9.8])
    assert row["exec_p99_median_ms"] == 9.5 and row["sim_p99_median_ms"] == 10.2
    assert row["p99_vs_exec"] == pytest.approx(10.2 / 9.5, abs=1e-3) and row["pass"] is True
    assert row["exec_p99_spread"] == pytest.approx(15.1 / 9.1, abs=1e-3)
    assert row["exec_p99_min_ms"] == 9.1 and row["exec_p99_max_ms"] == 15.1 and row["runs"] == 3


@pytest.mark.parametrize("p99,att,ok", [(11.5, 0.98, True), (8.5, 0.98, True), (11.6, 0.98, False),
                                        (8.4, 0.98, False), (10.0, 0.959, False), (10.0, 1.0, True)])
def test_bounds_are_15_percent_and_2_points(p99, att, ok):
    assert verdict(2, [0.98], [10.0], [att], [p99])["pass"] is ok


def test_a_saturated_run_has_no_p99_ratio_and_does_not_pass():
    inf = float("inf")
    row = verdict(3, [0.001, 0.0, 0.002], [inf, inf, 900.0], [0.001], [9831.0])
    assert row["p99_vs_exec"] is None and row["exec_p99_spread"] is None and row["pass"] is False
    assert row["d_attainment_pts"] == pytest.approx(0.0, abs=1e-9)
