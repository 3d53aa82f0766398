"""Hostile input and faults, session 12: each test is one bug found by playing a hostile user of the command line,
the Python API and the studies; the docstring says what happened before the fix.  In-process through
`stsched.cli.main` on small hand-made instances (a subprocess only for signals)."""

from __future__ import annotations

from pathlib import Path

import pytest

import stsched as st
from stsched.cli import main
from stsched.errors import InputError
from stsched.io import save_instance, save_plan
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from tests.conftest import make_mps_instance, run_cli


_run = run_cli


@pytest.mark.parametrize("extra", [[], ["--shards", "1"]])
def test_a_duration_too_short_for_one_request_is_refused(files, capsys, tmp_path, extra):
    """`simulate --duration 1e-300` reported 'SLO attainment 100.0000% of 0 requests', exit 0."""
    out = tmp_path / "sum.json"
    code, text = _run(capsys, "simulate", files["inst"], files["plan"], "--duration", "1e-300", "--out", str(out),
                      *extra)
    assert code == 2 and "too short to hold one request" in text and "at least" in text, text
    assert not out.exists()
    code, text = _run(capsys, "simulate", files["inst"], files["plan"], "--duration", "0.05", *extra)
    assert code == 0 and "of 0 requests" not in text, text


def test_the_api_refuses_a_duration_too_short_for_one_request(files):
    inst, plan = st.load_instance(files["inst"]), st.load_plan(files["plan"])
    with pytest.raises(InputError, match="too short to hold one request"):
        st.simulate(inst, plan, duration=1e-9)


@pytest.mark.parametrize("content, words", [
    (b"", "empty file"),
    (b"\xff\xfe\x00", "cannot read as CSV"),
    (b"model,rate,slo_ms\nm0,10,50,99\n", "data row 1: expected 3 columns, found 4"),
    (b"model,rate,slo_ms,model\nm0,10,50,m1\n", "named twice"),
    (b"model,rate,slo_ms,name\nm0,10,50,\xe2\x80\xaeevil\n", "holds control characters"),
    (b"model,rate,slo_ms\n", "no services"),
])
def test_scenario_services_refuses_odd_csv_files_in_one_line(tmp_path, capsys, content, words):
    """An empty or binary services CSV was a pandas traceback (EmptyDataError, UnicodeDecodeError), exit 1; a row
    with one field too many was read shifted (model '10': 'have no solo profile'); a name with a bidirectional
    override was written into an instance that every other command then refused."""
    (tmp_path / "s.csv").write_bytes(content)
    out = tmp_path / "i.json"
    code, text = _run(capsys, "scenario", "services", str(tmp_path / "s.csv"), "--dataset", "h100-sm", "--out",
                      str(out))
    assert code == 2 and words in text, text
    assert not out.exists()


def test_scenario_services_refuses_to_size_an_astronomical_rate(tmp_path, capsys):
    """rate 1e308 req/s wrote an instance of 1.27e304 GPUs (a 306-digit number), which rounding made too few."""
    (tmp_path / "s.csv").write_text("model,rate,slo_ms\nresnet50,1e308,50\n")
    code, text = _run(capsys, "scenario", "services", str(tmp_path / "s.csv"), "--dataset", "h100-sm", "--out",
                      str(tmp_path / "i.json"))
    assert code == 2 and "needs 1.15e+304 GPUs" in text and "--gpus" in text, text
    code, text = _run(capsys, "scenario", "services", str(tmp_path / "s.csv"), "--dataset", "h100-sm", "--gpus", "2",
                      "--out", str(tmp_path / "i.json"))
    assert code == 0, text
    code, text = _run(capsys, "solve", str(tmp_path / "i.json"), "--time-limit", "5")
    assert code == 1 and "cannot be served: resnet50" in text, text


@pytest.mark.parametrize("flag, value, policy", [("--compact-rent", "5", "static-peak"),
                                                 ("--adapt-solver", "heuristic", "full-repartition"),
                                                 ("--compact-rent", "none", "periodic")])
def test_adapt_refuses_an_adaptive_option_given_to_another_policy(files, capsys, flag, value, policy):
    """`adapt --policy static-peak --compact-rent 5` (or --adapt-solver with full-repartition) ran, exit 0, the
    option ignored: both belong to the adaptive policy only, as --period to periodic."""
    code, text = _run(capsys, "adapt", files["inst"], "--trace", "azure-functions-2019", "--policy", policy, flag,
                      value, "--plan-only", "--hours", "0.1")
    assert code == 2 and f"{flag} is an option of --policy adaptive, not of {policy}" in text, text


def test_an_interrupt_while_the_parser_imports_its_modules_is_one_line(capsys, monkeypatch):
    """SIGINT in the first seconds of `stsched simulate` (its parser imports numba; 3 s on the loaded machine) was a
    KeyboardInterrupt traceback: the handlers of run_parsed were not installed yet."""
    import stsched.cli as cli

    def slow(_module):
        raise KeyboardInterrupt()

    monkeypatch.setattr(cli, "build_parser", slow)
    assert main(["simulate", "i.json", "p.json"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "stsched: interrupted", err


def test_json_with_a_key_twice_or_nested_too_deeply_is_one_line(files, tmp_path, capsys):
    """An instance with "gpus" twice was read with the last value, without a word; '[' x 100,000 was a
    RecursionError traceback, exit 1."""
    text = Path(files["inst"]).read_text()
    twice = tmp_path / "twice.json"
    twice.write_text(text.rstrip().rstrip("}") + ', "gpus": 7}')
    code, out = _run(capsys, "solve", str(twice))
    assert code == 2 and "key 'gpus' appears twice" in out, out
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, out = _run(capsys, "check", files["inst"], str(deep))
    assert code == 2 and "nested too deeply" in out, out
    with pytest.raises(InputError, match="appears twice"):
        st.load_instance(twice)


def test_profile_refuses_a_corun_window_beyond_a_day(tmp_path, capsys):
    """--corun-window 1e9 (a typo for 1.0) started a co-run of 31 years; capped at a year, now at a day of real
    time (validate.MAX_REAL_RUN_S, session 13)."""
    code, text = _run(capsys, "profile", "--backend", "cpu", "--models", "resnet-tiny", "--batches", "1", "--sizes",
                      "1", "--corun", "1,1", "--corun-window", "1e9", "--out", str(tmp_path / "p"))
    assert code == 2 and "--corun-window" in text and "<= 86400" in text, text
    assert not (tmp_path / "p").exists()
