"""experiments.scale_eval_report: the summary table's cells and lines."""

from __future__ import annotations

from experiments.scale_eval_report import cell, summary, times


def _row(solver, status, value="", gap="", valid="True", seed="7", **kw):
    return {"device": "a100-mps", "services": "256", "seed": seed, "objective": "min-gpus", "late_share": "0.0",
            "solver": solver, "status": status, "value": value, "gap": gap, "valid": valid, "wall_s": "2.0",
            "cpu_s": "1.0", "workers_cpu_s": "0.5", "peak_mb": "150", **kw}


def test_cells_say_value_gap_or_why_none():
    assert cell(_row("heuristic", "feasible", "90.0", "0.1")) == "90 (10.0 %)"
    assert cell({**_row("heuristic", "feasible", "1.5", "0.0625"), "objective": "max-scale"}) == "1.5000 (6.2 %)"
    assert cell(_row("nexus", "unknown", time_limit="60.0")) == "no plan"
    assert cell(_row("gpulet", "unknown", time_limit="60.0", wall_s="61.2")) == "time limit"
    assert cell(_row("gslice", "skipped")) == "skipped"
    assert cell(_row("igniter", "feasible", "99.0", "0.2", valid="False")) == "INVALID"


def test_a_line_per_instance_with_its_bound_and_every_solver():
    rows = [_row("parvagpu", "feasible", "95.0", "0.147"), _row("heuristic", "feasible", "90.0", "0.1"),
            _row("heuristic", "feasible", "91.0", "0.12", seed="8")]
    bounds = [{**_row("", ""), "bound": "81.0", "converged": "True"},
              {**_row("", "", seed="8"), "bound": "80.0", "converged": "False"}]
    lines, cols = summary(rows, bounds)
    assert cols[-2:] == ["heuristic", "parvagpu"]  # the solvers in the study's order
    assert [(x["seed"], x["bound"], x["heuristic"], x["parvagpu"]) for x in lines] == [
        ("7", "81", "90 (10.0 %)", "95 (14.7 %)"), ("8", "80 (open)", "91 (12.0 %)", "")]
    timed, _ = times(rows, bounds)
    assert timed[0]["heuristic"] == "2 / 1.5" and timed[0]["bound"] == "2 / 1.5"


def test_a_row_solved_before_its_bound_gets_the_gap_from_the_bound_rows():
    from experiments.scale_eval_report import with_bounds

    rows = [_row("heuristic", "feasible", "90.0", ""), _row("cg", "feasible", "88.0", "0.05", certified_bound="83.6")]
    bounds = [{**_row("", ""), "bound": "81.0", "converged": "True"}]
    filled = with_bounds(rows, bounds)
    assert filled[0]["certified_bound"] == 81.0 and abs(filled[0]["gap"] - 0.1) < 1e-12
    assert filled[1]["gap"] == "0.05"  # a row's own bound and gap are kept
    assert with_bounds(rows, []) == rows


def test_plots_leave_out_skipped_rows(tmp_path, monkeypatch):
    """A skipped row's CPU time (its instance's construction) was drawn as if the baseline had run on Poisson rows."""
    import experiments.scale_eval_report as report

    drawn = {}
    monkeypatch.setattr(report, "series_plot", lambda series, path, **kw: drawn.setdefault(path.name, series) and path)
    rows = [_row("heuristic", "feasible", "90.0", "0.1"),
            _row("gslice", "skipped", late_share="0.05", wall_s="", cpu_s="0.1")]
    report.plot(rows, tmp_path)
    assert list(drawn["cpu_min-gpus.png"]) == ["heuristic a100-mps"]


def test_a_settled_bound_is_not_shown_open():
    """A min-gpus bound that stopped early as `settled` (converged False: the whole-GPU bound a converged LP would
    give) was shown "(open)"."""
    bounds = [{**_row("", ""), "bound": "79.0", "converged": "False", "settled": "True"},
              {**_row("", "", seed="8"), "bound": "307.0", "converged": "False", "settled": "False"}]
    rows = [_row("heuristic", "feasible", "87.0", "0.09"), _row("heuristic", "feasible", "348.0", "0.12", seed="8")]
    lines, _ = summary(rows, bounds)
    assert [x["bound"] for x in lines] == ["79 (settled)", "307 (open)"]


def test_a_plan_cut_at_its_time_limit_is_marked_and_left_out_of_the_fits():
    """A baseline's max-scale bisection stopped at its 60 s limit still returned a plan (parvagpu 0.8333 at 61.3 s):
    its cell read as the baseline's answer and its time entered the exponent fits."""
    from experiments.scale_eval_report import at_limit, exponents

    cut = {**_row("parvagpu", "feasible", "0.8333", "0.49", wall_s="61.3", time_limit="60.0", services="1024"),
           "objective": "max-scale"}
    assert at_limit(cut) and not at_limit(_row("parvagpu", "feasible", "1.2", "0.2", time_limit="60.0"))
    assert cell(cut) == "0.8333 (49.0 %, limit)"
    assert cell({**cut, "gap": ""}) == "0.8333 (limit)"
    quick = [{**cut, "services": str(n), "wall_s": str(0.01 * n), "solve_cpu_s": str(0.01 * n)} for n in (256, 512)]
    assert [f["points"] for f in exponents(quick + [cut], minimum=256)] == [2]
