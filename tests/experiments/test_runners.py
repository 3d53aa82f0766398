"""experiments.runners behind run_grid: a local pool gives the serial rows, failures become retried error rows,
a dying worker loses no point, and a driver killed mid-grid (SIGKILL, SIGINT) resumes without lost or doubled rows."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from experiments.common import current_runner, run_grid, set_runner, start_order, study_args
from experiments.runners import RUN_ERROR, Runner

ROOT = Path(__file__).resolve().parents[2]


def square(p):
    if p["x"] == 3:
        time.sleep(0.2)  # finishes after later points: rows must still come in grid order
    return {"y": p["x"] ** 2, "threads": os.environ.get("OMP_NUM_THREADS", "")}


def test_local_pool_rows_equal_serial_rows_in_grid_order(tmp_path, monkeypatch):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    grid = [{"x": x} for x in range(6)]
    serial = run_grid("serial", grid, ["x"], square)
    pooled = run_grid("pooled", grid, ["x"], square, runner=Runner("local", jobs=2))
    assert [r["y"] for r in pooled] == [r["y"] for r in serial] == [str(x * x) for x in range(6)]
    assert {r["threads"] for r in pooled} == {"1"}  # every task pinned to one thread
    closure = 5  # a lambda with a closure reaches forked workers too
    rows = run_grid("closure", grid, ["x"], lambda p: {"z": p["x"] + closure}, runner=Runner("local", jobs=2))
    assert [r["z"] for r in rows] == [str(x + 5) for x in range(6)]


def test_costly_points_start_first_on_several_workers_and_rows_stay_in_grid_order(tmp_path, monkeypatch):
    grid = [{"x": x, "n": n} for x, n in enumerate((64, 512, 128, 512, 256, 64))]
    size = lambda p: p["n"]  # noqa: E731
    assert start_order(grid, [0, 1, 2, 3, 4, 5], Runner("local", jobs=2), size) == [1, 3, 4, 2, 0, 5]
    assert start_order(grid, [0, 2, 5], Runner("local", jobs=2), size) == [2, 0, 5]  # only the points still to do
    assert start_order(grid, [0, 1, 2], Runner("local", jobs=1), size) == [0, 1, 2]  # serial: grid order
    assert start_order(grid, [0, 1, 2], Runner("local", jobs=2), None) == [0, 1, 2]
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    rows = run_grid("lpt", grid, ["x"], square, runner=Runner("local", jobs=2), cost=size)
    assert [r["x"] for r in rows] == [str(x) for x in range(6)]
    assert [r["y"] for r in rows] == [str(x * x) for x in range(6)]


def test_a_failed_point_is_an_error_row_retried_next_run(tmp_path, monkeypatch):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    grid = [{"x": x} for x in range(4)]

    def flaky(p):
        if p["x"] == 2:
            raise RuntimeError("solver crashed\nsecond line")
        return {"y": p["x"]}

    for runner in (Runner(), Runner("local", jobs=2)):
        rows = run_grid(f"flaky{runner.jobs}", grid, ["x"], flaky, runner=runner)
        assert [r[RUN_ERROR] for r in rows] == ["", "", "RuntimeError: solver crashed", ""]
        rows = run_grid(f"flaky{runner.jobs}", grid, ["x"], lambda p: {"y": p["x"], "rerun": 1}, runner=runner)
        assert [r["y"] for r in rows] == ["0", "1", "2", "3"]
        assert [r["rerun"] for r in rows] == ["", "", "1", ""]  # only the failed point ran again
        assert RUN_ERROR not in rows[0]  # the column goes once no row needs it


def test_a_worker_that_dies_loses_no_point(tmp_path, monkeypatch):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    grid = [{"x": x} for x in range(5)]

    def dies(p):
        if p["x"] == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return {"y": p["x"]}

    rows = run_grid("dies", grid, ["x"], dies, runner=Runner("local", jobs=2))
    assert [r["x"] for r in rows] == ["0", "1", "2", "3", "4"]  # every point once, in grid order
    failed = [r["x"] for r in rows if r[RUN_ERROR]]
    assert "1" in failed and all(r["y"] == r["x"] for r in rows if not r[RUN_ERROR])
    rows = run_grid("dies", grid, ["x"], lambda p: {"y": p["x"]}, runner=Runner("local", jobs=2))
    assert [r["y"] for r in rows] == ["0", "1", "2", "3", "4"]


DRIVER = textwrap.dedent("""
    import sys, time
    from experiments.common import run_grid
    from experiments.runners import Runner
    def slow(p):
        time.sleep(0.15)
        return {"y": p["x"] * 10}
    run_grid("killed", [{"x": x} for x in range(40)], ["x"], slow, runner=Runner("local", jobs=int(sys.argv[1])))
""")


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_killed_driver_resumes_without_lost_or_doubled_rows(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    env = {**os.environ, "STSCHED_RESULTS": str(tmp_path), "PYTHONPATH": str(ROOT)}
    path = tmp_path / "killed" / "rows.csv"
    done = 0
    for sig, jobs in ((signal.SIGKILL, 2), (signal.SIGINT, 1)):
        # SIGINT's default restored: a shell runs background jobs with SIGINT ignored, and Python keeps it so
        proc = subprocess.Popen([sys.executable, str(script), str(jobs)], env=env, cwd=tmp_path,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (path.exists() and len(_rows(path)) >= done + 3):
            time.sleep(0.05)  # this run's own progress: at least 3 rows more than the killed run before it left
        os.killpg(proc.pid, sig)  # the driver and its workers, mid-grid
        proc.wait(timeout=30)
        before = _rows(path)
        assert done + 3 <= len(before) < 40
        done = len(before)
        assert len({r["x"] for r in before}) == len(before)
    subprocess.run([sys.executable, str(script), "2"], env=env, cwd=tmp_path, check=True, timeout=120)
    rows = _rows(path)
    assert [r["x"] for r in rows] == [str(x) for x in range(40)]  # each point once, in grid order
    assert [r["y"] for r in rows] == [str(10 * x) for x in range(40)]


def test_study_args_is_the_shared_block_and_sets_the_runner():
    import argparse

    try:
        args = study_args(argparse.ArgumentParser(), ["--quick", "--jobs", "3", "--threads", "2"])
        assert args.quick and not args.fresh and current_runner() == Runner("local", jobs=3, threads=2)
    finally:
        set_runner(Runner())


def test_a_large_jobs_forks_no_more_workers_than_points(tmp_path, monkeypatch):
    """`--jobs 99999` on a grid of 3 points forked 99,999 workers (a fork pool starts them all at once); 8 here."""
    import experiments.runners as runners

    seen = []
    real = runners.ProcessPoolExecutor

    def spy(*args, **kwargs):
        seen.append(kwargs["max_workers"])
        return real(*args, **kwargs)

    monkeypatch.setattr(runners, "ProcessPoolExecutor", spy)
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    rows = run_grid("many-jobs", [{"x": x} for x in range(3)], ["x"], square, runner=Runner("local", jobs=8))
    assert [r["y"] for r in rows] == ["0", "1", "4"]
    assert seen == [3]
