"""Session 17: a hostile operator of long runs (interruption, resume, limits, bad traces).  Each test is one
finding; the docstring says what happened before the fix.  Small hand-made instances and traces (`count_trace`)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _study(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("variant, says", [
    ("nosuch=1", "unknown option 'nosuch'; the options: adapt_nodes, adapt_solver"),
    ("epoch_s=600", "epoch_s is set by the study (--epochs)"),
    ("costs=5", "unknown option 'costs'"),
])
def test_adapt_eval_names_an_unknown_or_the_studys_own_variant_knob(variant, says, tmp_path):
    """`python -m experiments.adapt_eval --variant nosuch=1` printed Python's raw TypeError ("AdaptOptions.__init__()
    got an unexpected keyword argument 'nosuch'"), `--variant epoch_s=600` "got multiple values for keyword
    argument"; the study had its own copy of the knob parser.  Now adapt_eval parses with `parse_policy` (the
    frontier and scale studies' one), which names the unknown knob and lists the valid ones, and refuses the knobs
    the study sets itself naming its flag; exit 2 before any point runs."""
    r = _study("experiments.adapt_eval", "--variant", variant, "--out", str(tmp_path))
    line = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and says in line and "Traceback" not in r.stderr, r.stderr
    assert not any(tmp_path.iterdir())


def test_two_runs_into_the_same_rows_file_at_once_the_second_is_refused(tmp_path, monkeypatch):
    """Two runs of a study into the same --out at once: each driver rewrote the whole rows file from the rows it had
    read at its start, so the last writer's file won and the other run's finished rows were lost (a study and its
    `--variant` run side by side: the variant's row gone), and both computed the same points.  Now a run holds the
    rows file (an advisory lock, released by the system when it dies, SIGKILL included) and a second run into it is
    one line naming it and the holder's pid, exit 2, before any point runs (since the review mends the lock is the
    results folder's, held for the whole study: `test_review_mends_s17`)."""
    from experiments import common
    from stsched.errors import InputError

    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    ran = []
    path = common.results_dir("adapt") / "rows.csv"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from experiments.common import one_writer\n"
                               "with one_writer(Path(sys.argv[1])):\n print('held', flush=True); time.sleep(60)",
                               str(path.parent)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=rf"adapt: another run \(pid {holder.pid}\) is writing this study's"):
            common.run_grid("adapt", [{"k": 1}], ["k"], lambda p: ran.append(p) or {"v": 1})
        r = _study("experiments.adapt_eval", "--hours", "0.1", "--out", str(tmp_path))
        assert r.returncode == 2 and "another run" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    finally:
        holder.kill()
        holder.wait()
    assert ran == [] and not path.exists()
    rows = common.run_grid("adapt", [{"k": 1}], ["k"], lambda p: {"v": 1})  # the holder killed: runs
    assert rows == [{"k": "1", "v": "1"}]


def test_a_solver_under_the_file_size_limit_is_not_called_faulty(files):
    """`ulimit -f 1; stsched solve r16.json --solver milp` (CBC writes its model to a file): "solver 'milp' failed:
    OSError: [Errno 27] File too large (a fault of the solver; -vv shows its traceback)"; `stsched adapt` under the
    same limit died the same way at its first exact adapt call.  A full disk or the file-size limit is the
    machine's, not a fault of the solver: the line now says so (exit 1, as any solver that could not finish)."""
    import resource

    r = subprocess.run([sys.executable, "-m", "stsched.cli", "solve", files["inst"], "--solver", "milp", "-q"],
                       capture_output=True, text=True, timeout=60,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100)))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "could not write a file: File too large (the file-size limit, ulimit -f: a limit of this machine, " \
           "not a fault of the solver)" in r.stderr, r.stderr


def test_a_trace_with_fewer_functions_than_services_says_that_they_wrap(tmp_path, monkeypatch, capsys, caplog):
    """`stsched adapt` on a replacement count trace (`$STSCHED_DATA`) with one function for a two-service instance
    ran without a word: service s1 silently followed the same function as s0 (the documented wrap-around, meant
    for instances beyond the shipped trace's 500 functions).  Now a warning says how many functions the trace has
    and which services wrap."""
    import stsched as st
    from tests.conftest import count_trace, counts_csv, make_mps_instance, run_cli

    st.save(make_mps_instance(), tmp_path / "two.json")
    with count_trace(tmp_path, monkeypatch, counts_csv(rows=((5,) * 20,))):
        code, text = run_cli(capsys, "adapt", str(tmp_path / "two.json"), "--trace", "azure-functions-2019",
                             "--plan-only", "-q")
    assert code == 0 and "has 1 functions with invocations for 2 services: services 1.. follow" in caplog.text, text


@pytest.mark.parametrize("study, policy, flag", [
    ("adapt_frontier", "adaptive[downtime=stop]", "downtime is set by the study (standby)"),
    ("adapt_frontier", "adaptive[hours=1]", "hours is set by the study (--hours)"),
    ("adapt_frontier", "adaptive[epoch_s=600]", "epoch_s is set by the study"),
    ("adapt_scale", "adaptive[hours=1]", "hours is set by the study (--hours)"),
    ("adapt_scale", "adaptive[function_pool=500]", "function_pool is set by the study"),
])
def test_a_studys_own_option_in_a_policys_brackets_is_refused(study, policy, flag, tmp_path, monkeypatch, capsys):
    """`python -m experiments.adapt_frontier --policies 'adaptive[downtime=stop]'` (or hours=1, epoch_s=600) ran
    the point with the bracket's value while its row recorded the study's (standby, --hours, 300 s): a row that
    says what it did not run (only time_limit_s was refused); adapt_scale the same with hours, downtime, the
    function pool (a pool of 500 reads the maintainers' hold-out functions).  Now refused, naming the option and
    the study's flag, exit 2, before any point runs."""
    import importlib

    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    main = importlib.import_module(f"experiments.{study}").main
    with pytest.raises(SystemExit) as e:
        main(["--policies", policy, "--hours", "0.25", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and flag in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / study).exists() and not (tmp_path / "adapt_frontier").exists()


@pytest.mark.parametrize("out", ["stdout", "png"])
def test_output_past_the_file_size_limit_is_one_line(out, files, tmp_path):
    """`ulimit -f 1; stsched simulate I P --json > out.json` (or `> /dev/full`, a full disk) ended in two
    tracebacks (OSError: [Errno 27] File too large, then again at the interpreter's flush); `stsched show I P --out
    plan.png` under the limit a traceback from PIL.  Now one line naming the limit, exit 1 (nothing left beside
    the --out)."""
    import resource

    argv = (["simulate", files["inst"], files["plan"], "--duration", "2", "--json"] if out == "stdout" else
            ["show", files["inst"], files["plan"], "--out", str(tmp_path / "plan.png")])
    with open(tmp_path / "stdout.txt", "w") as f:
        r = subprocess.run([sys.executable, "-m", "stsched.cli", *argv, "-q"], stdout=f, stderr=subprocess.PIPE,
                           text=True, timeout=60, cwd=tmp_path,
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300)))
    assert r.returncode == 1 and r.stderr.strip() == \
        "stsched: cannot write the output: File too large (the file-size limit, ulimit -f)", r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stdout.txt"]


@pytest.mark.parametrize("cost", ["1e308", "json"])
def test_a_reconfiguration_cost_beyond_a_day_is_refused(cost, tmp_path, monkeypatch, capsys):
    """`stsched adapt r16.json --trace azure-functions-2019 --hours 0.5 --plan-only --reconfig-cost 1e308 --json`
    ran and printed `"downtime_s": null` (3 reconfigurations x 1e308 s overflowed to inf); 1e6 s (11.6 days per
    reconfiguration) gave 2,000,000 s of downtime in half an hour.  A cost is now at most a day, one range check
    (ReconfigCosts') for the flag's number and the JSON file alike."""
    import stsched as st
    from tests.conftest import count_trace, counts_csv, make_mps_instance, run_cli

    st.save(make_mps_instance(), tmp_path / "two.json")
    arg = "1e308"
    if cost == "json":
        (tmp_path / "cost.json").write_text('{"mps": 1e308}')
        arg = str(tmp_path / "cost.json")
    with count_trace(tmp_path, monkeypatch, counts_csv()):
        code, text = run_cli(capsys, "adapt", str(tmp_path / "two.json"), "--trace", "azure-functions-2019",
                             "--plan-only", "--reconfig-cost", arg)
    assert code == 2 and "reconfiguration cost of mps: expected seconds from 0 to 86400 (a day), got 1e+308" in text


def test_a_results_folder_without_locks_runs_unguarded_with_a_warning(tmp_path, monkeypatch, caplog):
    """The lock above on a file system that has none (lockf: ENOLCK) must not stop every study there."""
    import errno
    import fcntl

    from experiments import common

    def no_locks(f, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    monkeypatch.setattr(fcntl, "lockf", no_locks)
    assert common.run_grid("adapt", [{"k": 1}], ["k"], lambda p: {"v": 2}) == [{"k": "1", "v": "2"}]
    assert "cannot lock it (No locks available)" in caplog.text


def _out_of_memory(point):
    raise MemoryError("Unable to allocate 1.6 GiB")


def _too_busy(point):
    raise ValueError("a solver's own failure")


def test_scale_eval_retries_a_point_that_failed_for_the_machine_or_the_checkout(tmp_path, monkeypatch):
    """`python -m experiments.scale_eval --quick`, resumed after SIGTERM while the checkout was being edited, kept 20
    rows whose forked solve had died of "ImportError: cannot import name ..." as results (column `error`), and a
    later resume never ran them again (only `--fresh` did); a MemoryError or a full disk in the forked solve the
    same.  Now those are `run_error` rows, run again by the next run; a solver's own failure stays a result."""
    from experiments import common
    from experiments.runners import RUN_ERROR
    from experiments.scale_eval import forked

    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    assert forked(_out_of_memory, {})[RUN_ERROR] == "MemoryError: Unable to allocate 1.6 GiB"
    assert forked(_too_busy, {})["error"] == "ValueError: a solver's own failure"
    runs = []
    for fn in (_out_of_memory, lambda p: {"v": 1}):
        rows = common.run_grid("scale", [{"k": 1}], ["k"], lambda p: runs.append(p) or forked(fn, p))
    assert len(runs) == 2 and rows[0]["v"] == "1" and not rows[0].get(RUN_ERROR), rows


def test_adapt_no_plan_says_its_rates_are_after_head_room(tmp_path, capsys):
    """`stsched adapt` on an instance it cannot serve said "cannot be served: ... rate 1800 req/s exceeds ..." for a
    service whose instance says 1500: the rate after the default head-room of 1.2, without saying so (a hostile
    tester read it as a wrong rate).  Now the one line says the rates are 1.2 x those estimated from the trace."""
    from stsched.io import save_instance
    from tests.conftest import make_mps_instance, run_cli

    inst = tmp_path / "inst.json"
    save_instance(make_mps_instance(rates=(100.0, 1e6)), inst)  # s1: more than the instance's GPUs can serve
    code, text = run_cli(capsys, "adapt", str(inst), "--trace", "azure-functions-2019", "--plan-only", "--hours",
                         "0.1", "--headroom", "1.2")
    assert code == 1 and "cannot be served" in text, text
    line = [ln for ln in text.splitlines() if "no plan" in ln]
    assert len(line) == 1 and "rates after head-room: 1.2 x those estimated from the trace" in line[0], text
