"""experiments.scale_eval: solver specs with params, and the time exponent fitted over 256+ services."""

from __future__ import annotations

import pytest

from experiments.scale_eval import exponents, solver_spec, solvers_for


def test_solver_spec_with_params():
    assert solver_spec("heuristic") == ("heuristic", ())
    assert solver_spec("heuristic:effort=full,pool=32") == ("heuristic", (("effort", "full"), ("pool", "32")))
    with pytest.raises(ValueError):
        solver_spec("heuristic:effort")
    assert "heuristic:effort=full" in solvers_for(256, ["heuristic:effort=full"], quick=False)


def test_exponents_recover_a_power_law():
    rows = [{"device": "a100-mps", "objective": "min-gpus", "solver": "heuristic", "services": str(n),
             "wall_s": str(0.01 * n ** 1.2), "solve_cpu_s": str(0.002 * n)} for n in (64, 256, 1024, 4096)]
    rows[0]["wall_s"] = "1000"  # below the 256 services of the fit: ignored
    (fit,) = exponents(rows, minimum=256)
    assert fit["services"] == "256-4096"
    assert fit["exponent_wall"] == pytest.approx(1.2, abs=1e-3)
    assert fit["exponent_solve_cpu"] == pytest.approx(1.0, abs=1e-3)
    assert exponents(rows[:2], minimum=256) == []  # one size: no fit


def test_exponents_fit_poisson_rows_apart():
    """Rows on Poisson instances were pooled with the deterministic ones of the same solver into one fit."""
    det = [{"device": "a100-mps", "objective": "min-gpus", "solver": "heuristic", "services": str(n),
            "late_share": "0.0", "wall_s": str(0.01 * n), "solve_cpu_s": str(0.01 * n)} for n in (256, 1024, 4096)]
    poisson = [{**r, "late_share": "0.05", "wall_s": str(0.001 * int(r["services"]) ** 2)} for r in det]
    fits = {f["arrivals"]: f for f in exponents(det + poisson, minimum=256)}
    assert fits["deterministic"]["exponent_wall"] == pytest.approx(1.0, abs=1e-3)
    assert fits["poisson 0.05"]["exponent_wall"] == pytest.approx(2.0, abs=1e-3)


def test_exponents_leave_out_runs_without_a_plan():
    """A baseline stopped at its 60 s limit at 1,024 and 4,096 services made a flat 'exponent' of about 0 out of the
    limit itself; rows without a plan are left out of the fit."""
    rows = [{"device": "a100-mps", "objective": "min-gpus", "solver": "gpulet", "services": str(n), "status": s,
             "wall_s": str(w), "solve_cpu_s": str(w)} for n, s, w in
            ((256, "feasible", 6.0), (512, "feasible", 24.0), (1024, "unknown", 60.0), (4096, "unknown", 60.0))]
    (fit,) = exponents(rows, minimum=256)
    assert fit["services"] == "256-512" and fit["points"] == 2
    assert fit["exponent_wall"] == pytest.approx(2.0, abs=1e-3)
