"""Session 17, review mends (s17-mendD): each test is one finding of the review of s17-18front and s17-faults; the
docstring says what happened before the fix."""

from __future__ import annotations

import errno
import os

import pytest


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_an_output_on_a_full_disk_is_the_machines_limit_exit_1_not_bad_input(capsys):
    """`atomic_writer` turned every OSError into InputError (exit 2, "cannot write: No space left on device"), a
    full disk included, for every `--out`; stdout and CBC's file on a full disk were exit 1 (`machine_limit`).  Now
    a machine limit is re-raised as the OSError it is, naming the output, and the CLI's line says which limit."""
    from stsched.cli import run_parsed
    from stsched.io import write_atomic

    with pytest.raises(OSError) as e:
        write_atomic("/dev/full", "x" * 100)
    assert e.value.errno == errno.ENOSPC and e.value.filename == "/dev/full"
    import argparse

    code = run_parsed(argparse.Namespace(run=lambda _a: write_atomic("/dev/full", "x")))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == ["stsched: cannot write /dev/full: No space left on device (a full disk)"], err


def test_reconfig_costs_with_a_400_digit_integer_name_the_key(tmp_path):
    """`ReconfigCosts.load` ran `float(v)` on a JSON integer of 400 digits: an OverflowError traceback.  Now one
    line naming the file and the key (InputError, exit 2)."""
    from stsched.errors import InputError
    from stsched.reconfig import ReconfigCosts

    path = tmp_path / "costs.json"
    path.write_text('{"mig": 1' + "0" * 400 + "}")
    with pytest.raises(InputError, match=r"costs\.json.*mig: 1000.*\(401 digits\) is out of range"):
        ReconfigCosts.load(path)


@pytest.mark.parametrize("study", ["adapt_frontier", "adapt_eval", "adapt_scale"])
@pytest.mark.parametrize("knob", ["function_pool=40", "trace=azure-functions-2019"])
def test_the_workload_is_not_a_policys_option(study, knob):
    """`--policies 'adaptive[function_pool=40]'` (adapt_frontier) or `--variant trace=...` (adapt_eval) ran that
    policy on another workload than the others of its table, the row not saying so.  The trace and the function
    pool are now among the options the studies set themselves (OWNED): refused in brackets, naming the option.
    adapt_scale refused the pool but took `adaptive[trace=...]` (its own list did not extend the shared one,
    `adapt_frontier.WORKLOAD_OWNED`)."""
    import importlib

    from experiments.adapt_frontier import parse_policy

    owned = importlib.import_module(f"experiments.{study}").OWNED
    with pytest.raises(SystemExit, match=rf"{knob.split('=')[0]} is set by the study"):
        parse_policy(f"adaptive[{knob}]", owned)


def test_the_wrap_warning_counts_services_from_the_function_offset(tmp_path, monkeypatch, capsys, caplog):
    """With `--functions-offset k` the wrap-around warning counted the offset's padding rows as services: 2 services
    from function 2 of a 3-function trace said "for 4 services: services 3.. follow" (the controller padded the rate
    list with k rows).  Now the offset is passed to `rate_schedule`: "for 2 services from function 2: services 1..",
    and service i still follows function (k + i) modulo the functions."""
    import stsched as st
    from tests.conftest import count_trace, counts_csv, make_mps_instance, run_cli

    st.save(make_mps_instance(), tmp_path / "two.json")
    with count_trace(tmp_path, monkeypatch, counts_csv(rows=((5,) * 20, (3,) * 20, (1,) * 20))):
        code, text = run_cli(capsys, "adapt", str(tmp_path / "two.json"), "--trace", "azure-functions-2019",
                             "--functions-offset", "2", "--plan-only", "-q")
    assert code == 0 and ("has 3 functions with invocations for 2 services from function 2: services 1.. follow"
                          in caplog.text), caplog.text + text


def test_a_second_run_into_a_study_folder_held_by_the_first_is_refused_before_touching_a_file(tmp_path):
    """Each `run_grid` call took and released its own lock on its file: adapt_frontier writes rows.csv then needs.csv
    (scale_eval bounds.csv then solves.csv), so a second run into the same --out got into rows.csv as soon as the
    first had finished it and was computing needs.csv (with --fresh it deleted rows.csv first).  Now the results
    folder is held for the whole study (`hold_folder`, released when the study ends): a second run while the first
    holds it is one line naming the folder and the holder's pid, exit 2, every file as it was (--fresh included)."""
    import subprocess
    import sys

    folder = tmp_path / "adapt_frontier"
    folder.mkdir()
    files = {"rows.csv": "mix,offset,policy\nscen1,0,static-peak\n", "needs.csv": "offset,scratch\n0,1 2\n"}
    for name, text in files.items():
        (folder / name).write_text(text)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from experiments.common import hold_folder\n"
                               "hold_folder(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)",
                               str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = subprocess.run([sys.executable, "-m", "experiments.adapt_frontier", "--out", str(tmp_path), "--fresh",
                            "--offsets", "0", "--policies", "static-peak", "--hours", "0.1", "--no-bound"],
                           capture_output=True, text=True, timeout=60)
    finally:
        holder.kill()
        holder.wait()
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and f"another run (pid {holder.pid})" in lines[0], r.stderr
    assert "adapt_frontier" in lines[0]
    assert {p.name for p in folder.iterdir()} == {*files, ".lock"}
    assert all((folder / name).read_text() == text for name, text in files.items())


def test_one_gpu_off_and_another_on_is_counted_as_both_not_as_a_rebuild():
    """`LayoutChange` recorded only the GPU counts before and after, and the frontier's attribution took the GPUs
    switched on / off as their net difference and "rebuilt in use" as reconfigurations minus the count's changes:
    one GPU switched off and another on read "+0 / -0" and 2 rebuilt (window 34..37's emergency "1 (+0 / -0)").
    Now the changed GPUs themselves are counted (`layout_change_kinds`), recorded in `LayoutChange` and summed."""
    from experiments.adapt_frontier import attribution
    from stsched.plan import GpuLayout, Partition, Plan, Tenant, layout_change_kinds, layout_changes
    from stsched.planning.adapt.controller import LayoutChange

    def gpu(size, svc):
        return GpuLayout((Partition(size, (Tenant(svc, 4, 10.0),)),))

    old = Plan((gpu(100.0, "a"), GpuLayout(), gpu(100.0, "c")))
    new = Plan((GpuLayout(), gpu(100.0, "b"), gpu(50.0, "c")))  # GPU 0 off, GPU 1 on, GPU 2 rebuilt
    assert layout_change_kinds(old, new) == (1, 1, 1) and layout_changes(old, new) == 3
    change = LayoutChange(0.0, "emergency", 3, 0, old.gpus_used, new.gpus_used, "", *layout_change_kinds(old, new))
    cols = attribution([change])
    assert (cols["gpus_on_emergency"], cols["gpus_off_emergency"], cols["reconf_rebuilt"]) == (1, 1, 1)
