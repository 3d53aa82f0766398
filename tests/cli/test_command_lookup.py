"""`stsched COMMAND` builds the parser of the module that registers COMMAND alone (a faster start)."""

from __future__ import annotations

from stsched.cli import build_parser, command_module


def _commands(parser) -> dict:
    return parser._subparsers._group_actions[0].choices


def test_every_command_is_found_in_its_module_and_parses_alone():
    full = _commands(build_parser())
    assert len(full) >= 15
    for name in full:
        module = command_module(["-q", name, "--help"])
        assert module is not None, name
        assert name in _commands(build_parser(module))
    assert command_module(["no-such-command"]) is None and command_module(["-v"]) is None
    assert command_module(["-v", "scenario", "profile", "x"]) == "stsched.commands.scenario"


def test_an_unknown_command_still_gets_the_full_list(capsys):
    from stsched.cli import main

    assert main(["no-such-command"]) == 2
    assert "show" in capsys.readouterr().err
