"""Hostile input and faults, session 13: each test is one bug found by playing a hostile user of the command line,
the Python API, plugins and the studies; the docstring says what happened before the fix.  In-process through
`stsched.cli.main` on small hand-made instances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stsched.errors import InputError
from tests.conftest import run_cli


_run = run_cli


@pytest.mark.parametrize("argv, words", [
    (["profile", "--repeats", "10001"], "--repeats: expected a whole number <= 10000"),
    (["profile", "--warmup", "1e9"], "--warmup"),
    (["profile", "--corun-window", "86401"], "--corun-window: expected a number <= 86400"),
    (["execute", "--duration", "1e6"], "--duration: expected a number <= 86400"),
    (["execute", "--drain", "1e300"], "--drain: expected a number <= 86400"),
    (["reconfig-cost", "--repeats", "99999"], "--repeats: expected a whole number <= 10000"),
])
def test_real_time_runs_and_repeats_are_bounded(files, capsys, tmp_path, argv, words):
    """`profile --repeats 1000000000` and `execute --duration 1e6` (11.6 days of real time) were accepted: no
    upper bound.  Now at most 10,000 batches per point and a day of real time, one line, exit 2, nothing run."""
    command, flag, value = argv
    base = {"profile": ["--backend", "cpu", "--models", "resnet-tiny", "--batches", "1", "--sizes", "1",
                        "--out", str(tmp_path / "prof")],
            "execute": [files["inst"], files["plan"], "--backend", "cpu"],
            "reconfig-cost": ["--backend", "cpu", "--layouts", "1", "--models", "resnet-tiny", "--out",
                              str(tmp_path / "rc.json")]}[command]
    code, text = _run(capsys, command, *base, flag, value)
    assert code == 2 and words in text, text
    assert not any(tmp_path.iterdir())


def test_the_same_bounds_hold_in_the_python_api():
    from profiler.measure import TimingOptions
    from profiler.reconfig import SwitchSpec
    from profiler.sweep import SweepSpec
    from stsched.executor.run import ExecOptions
    from stsched.validate import MAX_REAL_RUN_S, MAX_REPEATS

    with pytest.raises(InputError, match="duration"):
        ExecOptions(duration_s=MAX_REAL_RUN_S * 2)
    with pytest.raises(InputError, match="drain"):
        ExecOptions(drain_s=float("nan"))
    with pytest.raises(InputError, match="repeats"):
        TimingOptions(repeats=MAX_REPEATS + 1)
    with pytest.raises(InputError, match="warmup"):
        SwitchSpec(((1.0,),), ("resnet-tiny",), warmup=MAX_REPEATS + 1)
    with pytest.raises(InputError, match="co-run window"):
        SweepSpec(("resnet-tiny",), (1,), (1.0,), corun_window_s=1e9)
    assert ExecOptions(duration_s=MAX_REAL_RUN_S, drain_s=MAX_REAL_RUN_S).duration_s == MAX_REAL_RUN_S
    assert TimingOptions(0, MAX_REPEATS).repeats == MAX_REPEATS


def _one_model_dataset(root: Path, rows: int) -> None:
    """A data set 'tiny' of the first `rows` solo rows of the shipped h100-sm (bert-base at 16 SMs)."""
    from stsched.data.loaders import data_dir

    src = data_dir() / "profiles" / "h100-sm"
    d = root / "profiles" / "tiny"
    d.mkdir(parents=True)
    meta = json.loads((src / "meta.json").read_text())
    meta["name"] = "tiny"
    (d / "meta.json").write_text(json.dumps(meta))
    (d / "solo.csv").write_text("".join((src / "solo.csv").read_text().splitlines(keepends=True)[: rows + 1]))


@pytest.mark.parametrize("rows", [1, 3])
def test_fit_on_a_single_solo_row_warns_that_its_error_is_no_judgement(tmp_path, capsys, monkeypatch, caplog, rows):
    """`stsched fit` on a profile of one solo row printed 'solo roofline-hybrid n=1 MAPE 0.00%' without a word: the
    surface is that row, its in-sample error 0 by construction.  Now a warning names the surfaces on fewer than
    3 rows, the table says 'no judgement' and --json lists the warning; 3 rows fit a prior and print the error."""
    _one_model_dataset(tmp_path / "data", rows)
    monkeypatch.setenv("STSCHED_DATA", str(tmp_path / "data"))
    code, text = _run(capsys, "fit", "--dataset", "tiny", "--out", str(tmp_path / "m.json"))
    assert code == 0, text
    warned = [r.getMessage() for r in caplog.records if "solo surfaces rest on" in r.getMessage()]
    if rows == 1:
        assert "no judgement" in text and "MAPE" not in text, text
        assert warned and "bert-base: 1 row)" in warned[0], warned
    else:
        assert "MAPE" in text and "no judgement" not in text and not warned, text
    caplog.clear()
    code, text = _run(capsys, "fit", "--dataset", "tiny", "--out", str(tmp_path / "m2.json"), "--json")
    assert code == 0 and bool(json.loads(text.splitlines()[0])["warnings"]) == (rows == 1)  # stdout comes first
