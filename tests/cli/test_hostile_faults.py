"""Hostile input and faults, second pass (session 10): each test is one bug found by playing a hostile user of the
command line and the Python API; the docstring says what happened before the fix.  In-process through
`stsched.cli.main`, on small hand-made instances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stsched.cli import main
from stsched.io import instance_to_dict, save_instance, save_plan
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from tests.conftest import make_mps_instance, run_cli


_run = run_cli


def test_adapt_refuses_a_function_offset_beyond_the_trace(files, capsys):
    """`stsched adapt --functions-offset 99999999` was a MemoryError traceback (a rate array of 10^8 x 480)."""
    code, text = _run(capsys, "adapt", files["inst"], "--trace", "azure-functions-2019", "--functions-offset",
                      "99999999", "--plan-only")
    assert code == 2 and "--functions-offset" in text and "500 functions" in text


@pytest.mark.parametrize("argv", [["random", "--services", "3", "--gpus", "2", "--load", "1e308"],
                                  ["profile", "h200-sm", "--services", "2", "--load", "1e308"]])
def test_a_load_whose_rates_overflow_is_bad_input(files, capsys, argv):
    """`stsched scenario random --load 1e308` wrote rates of Infinity into the instance (two numpy overflow warnings,
    exit 0), a file stsched itself then refused; a Service took an infinite rate from the Python API too."""
    out = Path(files["dir"]) / "overflow.json"
    code, text = _run(capsys, "scenario", *argv, "--out", str(out))
    assert code == 2 and "load 1e+308" in text and "overflow" in text and not out.exists()
    from stsched.errors import InputError
    from stsched.problem import Service

    with pytest.raises(InputError, match="finite"):
        Service("s", "m", float("inf"), 10.0)


def test_adapt_out_is_strict_json(files, capsys):
    """`stsched adapt --plan-only --out F` wrote `NaN` tokens (no requests simulated) that strict JSON readers
    refuse, while `--json` printed null."""
    out = Path(files["dir"]) / "adapt.json"
    code, _ = _run(capsys, "adapt", files["inst"], "--trace", "azure-functions-2019", "--plan-only", "--hours",
                   "0.1", "--out", str(out))
    assert code == 0
    d = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    assert d["slo_attainment"] is None


def _instance_variant(files, name: str, change) -> str:
    d = json.loads(Path(files["inst"]).read_text())
    change(d)
    p = Path(files["dir"]) / f"{name}.json"
    p.write_text(json.dumps(d))
    return str(p)


def _conflicting_row(d) -> None:
    t = d["tables"][0]
    row = list(t["rows"][0])
    row[t["columns"].index("latency_ms")] *= 50
    t["rows"].append(row)


@pytest.mark.parametrize("change, words", [
    (_conflicting_row, "repeats batch"),
    (lambda d: d["tables"].append(json.loads(json.dumps(d["tables"][0]))), "already has a table"),
    (lambda d: d["device"].update(memory_cap=2), "memory_cap: must be <= 1"),
])
def test_ambiguous_tables_and_a_memory_share_above_one_are_bad_input(files, capsys, change, words):
    """A table row repeated at the same (batch, size, procs) with another latency was accepted: `solve` called its
    plan valid with the first row while `check` judged the same plan with the last (exit 0 against exit 1); a second
    table for a model, and device.memory_cap 2 (twice the GPU's memory), were accepted silently."""
    path = _instance_variant(files, "ambiguous", change)
    for argv in (["check", path, files["plan"]], ["solve", path]):
        code, text = _run(capsys, *argv)
        assert code == 2 and words in text


def test_solve_checks_bound_current_and_attainment_arrivals_before_the_work(files, capsys, monkeypatch):
    """`solve --bound nope` (or `--bound heuristic`, or `--bound cg` with adapt) failed only after the solver ran;
    `--current` without `--objective adapt` and `--attainment-arrivals zzz` without a loop were ignored, exit 0."""
    import stsched.planning.solve as planning

    monkeypatch.setattr(planning, "plan", lambda *a, **k: pytest.fail("the solver ran before the check"))
    for argv, words in ((["--bound", "nope"], "--bound nope: 'nope' provides no bound"),
                        (["--bound", "heuristic"], "provides no bound (bound providers: cg"),
                        (["--objective", "adapt", "--current", files["plan"], "--bound", "cg"], "objective 'adapt'"),
                        (["--current", files["plan"]], "--objective adapt only"),
                        (["--attainment-arrivals", "zzz"], "--attainment-arrivals: arrivals: unknown kind")):
        code, text = _run(capsys, "solve", files["inst"], *argv)
        assert code == 2 and words in text, text


def test_a_solver_param_is_not_given_to_the_bound_provider(files, capsys):
    """`solve --solver milp --param formulation=slots --bound cg` solved, then failed with exit 2: cg was handed
    milp's option (`unknown option 'formulation'`)."""
    code, text = _run(capsys, "solve", files["inst"], "--solver", "milp", "--param", "formulation=slots", "--bound",
                      "cg", "--time-limit", "20", "--json")
    assert code == 0, text
    line = next(x for x in text.splitlines() if x.startswith("{"))
    d = json.loads(line)
    assert d["bound_method"].startswith("cg") or "cg bound" in d["message"]


def test_two_outputs_onto_one_file_are_refused(files, capsys):
    """`simulate --out r.csv --records r.csv` wrote both into one file (the records replaced the summary), and
    `fit --probe F --out F` would replace its own input: the check looked only at files that existed already."""
    both = str(Path(files["dir"]) / "both.csv")
    code, text = _run(capsys, "simulate", files["inst"], files["plan"], "--out", both, "--records", both)
    assert code == 2 and "is also another output" in text and not Path(both).exists()
    code, text = _run(capsys, "simulate", files["inst"], files["plan"], "--duration", "1", "--out", "/dev/null",
                      "--records", "/dev/null")
    assert code == 0  # a character device takes both
    code, text = _run(capsys, "fit", "--dataset", "v100", "--probe", files["plan"], "--out", files["plan"])
    assert code == 2 and "is also an input" in text


@pytest.mark.parametrize("argv, words", [
    (["--address", "auto"], "--address: options of the streaming simulator; add --shards K"),
    (["--runner", "ray", "--jobs", "2"], "--runner, --jobs: options of the streaming simulator"),
    (["--window", "5"], "--window: options of the streaming simulator"),
    (["--shards", "2", "--interference-noise", "model.json"], "streaming simulator (--shards) does not model it"),
])
def test_simulate_refuses_the_options_of_the_other_simulator(files, capsys, argv, words):
    """Without --shards, --runner/--jobs/--address/--window were ignored (exit 0); with --shards,
    --interference-noise was ignored: the summary did not use what the user asked for."""
    code, text = _run(capsys, "simulate", files["inst"], files["plan"], "--duration", "1", *argv)
    assert code == 2 and words in text


@pytest.mark.parametrize("argv, words", [(["--models", "resnet-tiny", "resnet-tiny", "--batches", "1"],
                                          "--models lists resnet-tiny more than once"),
                                         (["--models", "resnet-tiny", "--batches", "1", "1"],
                                          "--batches lists 1 more than once")])
def test_profile_refuses_a_model_or_batch_given_twice_before_measuring(files, capsys, argv, words):
    """`stsched profile --models resnet-tiny resnet-tiny` measured both, then failed with exit 2 on solo.csv's
    repeated key ('data row 2'), after the work and naming no option."""
    out = Path(files["dir"]) / "prof"
    code, text = _run(capsys, "profile", "--backend", "cpu", *argv, "--sizes", "1", "--out", str(out))
    assert code == 2 and words in text and not (out / "solo.csv").exists()


def test_execute_refuses_a_model_map_for_no_model_of_the_instance(files, capsys, monkeypatch):
    """`stsched execute ... --model-map resnet-tiny=nope` on an instance without resnet-tiny ran the plan and
    exited 0: the typo (and the unknown zoo name) were ignored."""
    import stsched.executor as executor

    monkeypatch.setattr(executor, "execute", lambda *a, **k: pytest.fail("executed before the check"))
    models = sorted({s.model for s in make_mps_instance().services})
    for item, words in ((f"nope={models[0]}", "the instance has no model 'nope'"),
                        (f"{models[0]}=nope", "unknown model 'nope'")):
        code, text = _run(capsys, "execute", files["inst"], files["plan"], "--backend", "cpu", "--duration", "1",
                          "--model-map", item)
        assert code == 2 and words in text, text


def test_an_attainment_scope_without_a_loop_is_refused(files, capsys):
    """`solve --attainment-scope service` on a deterministic instance (no attainment loop runs) was ignored, exit 0:
    the plan was not what the flag asked for."""
    code, text = _run(capsys, "solve", files["inst"], "--attainment-scope", "service")
    assert code == 2 and "no attainment loop runs here" in text and "deterministic" in text


@pytest.mark.parametrize("flag, value", [("--period", "3"), ("--save-gpus", "2"), ("--save-for", "2")])
def test_adapt_refuses_another_policys_option(files, capsys, flag, value):
    """`stsched adapt --period 3` with the default policy (adaptive) ignored it and exited 0."""
    code, text = _run(capsys, "adapt", files["inst"], "--trace", "azure-functions-2019", "--hours", "0.1",
                      "--plan-only", flag, value)
    assert code == 2 and flag in text and "adaptive" in text


def test_a_budget_split_without_a_target_attainment_is_refused(tmp_path, capsys):
    """`stsched scenario random --budget-split each` (and the study's) without --target-attainment was ignored."""
    code, text = _run(capsys, "scenario", "random", "--services", "4", "--gpus", "2", "--budget-split", "each",
                      "--out", str(tmp_path / "x.json"))
    assert code == 2 and "--target-attainment" in text and not (tmp_path / "x.json").exists()
    from experiments import interference_eval

    with pytest.raises(SystemExit) as e:
        interference_eval.main(["--section", "plans", "--budget-split", "each", "--out", str(tmp_path)])
    assert e.value.code == 2 and "--target-attainment" in capsys.readouterr().err


def test_an_infeasible_solve_names_what_cannot_be_served_once(tmp_path, capsys):
    """`stsched solve` on an instance with a service beyond one GPU printed "cannot be served" twice: the solver's
    message (with the reason) and the bare list of services after it.  `stsched bound` printed a bare "cg" line."""
    inst = make_mps_instance()
    path = tmp_path / "inf.json"
    payload = instance_to_dict(inst)
    payload["services"][0]["rate"] = 1e7
    path.write_text(json.dumps(payload))
    code, text = _run(capsys, "solve", str(path))
    assert code == 1
    assert text.count("cannot be served") == 1 and payload["services"][0]["name"] in text
    code, text = _run(capsys, "bound", str(path), "--time-limit", "5")
    assert code == 1 and "  method: cg" in text


def test_execute_names_the_service_whose_model_it_cannot_run_and_how_to_map_it(files, capsys):
    """`stsched execute` on a plan whose services run models the executor cannot build (m0, m1: a table from
    another machine) said only "unknown model 'm0' (zoo: ...)": neither the service nor --model-map."""
    code, text = _run(capsys, "execute", files["inst"], files["plan"], "--backend", "cpu", "--duration", "0.5")
    assert code == 2 and "service 's0' runs model 'm0'" in text and "--model-map m0=ZOO" in text, text
    assert "unknown model 'm0'" in text


@pytest.mark.parametrize("flag, value", [("--attainment-duration", "30"), ("--attainment-rounds", "3"),
                                         ("--attainment-arrivals", "gamma:2")])
def test_every_option_of_the_attainment_loop_without_a_loop_is_refused(files, capsys, flag, value):
    """Session 20: `solve --attainment-duration 30` (new), `--attainment-rounds 3` and `--attainment-arrivals gamma:2`
    on a deterministic instance ran without a word, exit 0 (only `--attainment-scope` was refused)."""
    code, text = _run(capsys, "solve", files["inst"], flag, value)
    assert code == 2 and f"{flag} " in text and "no attainment loop runs here" in text, text
