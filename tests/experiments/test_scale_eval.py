"""experiments.scale_eval: the gap to the certified bound, and a solve in a forked process with its peak memory."""

from __future__ import annotations

import math

from experiments.scale_eval import forked, gap, solvers_for


def _square(x: int) -> dict:
    return {"value": x * x}


def _boom() -> dict:
    raise ValueError("no")


def test_gap_to_the_certified_bound():
    assert gap("min-gpus", 10.0, 8.0) == 0.2
    assert gap("max-scale", 1.5, 2.0) == 0.25
    assert gap("min-gpus", 8.0, 8.0) == 0.0
    assert gap("min-gpus", None, 8.0) is None and gap("max-scale", 1.0, math.inf) is None


def test_forked_returns_result_memory_and_errors():
    out = forked(_square, 7)
    assert out["value"] == 49 and out["peak_mb"] > 1 and out["cpu_s"] >= 0
    bad = forked(_boom)
    assert "ValueError" in bad["error"]


def test_solvers_for_sizes():
    quick = solvers_for(16, ["heuristic", "cg", "exact", "baselines"], quick=True)
    assert "milp" not in quick and "heuristic" in quick and "nexus" in quick
    assert "milp" in solvers_for(16, ["heuristic", "exact"], quick=False)
    assert "milp" not in solvers_for(256, ["heuristic", "exact"], quick=False)
