"""Session 16: an outsider following the documents literally and extending stsched from outside (a third party's
solver, the Python API, the studies' grid).  Each test is one finding; the docstring says what happened before the
fix.  In-process through `stsched.cli.main` / `stsched.api` on small hand-made instances."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import stsched as st
from stsched.io import save_instance
from tests.conftest import make_mps_instance, run_cli


def _too_busy():
    """Two services whose rates no single GPU can serve, on one GPU, planned for Poisson arrivals (so that the
    attainment loop runs by default)."""
    return make_mps_instance(rates=(3000.0, 2000.0), gpus=1).with_arrivals("poisson")


def test_no_plan_under_the_attainment_loop_says_the_solvers_verdict_once(tmp_path, capsys):
    """`stsched solve` of an instance the solver finds no plan for, under the default attainment loop, printed the
    solver's message twice ("cannot be served: s0 ...; no valid plan: cannot be served: s0 ...") and repeated it a
    third time in the warning "SLO-attainment target not met: no valid plan: cannot be served: ...", as if the
    simulation had missed a target.  Now the message is the solver's verdict once, and the warning says no round
    had a plan to simulate."""
    r = st.solve(_too_busy(), "heuristic")
    assert r.plan is None and r.message.count("cannot be served") == 1, r.message
    save_instance(_too_busy(), tmp_path / "i.json")
    code, text = run_cli(capsys, "solve", str(tmp_path / "i.json"), "--json")
    out = json.loads(text[text.index("{"):text.rindex("}") + 1])
    assert code == 1 and out["message"].count("cannot be served") == 1, out["message"]
    assert text.count("cannot be served") == 1, text
    assert "no plan to simulate" in text


def test_quiet_and_verbose_after_a_study_name_are_the_global_flags(tmp_path, capsys):
    """README: "`-q`, `-v` and `--version` go before or after the command name".  `stsched experiment NAME ... -q`
    passed -q to the study, which refused it ("unrecognized arguments: -q", exit 2); only `stsched -q experiment
    NAME` and `stsched experiment -q NAME` worked.  Now the global flags after the study's name are the global
    flags (here the study then says what it says without them: no rows to plot)."""
    for flags in (["-q"], ["-v"], ["--quiet", "-v"]):
        code, text = run_cli(capsys, "experiment", "scale_eval", "--plot-only", "--out", str(tmp_path), *flags)
        assert code == 2 and "unrecognized" not in text and "without --plot-only first" in text, (flags, text)
    code, text = run_cli(capsys, "experiment", "scale_eval", "--version")
    assert code == 0 and text.startswith("stsched "), text


def _no_ray_cluster(monkeypatch, tmp_path):
    """Ray importable, no cluster to find: "auto" looks in $RAY_TMPDIR (an empty folder), never at a real one."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray instance of another test is running in this process")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray"))
    (tmp_path / "ray").mkdir()


def test_ray_address_without_a_cluster_is_one_line(tmp_path, capsys, monkeypatch, files):
    """docs/SCALE_OUT.md: `--runner ray --address auto` joins a running cluster.  With none running, `stsched
    experiment NAME --runner ray --address auto` ended in Ray's ConnectionError traceback (exit 1), and a malformed
    address (`--address foo`) in its ValueError traceback; `stsched simulate --shards 2 --runner ray --address foo`
    the same.  Now one line naming the address and Ray's reason, exit 2."""
    import experiments.common as common

    _no_ray_cluster(monkeypatch, tmp_path)
    monkeypatch.setattr(common, "_RUNNER", common.current_runner())  # the study sets the ray runner: restored after
    for address, says in (("auto", "Could not find any running Ray instance"), ("foo", "Invalid address format")):
        code, text = run_cli(capsys, "experiment", "scale_eval", "--services", "16", "--seeds", "7", "--solvers",
                             "heuristic", "--no-bound", "--objectives", "min-gpus", "--devices", "a100-mps",
                             "--runner", "ray", "--address", address, "--out", str(tmp_path / "out"))
        assert code == 2 and f"--address {address}" in text and says in text, text
        assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    code, text = run_cli(capsys, "simulate", files["inst"], files["plan"], "--shards", "2", "--runner", "ray",
                         "--address", "foo", "--duration", "5")
    assert code == 2 and "--address foo" in text and "Invalid address format" in text, text


def test_solvers_name_lists_that_solvers_options(capsys):
    """`stsched solvers --help` promises "kind, objectives, mechanisms and options", README "the registered solvers:
    options, ...": the text listing showed no option, so a user (or a third party checking its own solver) had
    only `--json` to find the `--param` keys.  Now `stsched solvers NAME` prints each option with its type,
    default and help; an unknown name is one line listing the known."""
    code, text = run_cli(capsys, "solvers", "milp")
    assert code == 0 and text.startswith("milp ") and "--param formulation=" in text and "(str)" in text, text
    code, text = run_cli(capsys, "solvers", "nexus", "--json")
    out = json.loads(text)
    assert code == 0 and [s["name"] for s in out] == ["nexus"], text
    code, text = run_cli(capsys, "solvers", "nope")
    assert code == 2 and "unknown solver 'nope'" in text and "heuristic" in text, text


def test_a_registry_solve_without_a_time_limit_uses_the_options(monkeypatch):
    """`make demo` (README's quick start) ran 59 s and died at its last section with a TypeError traceback:
    `registry_solver(...)` returned a `solve(planned, time_limit_s)` whose time limit had no default, and the
    demo's Poisson section called `solve(inst)`.  Now the limit defaults to the options' own."""
    from stsched.planning.attainment import registry_solver
    from stsched.registry import SolveOptions

    seen = []
    monkeypatch.setattr("stsched.planning.attainment.run_solver",
                        lambda name, inst, options: seen.append(options.time_limit_s))
    solve = registry_solver("heuristic", SolveOptions(time_limit_s=7.0))
    solve(make_mps_instance())
    solve(make_mps_instance(), 3.0)
    assert seen == [7.0, 3.0]


def _cbc_of(scratch) -> list[int]:
    """Pids of the CBC processes working in `scratch` (their command line names a file there)."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(scratch) in cmd and "cbc" in cmd and "stsched" not in cmd.split("\0")[0]:
                out.append(int(proc.name))
    return out


@pytest.mark.slow
def test_kill_9_of_a_milp_solve_takes_cbc_with_it(tmp_path):
    """`kill -9` of `stsched solve --solver milp` left CBC running as an orphan until its own time limit (60 s of a
    core by default; SIGTERM and Ctrl-C stopped it).  Now CBC is started with the kernel's parent-death signal
    (Linux `setpriv --pdeathsig KILL`), so it dies with the solve.  (A random 16-service instance without the
    tenant ladder: one CBC run to the time limit, still running when the solve is killed.)"""
    from stsched.scenarios import random_instance

    if not sys.platform.startswith("linux") or shutil.which("setpriv") is None:
        pytest.skip("no parent-death signal here (Linux with util-linux setpriv)")
    save_instance(random_instance(16, 8, 1), tmp_path / "r16.json")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    p = subprocess.Popen([sys.executable, "-m", "stsched.cli", "solve", str(tmp_path / "r16.json"), "--solver",
                          "milp", "--time-limit", "60", "--param", "ladder=0", "--attainment", "0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "TMPDIR": str(scratch)})
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not _cbc_of(scratch):
            time.sleep(0.05)
        assert _cbc_of(scratch), "the milp never started CBC"
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
        deadline = time.time() + 3
        while time.time() < deadline and _cbc_of(scratch):
            time.sleep(0.05)
        left = _cbc_of(scratch)
        for pid in left:  # never leave one running, whatever the verdict
            os.kill(pid, signal.SIGKILL)
        assert not left, "CBC outlived the killed solve"
    finally:
        if p.poll() is None:
            p.kill()
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


POOL_DRIVER = """
import sys, time
from experiments.common import run_grid
from experiments.runners import Runner
def slow(p):
    time.sleep(0.3)
    return {"y": p["x"]}
run_grid("orphans", [{"x": x} for x in range(200)], ["x"], slow, runner=Runner("local", jobs=2))
"""


def _children(pid: int) -> list[int]:
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                out.append(int(proc.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
def test_kill_9_of_a_study_driver_takes_its_pool_workers_with_it(tmp_path):
    """`kill -9 PID` of a study run with `--jobs 2` (the driver alone, as an OOM killer or a scheduler does) left
    its two pool workers alive forever, about 110 MB each, blocked on a queue the workers themselves kept open
    (tests/experiments/test_runners.py kills the whole process group, which hid it).  Now a forked worker gets the
    parent-death signal (stsched.forking.die_with_parent) and ends with its driver."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "driver.py").write_text(POOL_DRIVER)
    env = {**os.environ, "STSCHED_RESULTS": str(tmp_path), "PYTHONPATH": str(root)}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py")], env=env, cwd=tmp_path,
                            start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.05)
            workers = _children(proc.pid)
        assert len(workers) >= 2, "the pool never started"
        os.kill(proc.pid, signal.SIGKILL)  # the driver only
        proc.wait(timeout=30)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.05)
        left = [w for w in workers if _alive(w)]
        assert not left, f"pool workers {left} outlived their driver"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the group, never a stray worker
        except ProcessLookupError:
            pass
