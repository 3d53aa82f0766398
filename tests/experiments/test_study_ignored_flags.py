"""Shared study flags a study would ignore are refused (session 13, hostile tester): `stsched experiment sim_memory
--plot-only` ran the whole measurement, `--runner ray --jobs 2` and `--fresh` were ignored (exit 0); time_limits
took --time-limit nan and tenant_margin --duration -1; `--runner ray` without Ray ran until its first point."""

from __future__ import annotations

import sys

import pytest

from experiments import attainment_eval, sim_memory, tenant_margin, time_limits

CASES = [
    (sim_memory, ["--plot-only"], "--plot-only: this study runs no grid of points and keeps no rows"),
    (sim_memory, ["--runner", "ray", "--jobs", "2"], "--runner ray, --jobs: this study runs no grid"),
    (tenant_margin, ["--fresh"], "--fresh: this study"),
    (tenant_margin, ["--duration", "-1"], "--duration"),
    (time_limits, ["--time-limit", "nan"], "--time-limit"),
]


@pytest.mark.parametrize("module, argv, words", CASES, ids=[f"{c[0].__name__.split('.')[-1]} {' '.join(c[1])}"
                                                           for c in CASES])
def test_a_flag_the_study_would_ignore_is_refused(module, argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        module.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


def test_the_ray_runner_without_ray_is_refused_before_any_point(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.setattr(attainment_eval, "run_grid", lambda *a, **k: pytest.fail("a grid ran"))
    with pytest.raises(SystemExit) as e:
        attainment_eval.main(["--runner", "ray"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--runner ray needs Ray" in err and len(err.strip().splitlines()) == 1, err


def test_grid_defaults_from_the_environment_do_not_refuse_a_study_without_a_grid(tmp_path, monkeypatch):
    """A valid STSCHED_JOBS=2 (or STSCHED_RUNNER / STSCHED_ADDRESS) made a study without a grid refuse with
    "--jobs: ... would be ignored" though no --jobs was given."""
    import argparse

    import experiments.common as common
    from experiments.common import study_args

    monkeypatch.setattr(common, "_RUNNER", common._RUNNER)  # study_args sets the runner: restored after the test
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    monkeypatch.setenv("STSCHED_JOBS", "2")
    monkeypatch.setenv("STSCHED_ADDRESS", "auto")
    args = study_args(argparse.ArgumentParser(), [], grid=False)
    assert (args.jobs, args.runner, args.address) == (1, "local", None)
    monkeypatch.delenv("STSCHED_ADDRESS")  # (a grid study reads it too: it needs --runner ray)
    assert study_args(argparse.ArgumentParser(), [], grid=True).jobs == 2  # a grid study still reads them
