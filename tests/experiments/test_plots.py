"""experiments/plots.py and the experiment scripts' --plot-only: PNGs drawn from rows already written."""

from __future__ import annotations

import csv
import math

import pytest

from experiments import adapt_eval, exact_gpulet, exact_parvagpu, exact_scaling, heuristic_eval, sim_speed
from experiments.common import read_rows, results_dir
from experiments.plots import grouped_bars, number, series_plot, stairs_plot

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def results(tmp_path, monkeypatch):
    """Every test writes under its own results folder, never the repository's results/."""
    root = tmp_path / "results"
    monkeypatch.setenv("STSCHED_RESULTS", str(root))
    return root


def _is_png(path) -> bool:
    return path.exists() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG


def _only_pngs(folder) -> bool:
    """No temporary file is left beside the figures."""
    return all(f.suffix in (".png", ".csv") for f in folder.iterdir())


def _write(path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_number_reads_csv_cells():
    assert number("2.5") == 2.5 and number(3) == 3.0
    assert number("") is None and number(None) is None and number("nan") is None and number("optimal") is None


def test_grouped_bars_writes_a_png_with_gaps_labels_and_log_axis(tmp_path):
    out = grouped_bars(["a", "b", "c"], {"x": [1.0, None, 1000.0], "y": ["2", "", math.nan]}, tmp_path / "f" / "b.png",
                       ylabel="v", labels={"x": ["1", None, "1000"]}, hline=1.0, note="a note")
    assert out == tmp_path / "f" / "b.png" and _is_png(out) and _only_pngs(out.parent)
    with pytest.raises(ValueError, match="2 values for 3 groups"):
        grouped_bars(["a", "b", "c"], {"x": [1, 2]}, tmp_path / "bad.png", ylabel="v")
    assert not (tmp_path / "bad.png").exists()


def test_series_plot_numeric_log_x_and_categorical(tmp_path):
    num = series_plot({"s1": ([2, 8, 64], [1.0, 30.0, 900.0]), "s2": ([2, 64], [None, 5.0])}, tmp_path / "n.png",
                      xlabel="services", ylabel="ms", connect=False, log_x=True)
    cat = series_plot({"f/e": (["4x1", "8x2"], [0.1, None]), "g/e": (["8x2", "16x4"], [3.0, 2.0])},
                      tmp_path / "c.png", xlabel="size", ylabel="s", categories=["4x1", "4x1", "8x2"],
                      styles={"f/e": {"color": "tab:blue", "marker": "s"}})
    assert _is_png(num) and _is_png(cat) and _only_pngs(tmp_path)


def test_stairs_plot_steps_events_and_gaps(tmp_path):
    out = stairs_plot({"a": ([0, 1, 2, 3.5], [4, 6.5, 5], [2, 0, 1]), "b": ([0, 2, 3.5], [5, None], [0, 3])},
                      tmp_path / "s.png", xlabel="h", ylabel="GPUs", event_label="changes", title="t\nline 2",
                      styles={"a": {"color": "tab:blue", "ls": "-."}}, note="a note")
    assert _is_png(out) and _only_pngs(tmp_path)
    with pytest.raises(ValueError, match="3 edges for 3 values"):
        stairs_plot({"a": ([0, 1, 2], [1, 2, 3], [0, 0, 0])}, tmp_path / "bad.png", xlabel="h", ylabel="v",
                    event_label="e")
    assert not (tmp_path / "bad.png").exists()


def _epochs(n: int, gpus, reconf) -> list[dict[str, object]]:
    return [{"epoch": i, "start_s": 300.0 * i, "gpus": gpus(i), "reconfigurations": reconf(i),
             "attainment": 1 - i / 7e3, "max_load": 0.1 + 0.2 * i / 3} for i in range(n)]


def test_adapt_series_round_trip_exactly(results):
    rows = _epochs(5, lambda i: 11 - i / 3, lambda i: i % 2)
    rows[3]["attainment"] = math.nan  # plan-only runs: not simulated
    path = adapt_eval.series_path({"mix": "scen1", "level": 4000.0, "hours": 8.0, "epoch_s": 300.0,
                                   "policy": "adaptive[compact_rent=none]", "downtime": "standby"})
    assert path == results / "adapt" / "series" / "adaptive-compact_rent-none_standby.csv"
    adapt_eval.write_series(path, rows)
    back = adapt_eval.read_series(path)
    assert math.isnan(back[3].pop("attainment")) and rows[3].pop("attainment") is not None
    assert back == rows and [type(v) for v in back[0].values()] == [int, float, float, int, float, float]
    dev = {"mix": "scen1", "level": 4000.0, "hours": 1.0, "epoch_s": 600.0, "policy": "adaptive",
           "downtime": "stop", "offset": 4, "simulate": False}
    assert adapt_eval.series_path(dev).name == "adaptive_stop_600s_1h_offset4_plan.csv"


def test_plot_only_adapt_eval_from_the_saved_series(results, caplog):
    key = {"mix": "scen1", "level": 4000.0, "hours": 8.0, "epoch_s": 300.0}
    shapes = {"static-peak": (lambda i: 11.0, lambda i: 0), "full-repartition": (lambda i: 8 + i % 4, lambda i: 1),
              "adaptive": (lambda i: 8 + (i // 24) % 3, lambda i: int(i % 24 == 0)),
              "adaptive[hold=2]": (lambda i: 9.5, lambda i: int(i == 0))}
    rows = []
    for policy, downtime in (("static-peak", "stop"), ("full-repartition", "stop"), ("adaptive", "stop"),
                             ("full-repartition", "standby"), ("adaptive", "standby"),
                             ("adaptive[hold=2]", "standby")):
        p = {**key, "policy": policy, "downtime": downtime}
        series = _epochs(96, *shapes[policy])
        rows.append({**p, "reconfigurations": sum(x["reconfigurations"] for x in series),
                     "gpu_hours": round(sum(x["gpus"] for x in series) / 12, 3), "slo_attainment": 0.999})
        if (policy, downtime) != ("adaptive", "stop"):  # a row from before series were saved
            adapt_eval.write_series(adapt_eval.series_path(p), series)
    _write(results / "adapt" / "rows.csv", rows)
    assert adapt_eval.main(["--plot-only"]) == 0
    assert _is_png(results / "adapt" / "gpus_stop.png") and _is_png(results / "adapt" / "gpus_standby.png")
    assert [r.getMessage().split(":")[0] for r in caplog.records if r.levelname == "WARNING"] == ["adaptive, stop"]
    assert sorted(f.name for f in (results / "adapt").iterdir()) == ["gpus_standby.png", "gpus_stop.png",
                                                                   "rows.csv", "series"]


def test_saving_over_an_existing_figure_replaces_it(tmp_path):
    path = tmp_path / "p.png"
    path.write_bytes(b"old")
    grouped_bars(["a"], {"x": [1.0]}, path, ylabel="v")
    assert _is_png(path) and _only_pngs(tmp_path)


def test_missing_rows_give_a_one_line_error(results):
    for module in (exact_parvagpu, exact_gpulet, exact_scaling, sim_speed, heuristic_eval, adapt_eval):
        with pytest.raises(SystemExit) as e:
            module.main(["--plot-only"])
        msg = str(e.value.code)
        assert msg.startswith("error:") and "\n" not in msg and str(results) in msg, msg
    assert not (results / "exact_parvagpu").exists()  # nothing created by a failed --plot-only
    with pytest.raises(SystemExit):
        read_rows("nothing-here")


def test_plot_only_exact_parvagpu_with_and_without_the_heuristic(results):
    rows = [{"row": r, "rules": ru, "engine": "highs", "status": st, "gpus": g, "bound": g, "valid": True,
             "wall_s": 0.1, "message": ""}
            for r, ru, st, g in ((1, "parvagpu", "optimal", 2), (1, "shared", "optimal", 1),
                                 (4, "parvagpu", "optimal", 16), (4, "shared", "feasible", 15))]
    _write(results / "exact_parvagpu" / "rows.csv", rows)
    assert exact_parvagpu.main(["--plot-only"]) == 0
    assert _is_png(results / "exact_parvagpu" / "gpus.png")
    first = (results / "exact_parvagpu" / "gpus.png").read_bytes()
    _write(results / "heuristic" / "mig.csv", [{"row": 1, "heuristic_gpus": 1, "heuristic_valid": True},
                                               {"row": 4, "heuristic_gpus": 15, "heuristic_valid": True}])
    assert exact_parvagpu.main(["--plot-only"]) == 0
    assert (results / "exact_parvagpu" / "gpus.png").read_bytes() != first  # a fourth series drawn
    assert not (results / "exact_parvagpu" / "plans").exists()  # --plot-only solves and saves nothing


def test_plot_only_exact_gpulet_draws_one_figure_per_interference(results):
    rows = [{"interference": i, "mix": "m1", "gpus": g, "engine": e, "status": st, "alpha": a, "bound": b,
             "gap": gap, "valid": v, "wall_s": 1.0, "formulation": "slots", "exact_model": True, "message": ""}
            for i in ("none", "fitted") for g, e, st, a, b, gap, v in (
                (1, "highs", "optimal", 110.5, 110.5, 0.0, True), (2, "highs", "feasible", 215.0, 221.0, 0.03, True),
                (2, "cbc", "feasible", 214.0, 222.0, 0.04, True), (4, "highs", "infeasible", "", "", "", ""))]
    _write(results / "exact_gpulet" / "rows.csv", rows)
    assert exact_gpulet.main(["--plot-only"]) == 0
    assert all(_is_png(results / "exact_gpulet" / f"alpha_{i}.png") for i in ("none", "fitted"))


def test_plot_only_exact_scaling(results):
    rows = [{"device": "a100-mps", "services": s, "gpus": g, "seed": 0, "formulation": f, "engine": "highs",
             "status": st, "gpus_used": u, "bound": 1, "gap": gap, "valid": v, "wall_s": w, "used": used,
             "configs": 10, "patterns": "", "tenants": 2, "exact_model": True, "message": ""}
            for s, g, f, st, u, gap, v, w, used in (
                (4, 1, "slots", "optimal", 1, 0.0, True, 0.1, "slots"), (8, 2, "slots", "optimal", 2, 0.0, True, 2.0,
                                                                           "slots"),
                (4, 1, "patterns", "optimal", 1, 0.0, True, 0.5, "slots"),
                (8, 2, "indexed", "feasible", 3, 0.33, True, 20.0, "indexed"),
                (4, 1, "indexed", "unknown", "", "", "", 20.0, "indexed"))]
    _write(results / "exact_scaling" / "rows.csv", rows)
    assert exact_scaling.main(["--plot-only"]) == 0
    assert _is_png(results / "exact_scaling" / "solve_time_a100-mps.png")
    assert _is_png(results / "exact_scaling" / "gap_a100-mps.png")


def test_plot_only_sim_speed_with_headroom_and_a_failed_row(results):
    rows = [{"services": 64, "gpus": g, "seed": 1, "duration": 600, "arrivals": a, "headroom": h,
             "total_rps": 1000.0 * g, "plan_gpus": 2 * g, "requests_per_s": 2e6 if g < 4 else "",
             "slo_attainment": 0.9 if g < 4 else "", "error": "" if g < 4 else "no valid plan"}
            for g in (2, 4) for a, h in (("poisson", 1.0), ("gamma:2", 1.0), ("poisson", 1.25))]
    _write(results / "sim_speed" / "rows.csv", rows)
    assert sim_speed.main(["--plot-only"]) == 0
    assert _is_png(results / "sim_speed" / "requests_per_s.png")
    assert _is_png(results / "sim_speed" / "slo_attainment.png")


def test_plot_only_heuristic_eval_from_the_sections_present(results):
    gap = [{"spec": f"random:a100-mps:{s}:2:0", "objective": o, "heuristic_status": "feasible", "heuristic_obj": h,
            "heuristic_ms": ms, "milp_status": st, "milp_obj": e, "milp_ms": 10 * ms}
           for s, o, h, e, st, ms in ((3, "max-scale", 1.5, 1.52, "optimal", 40.0),
                                      (5, "min-gpus", 3, 2, "optimal", 90.0), (5, "min-gpus", 3, 3, "feasible", 5.0))]
    _write(results / "heuristic" / "gap.csv", gap)
    _write(results / "heuristic" / "speed.csv", [{"seed": 0, "heuristic_ms": 60.0, "heuristic_cpu_ms": 59.0,
                                                  "gslice_ms": 15.0, "gslice_cpu_ms": 15.0}])
    assert heuristic_eval.main(["--plot-only", "--section", "gap"]) == 0
    assert _is_png(results / "heuristic" / "gap.png") and _is_png(results / "heuristic" / "wall_time.png")
    with pytest.raises(SystemExit, match="no mig CSV"):
        heuristic_eval.main(["--plot-only", "--section", "mig"])


def test_proven_gap_is_relative_and_only_against_proven_optima():
    assert heuristic_eval.proven_gap({"objective": "min-gpus", "heuristic_obj": "3", "milp_obj": "2",
                                      "milp_status": "optimal"}) == pytest.approx(0.5)
    assert heuristic_eval.proven_gap({"objective": "max-scale", "heuristic_obj": "1.5", "milp_obj": "2",
                                      "milp_status": "optimal"}) == pytest.approx(0.25)
    assert heuristic_eval.proven_gap({"objective": "min-gpus", "heuristic_obj": "3", "milp_obj": "2",
                                      "milp_status": "feasible"}) is None


def test_a_normal_run_draws_its_plot(results):
    """exact_parvagpu on one row, one rule set, one engine (a fraction of a second of solving)."""
    assert exact_parvagpu.main(["--rows", "1", "--engines", "highs", "--rules", "parvagpu", "--time-limit", "10"]) == 0
    assert _is_png(results_dir("exact_parvagpu") / "gpus.png")
    assert [r["gpus"] for r in read_rows("exact_parvagpu")] == ["2"]
