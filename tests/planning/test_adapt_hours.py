"""Hours beyond the trace are refused (they were silently cut to its 8 h, and the output said 8.00 h): one line
naming the trace's length, exit 2, before any work; at every depth (the CLI, `run_adapt`)."""

from __future__ import annotations

import pytest

from stsched.cli import main
from stsched.errors import InputError
from stsched.io import save_instance
from stsched.planning.adapt.controller import AdaptOptions, check_hours, run_adapt
from stsched.scenarios import gpulet_mix


@pytest.mark.parametrize("hours", ["1e9", "8.5", "nan"])
def test_cli_refuses_hours_beyond_the_trace(tmp_path, capsys, hours):
    inst = tmp_path / "inst.json"
    save_instance(gpulet_mix("m2", 2), inst)
    code = main(["adapt", str(inst), "--trace", "azure-functions-2019", "--plan-only", "--hours", hours,
                 "--out", str(tmp_path / "out.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "--hours" in err
    if hours != "nan":
        assert "8 h" in err and "480 minutes" in err
    assert not (tmp_path / "out.json").exists()


def test_run_adapt_refuses_them_and_keeps_the_whole_trace():
    with pytest.raises(InputError, match="spans 8 h"):
        run_adapt(gpulet_mix("m2", 2), AdaptOptions(simulate=False, hours=8.01))
    assert check_hours(8.0) == 8.0 and check_hours(None) is None and check_hours(0.5) == 0.5


@pytest.mark.parametrize("hours", ["1e-9", "0.01"])
def test_cli_refuses_hours_shorter_than_one_minute(tmp_path, capsys, hours):
    """`--hours 1e-9` ran no decision and reported '0.00 h ... 0 decisions', exit 0 (hostile tester, session 12)."""
    inst = tmp_path / "inst.json"
    save_instance(gpulet_mix("m2", 2), inst)
    code = main(["adapt", str(inst), "--trace", "azure-functions-2019", "--plan-only", "--adapt-solver", "none",
                 "--hours", hours, "--out", str(tmp_path / "out.json")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "--hours" in err and "shorter than one minute" in err
    assert not (tmp_path / "out.json").exists()


def test_run_adapt_refuses_less_than_one_minute_and_takes_exactly_one():
    with pytest.raises(InputError, match="shorter than one minute"):
        run_adapt(gpulet_mix("m2", 2), AdaptOptions(simulate=False, hours=1e-9))
    assert check_hours(1 / 60) == 1 / 60
