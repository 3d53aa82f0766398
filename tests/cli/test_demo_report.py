"""The demo's report table: one rounded line per scenario, best exact vs heuristic gap, baselines n/a or none."""

from __future__ import annotations

from stsched.commands.demo_report import best_exact, gap, report_table, slug, value_text

KINDS = {"milp": "exact", "cpsat": "exact", "heuristic": "heuristic", "gpulet": "baseline", "parvagpu": "baseline"}


def _r(case, objective, solver, value, status="optimal", valid=True):
    return {"case": case, "objective": objective, "solver": solver, "objective_value": value, "status": status,
            "valid": valid}


def test_one_rounded_line_per_scenario():
    records = [
        _r("row 1", "min-gpus", "milp", 6.0), _r("row 1", "min-gpus", "cpsat", 7.0, "feasible"),
        _r("row 1", "min-gpus", "heuristic", 7.0, "feasible"), _r("row 1", "min-gpus", "parvagpu", 7.0, "feasible"),
        _r("m1", "max-scale", "milp", 110.54385975589395), _r("m1", "max-scale", "heuristic", 109.2, "feasible"),
        _r("m1", "max-scale", "gpulet", None, "infeasible", None),
    ]
    lines = report_table(records, KINDS)
    assert lines[0] == "| scenario | objective | best exact | heuristic | gap | gpulet | parvagpu |"
    assert len(lines) == 4
    assert lines[2] == "| row 1 | min-gpus | 6 (proven) | 7 | 16.7% | n/a | 7 |"
    assert lines[3] == "| m1 | max-scale | 110.5 (proven) | 109.2 | 1.2% | none | n/a |"


def test_best_exact_and_gap():
    rows = [_r("c", "min-gpus", "milp", 3.0, "feasible"), _r("c", "min-gpus", "cpsat", 3.0),
            _r("c", "min-gpus", "milp-x", 2.0, valid=False)]
    assert best_exact(rows, {**KINDS, "milp-x": "exact"})["solver"] == "cpsat"  # proven wins a tie; invalid ignored
    assert gap("min-gpus", 2.0, 3.0) < 0 and gap("max-scale", 90.0, 100.0) == 0.1 and gap("min-gpus", None, 1) is None
    assert value_text("min-gpus", 15.0) == "15" and value_text("max-scale", 221.04385975589395) == "221.0"
    assert slug("gpulet m2 on 1 GPU") == "gpulet-m2-on-1-gpu"
