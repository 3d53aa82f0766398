"""Every promise of the command line under hostile input (issue 16), as a table: (arguments, exit code, words that
must appear in the output).  In-process through `stsched.cli.main`; a subprocess only for pipes and signals."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from stsched.cli import main
from stsched.io import plan_to_dict, save_instance, save_plan
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from tests.conftest import make_mig_instance, make_mps_instance


def _plan() -> Plan:
    return Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("hostile")
    f: dict[str, str] = {"dir": str(d)}
    inst = make_mps_instance()
    save_instance(inst, d / "inst.json")
    save_plan(_plan(), d / "plan.json")
    f["inst"], f["plan"] = str(d / "inst.json"), str(d / "plan.json")
    # a plan the checker rejects: more GPUs than the instance has, a duplicated tenant
    bad = plan_to_dict(_plan())
    bad["gpus"] = bad["gpus"] * 3
    bad["gpus"][0]["partitions"][0]["tenants"].append(dict(bad["gpus"][0]["partitions"][0]["tenants"][0]))
    (d / "bad.json").write_text(json.dumps(bad))
    f["bad"] = str(d / "bad.json")
    # another instance's plan (a MIG plan for an MPS instance): the checker rejects it
    save_plan(Plan((GpuLayout((Partition(3.0, (Tenant("s0", 1, 10.0),), None, 1, 0),)),)), d / "other.json")
    f["other"] = str(d / "other.json")
    save_instance(make_mig_instance(), d / "mig.json")
    f["mig"] = str(d / "mig.json")
    base = json.loads((d / "inst.json").read_text())

    def variant(name: str, change) -> None:
        x = json.loads(json.dumps(base))
        change(x)
        (d / f"{name}.json").write_text(json.dumps(x))
        f[name] = str(d / f"{name}.json")

    variant("bogus", lambda x: x.update(bogus=1))
    variant("late_shar", lambda x: x["margin"].update(late_shar=0.05))
    variant("colour", lambda x: x["services"][0].update(colour="red"))
    variant("format9", lambda x: x.update(format=9))
    variant("ctrl", lambda x: x["services"][0].update(name="s\x1b[31m0"))
    variant("extensions", lambda x: x.update(extensions={"owner": "lab", "colour": "red"}))
    variant("zero", lambda x: [s.update(rate=0.0) for s in x["services"]])
    pbad = plan_to_dict(_plan())
    pbad["gpus"][0]["partitions"][0]["colour"] = "red"
    (d / "plan_colour.json").write_text(json.dumps(pbad))
    f["plan_colour"] = str(d / "plan_colour.json")
    (d / "binary.bin").write_bytes(bytes(range(256)) * 4)
    f["binary"] = str(d / "binary.bin")
    (d / "cpu_reconfig.json").write_text(json.dumps({"mechanism": "cpu", "layouts": [], "reconfig_s": {}}))
    f["cpu_reconfig"] = str(d / "cpu_reconfig.json")
    (d / "folder").mkdir()
    f["folder"] = str(d / "folder")
    (d / "a_file").write_text("x")
    f["a_file"] = str(d / "a_file")
    return f


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    return code, text


def _run_json(argv: list[str], capsys) -> tuple[int, object]:
    """Exit code and the one JSON object on stdout (stderr may carry a warning line)."""
    code = main(argv)
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, json.loads(out.out)


# (arguments with {placeholders} from `files`, exit code, words expected in stdout + stderr)
TABLE = [
    # --- output paths
    ("solve {inst} --out {inst}", 2, ["is also an input"]),
    ("simulate {inst} {plan} --duration 1 --out {plan}", 2, ["is also an input"]),
    ("solve {inst} --out {folder}", 2, ["is a folder"]),
    ("solve {inst} --out /proc/stsched-hostile.json", 2, ["cannot write"]),
    ("scenario gpulet-m2 --out {folder}", 2, ["is a folder"]),
    ("simulate {inst} {plan} --duration 1 --records {folder}", 2, ["--records", "is a folder"]),
    ("fit --dataset v100 --out {folder}", 2, ["is a folder"]),
    ("import gpulet-a100 {inst} --out {a_file}", 2, ["not a folder"]),
    ("solve {inst} --out /dev/null", 0, ["valid True"]),
    ("solve {inst} --out /dev/full", 1, ["/dev/full", "cannot write", "full disk"]),  # a machine limit (exit 1), session 17
    # --- numbers: range-checked before any work, one line
    ("simulate {inst} {plan} --seed -1", 2, ["--seed", "whole number >= 0"]),
    ("solve {inst} --attainment 0.99 --seed -1", 2, ["--seed"]),
    ("scenario random --services 2 --gpus 1 --seed -1", 2, ["--seed"]),
    ("adapt {inst} --trace azure-functions-2019 --seed -1", 2, ["--seed"]),
    ("solve {inst} --solver milp --threads -3", 2, ["--threads", ">= 1"]),
    ("solve {inst} --time-limit 0", 2, ["--time-limit", "> 0"]),
    ("solve {inst} --time-limit -5", 2, ["--time-limit"]),
    ("solve {inst} --time-limit nan", 2, ["--time-limit", "finite"]),
    ("solve {inst} --headroom 0.5", 2, ["--headroom"]),
    ("scenario random --services 2 --gpus 1 --load -1", 2, ["--load"]),
    ("scenario profile h200-sm --seed -2", 2, ["--seed"]),
    ("scenario profile h200-sm --services 0", 2, ["--services"]),
    ("simulate {inst} {plan} --duration 1e12", 2, ["would not fit in memory", "bytes per request"]),
    ("simulate {inst} {plan} --duration nan", 2, ["--duration"]),
    # --- solver options: typed, unknown keys refused with the valid ones listed
    ("solve {inst} --solver milp --param formulaton=slots", 2, ["unknown option 'formulaton'", "valid keys"]),
    ("solve {inst} --solver gpulet --param foo=1", 2, ["unknown option 'foo'", "slack"]),
    ("solve {inst} --solver gpulet --param slack=abc", 2, ["slack='abc'", "float"]),
    ("solve {inst} --solver gslice --param a=1", 2, ["takes no options"]),
    ("solve {inst} --objective adapt", 2, ["--current"]),
    ("solve {inst} --engine glpk", 2, ["--engine"]),
    # --- instances and plans: unknown keys and formats, names
    ("check {bogus} {plan}", 2, ["bogus", "unknown key", "extensions"]),
    ("check {late_shar} {plan}", 2, ["margin.late_shar", "unknown key"]),
    ("check {colour} {plan}", 2, ["services[0].colour", "unknown key"]),
    ("check {format9} {plan}", 2, ["unknown format 9"]),
    ("check {ctrl} {plan}", 2, ["control characters"]),
    ("check {extensions} {plan}", 0, ["VALID"]),
    ("check {inst} {plan_colour}", 2, ["partitions[0].colour", "unknown key"]),
    ("solve {zero}", 0, ["objective 0, bound 0"]),
    ("scenario gpulet-m2 --interference-form bogus", 2, ["--interference-form", "--latency-model"]),
    # --- plans judged before use
    ("simulate {inst} {bad} --duration 1", 1, ["not valid", "--allow-invalid"]),
    ("simulate {inst} {bad} --duration 1 --allow-invalid", 0, ["NOTE: the plan is not valid"]),
    ("solve {inst} --objective adapt --current {other}", 1, ["--current", "not valid"]),
    ("solve {inst} --warm-start {other}", 1, ["--warm-start", "not valid"]),
    ("solve {inst} --warm-start {plan}", 0, ["valid True"]),
    # --- files of the wrong kind
    ("adapt {inst} --trace azure-functions-2019 --reconfig-cost {binary}", 2, ["cannot read"]),
    ("adapt {inst} --trace azure-functions-2019 --reconfig-cost {cpu_reconfig}", 2, ["CPU run"]),
    # --- the promised flags
    ("--version", 0, ["stsched"]),
    ("solve {inst}", 0, ["GPUs 1, valid True"]),  # min-gpus: no "scale" printed
]


@pytest.mark.parametrize("args, code, words", TABLE, ids=[t[0][:60] for t in TABLE])
def test_hostile_table(files, capsys, args, code, words):
    argv = [a.format(**files) for a in args.split()]
    got, text = _run(argv, capsys)
    assert got == code, text
    for w in words:
        assert w in text, (w, text)
    if code == 2:  # one line on stderr, no work reported
        assert len([x for x in text.strip().splitlines() if x.startswith("stsched")]) == 1, text


def test_brute_stops_at_the_time_limit(capsys, tmp_path):
    from stsched.scenarios import random_instance

    # brute force needs minutes here
    save_instance(random_instance(6, 3, 2, arrivals="deterministic"), tmp_path / "r6.json")
    code, d = _run_json(["solve", str(tmp_path / "r6.json"), "--solver", "brute", "--time-limit", "1", "--json"],
                        capsys)
    assert code == 1 and d["status"] == "unknown" and "time limit" in d["message"]
    assert d["wall_s"] <= 1 * 1.1 + 1


@pytest.mark.parametrize("solver", ["heuristic", "gpulet"])
def test_huge_max_scale_honours_the_time_limit(capsys, tmp_path, solver):
    from stsched.scenarios import gpulet_mix

    save_instance(gpulet_mix("m2", 3000), tmp_path / "big.json")
    code, d = _run_json(["solve", str(tmp_path / "big.json"), "--solver", solver, "--objective", "max-scale",
                         "--time-limit", "1", "--json"], capsys)
    assert d["wall_s"] <= 1 * 1.1 + 1, d
    assert (code, d["status"]) in ((0, "feasible"), (1, "unknown")), d


def test_min_gpus_output_has_no_scale(files, capsys):
    _, text = _run(["solve", files["inst"]], capsys)
    assert "scale" not in text


def test_writes_through_special_files_and_keeps_links(files, capsys, tmp_path):
    # a FIFO is written through, never replaced by a regular file
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert _run(["solve", files["inst"], "--out", str(fifo)], capsys)[0] == 0
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and json.loads(got[0])["gpus"]
    # /dev/null stays a character device
    assert _run(["solve", files["inst"], "--out", "/dev/null"], capsys)[0] == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    # a symbolic link is followed: the file it points to is replaced, the link stays
    target = tmp_path / "target.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert _run(["solve", files["inst"], "--out", str(link)], capsys)[0] == 0
    assert link.is_symlink() and json.loads(target.read_text())["gpus"]


def test_output_permissions_follow_the_umask(files, capsys, tmp_path):
    old = os.umask(0o022)
    try:
        new = tmp_path / "new.json"
        assert _run(["solve", files["inst"], "--out", str(new)], capsys)[0] == 0
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o644
        keep = tmp_path / "keep.json"
        keep.write_text("x")
        os.chmod(keep, 0o640)
        assert _run(["solve", files["inst"], "--out", str(keep)], capsys)[0] == 0
        assert stat.S_IMODE(os.stat(keep).st_mode) == 0o640  # an overwritten file keeps its mode
    finally:
        os.umask(old)


def test_imports_never_mix(capsys, tmp_path):
    root = Path(__file__).resolve().parents[2] / "data" / "profiles"
    out = tmp_path / "imp"
    assert _run(["import", "stsched-profiler", str(root / "h200-sm"), "--out", str(out)], capsys)[0] == 0
    code, text = _run(["import", "stsched-profiler", str(root / "h100-sm"), "--out", str(out)], capsys)
    assert code == 2 and "already holds an import" in text and "--fresh" in text
    code, d = _run_json(["import", "stsched-profiler", str(root / "h100-sm"), "--out", str(out), "--fresh",
                         "--json"], capsys)
    assert code == 0 and d["solo_rows"] > 0
    assert json.loads((out / "import.json").read_text())["paths"] == [str((root / "h100-sm").resolve())]


def test_evaluate_model_refuses_other_units():
    import pandas as pd
    from types import SimpleNamespace

    from stsched.commands.fit import _same_units
    from stsched.errors import InputError

    model = SimpleNamespace(mechanism="mps", dataset="v100-mps")
    _same_units(model, pd.DataFrame({"mechanism": ["mps"]}), None, "f.csv")
    with pytest.raises(InputError, match="measures sm partitions"):
        _same_units(model, pd.DataFrame({"mechanism": ["sm"]}), None, "f.csv")


def test_gamma_arrivals_beyond_memory_are_refused():
    import numpy as np

    from stsched.errors import InputError
    from stsched.simulation.arrivals import gamma

    rng = np.random.default_rng(0)
    assert len(gamma(30.0, 2.0, 5.0, rng, cap=10_000)) < 10_000  # a run that fits is not refused
    with pytest.raises(InputError, match="would not fit in memory"):
        gamma(30.0, 1e6, 5.0, np.random.default_rng(0), cap=10_000)


def test_solvers_json_lists_options_objectives_mechanisms(capsys):
    code, listed = _run_json(["solvers", "--json"], capsys)
    rows = {r["name"]: r for r in listed}
    assert code == 0 and {"heuristic", "milp", "gpulet", "gslice"} <= set(rows)
    assert "mig" in rows["gslice"]["mechanisms"] and rows["milp-highs"]["alias_of"] == "milp"
    slack = {o["name"]: o for o in rows["gpulet"]["options"]}["slack"]
    assert slack["type"] == "float" and slack["default"] == 0.0 and slack["help"]
    assert all(o["help"] for r in rows.values() for o in r["options"])


def test_every_option_has_help_and_every_command_a_description():
    import argparse

    from stsched.cli import build_parser

    missing = []

    def walk(p, path):
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sub in a.choices.items():
                    if not sub.description:
                        missing.append(" ".join(path + [name]))
                    walk(sub, path + [name])
            elif not isinstance(a, (argparse._HelpAction, argparse._VersionAction)) and a.help is None:
                missing.append(f"{' '.join(path)} {a.option_strings or a.dest}")

    walk(build_parser(), ["stsched"])
    assert not missing
    assert "(default 60" in build_parser()._subparsers._group_actions[0].choices["solve"].format_help()


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, **kw.pop("env", {})}
    return subprocess.Popen([sys.executable, "-m", "stsched.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, **kw)


def test_closed_pipe_is_quiet():
    """`stsched solvers | true`: stdout is closed before the first line is written; exit 141, no traceback."""
    p = _cli("solvers")
    p.stdout.close()  # the reader went away
    _, err = p.communicate(timeout=120)
    assert p.returncode == 141 and b"Traceback" not in err and b"BrokenPipe" not in err, err


def test_sigterm_removes_the_milp_temporary_files(tmp_path):
    from stsched.scenarios import parvagpu

    save_instance(parvagpu(4), tmp_path / "row4.json")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    p = _cli("solve", str(tmp_path / "row4.json"), "--solver", "milp", "--time-limit", "60",
             env={"TMPDIR": str(scratch)})
    deadline = time.time() + 90
    while time.time() < deadline and not any(scratch.glob("stsched-milp-*/*")):
        time.sleep(0.05)
    assert any(scratch.glob("stsched-milp-*")), "the milp never started its engine"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and b"Traceback" not in err, err
    assert list(scratch.iterdir()) == []  # the private folder and PuLP's files are gone
