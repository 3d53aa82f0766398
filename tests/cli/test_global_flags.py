"""The global flags (`-q/--quiet`, `-v/--verbose`, `--version`) work after the command name as well as before it
(`stsched solve I.json -q` was "unrecognized arguments: -q", exit 2)."""

from __future__ import annotations

import pytest

from stsched.cli import build_parser, command_module, main
from stsched.io import save_instance
from tests.conftest import make_mps_instance


def _parse(argv: list[str]):
    return build_parser(command_module(argv)).parse_args(argv)


@pytest.mark.parametrize("argv, quiet, verbose", [
    (["solve", "I", "-q"], True, 0),
    (["-q", "solve", "I"], True, 0),
    (["solve", "I", "--quiet"], True, 0),
    (["solve", "I"], False, 0),
    (["-v", "solve", "I", "-vv"], False, 3),  # counted before and after
    (["scenario", "-q", "random", "--services", "2", "--gpus", "2", "--seed", "1"], True, 0),
    (["scenario", "random", "--services", "2", "--gpus", "2", "--seed", "1", "-v"], False, 1),
    (["demo", "--quiet"], True, 0),  # demo's own --quiet stays
])
def test_flags_parse_before_and_after_the_command(argv, quiet, verbose):
    a = _parse(argv)
    assert bool(getattr(a, "quiet", False)) is quiet
    assert a.verbose + getattr(a, "verbose_after", 0) == verbose


def test_quiet_after_the_command_runs(tmp_path, capsys):
    save_instance(make_mps_instance(), tmp_path / "inst.json")
    assert main(["solve", str(tmp_path / "inst.json"), "--solver", "heuristic", "-q"]) == 0
    assert "valid True" in capsys.readouterr().out
    assert main(["check", "--version"]) == 0
    assert "stsched" in capsys.readouterr().out
