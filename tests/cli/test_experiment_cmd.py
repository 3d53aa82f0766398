"""`stsched experiment`: every study declares itself, --list shows them all, NAME runs a study with the shared flags."""

from __future__ import annotations

import csv
from pathlib import Path

from experiments.common import studies
from stsched.cli import build_parser, main

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def test_every_study_module_declares_itself():
    declared = {s.name for s in studies()}
    mains = {p.stem for p in EXPERIMENTS.glob("*.py") if "\ndef main(" in p.read_text()}
    assert mains and mains == declared  # a study without a STUDY (or a STUDY without a main) is caught here
    for s in studies():
        source = (EXPERIMENTS / f"{s.name}.py").read_text()
        assert "study_args(" in source, f"{s.name} does not parse the shared argument block"
        assert 'if __name__ == "__main__":\n    raise SystemExit(run_study(main))' in source, \
            f"{s.name}: `python -m experiments.{s.name}` does not map bad input and interrupts (run_study)"


def test_list_and_unknown(capsys):
    assert main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(s.name in out for s in studies())
    assert next(line for line in out.splitlines() if line.startswith("hw_validate")).split()[1] == "yes"
    assert main(["experiment", "no_such_study"]) == 2
    assert "unknown study" in capsys.readouterr().err


def test_a_study_refuses_bad_input_with_one_line_and_exit_2(capsys):
    assert main(["experiment", "adapt_frontier", "--quick", "--policies", "adaptive[bogus=1]"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown option 'bogus'" in err[0]  # was exit 1 (a study's SystemExit message)
    for study, flag, bad in (("scale_eval", "--services", "-4"), ("arrivals_default", "--seeds", "-1")):
        code = main(["experiment", study, flag, bad])  # argparse's refusal of the study's own flag: a code
        assert code == 2, (study, bad)  # was 0: scale_eval ran nothing, arrivals_default ran failing points
        assert bad in capsys.readouterr().err
    for flag in ("--bp-nodes", "--bound-clock"):  # a study's own argparse refusal: one line (was its usage first)
        code = main(["experiment", "scale_eval", flag, "moon"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "moon" in err[0], err


def test_a_policy_knobs_range_and_bools_are_checked_before_any_point_runs(capsys):
    # were exit 0 with every point failing (the range checks ran inside the points), and reuse=2 silently False
    for spec, word in (("adaptive[change_budget=-1]", "change_budget"), ("adaptive[scale_out_above=-5]",
                       "scale_out_above"), ("adaptive[budget_rent=nan]", "budget_rent"), ("adaptive[reuse=2]", "bool")):
        for study in ("adapt_frontier", "adapt_scale"):
            assert main(["experiment", study, "--quick", "--policies", spec]) == 2, (study, spec)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and word in err[0], (study, err)


def test_shared_flags_reach_the_study():
    from stsched.commands.experiment import study_argv

    args = build_parser().parse_args(["experiment", "--quick", "--runner", "ray", "sim_speed", "--jobs", "2",
                                      "--address", "auto", "--time-limit", "5"])
    assert study_argv(args) == ["--quick", "--runner", "ray", "--jobs", "2", "--address", "auto", "--time-limit", "5"]
    args = build_parser().parse_args(["experiment", "sim_speed", "--", "--fresh"])
    assert study_argv(args) == ["--fresh"]


def test_a_study_runs_into_out_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path / "unused"))
    argv = ["experiment", "exact_scaling", "--out", str(tmp_path), "--jobs", "2", "--points", "4x1,4x2",
            "--engines", "highs", "--formulations", "slots"]
    assert main(argv) == 0
    with open(tmp_path / "exact_scaling" / "rows.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["services"], r["gpus"]) for r in rows] == [("4", "1"), ("4", "2")]
    assert all(r["status"] for r in rows) and (tmp_path / "exact_scaling" / "solve_time_a100-mps.png").exists()
    assert main(argv[:4] + ["--plot-only"]) == 0
    assert "solve_time_a100-mps.png" in capsys.readouterr().out
