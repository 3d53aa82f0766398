"""Session 18's limit leaks (docs/RESULTS.md, "Limits and faults", session 18): each test fails on the code before
its fix."""

from __future__ import annotations

import resource

import pytest

from stsched import cli


def _address_space_cap(monkeypatch, cap: int) -> None:
    real = resource.getrlimit
    monkeypatch.setattr(resource, "getrlimit",
                        lambda which: (cap, cap) if which == resource.RLIMIT_AS else real(which))


def test_adapt_under_a_too_small_address_space_limit_is_refused_before_any_import(monkeypatch, capsys):
    """`prlimit --as=650000000 stsched adapt p64.json ...` said "out of memory" after 8.7 s of work, under 300 MB it
    never ended (scipy's OpenBLAS retrying its buffer for ever, in the parser's imports); now one line, exit 1,
    before the parser imports a module."""

    def never(*args, **kwargs):
        raise AssertionError("the parser (its imports) was built before the refusal")

    monkeypatch.setattr(cli, "build_parser", never)
    _address_space_cap(monkeypatch, 400 * 2 ** 20)
    code = cli.main(["adapt", "nosuch.json", "--trace", "azure-functions-2019"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("stsched: out of memory: stsched adapt maps at least 730 MiB") and "400 MiB" in err[0]


def test_adapt_under_a_limit_above_its_floor_goes_on(monkeypatch):
    """The floor refuses only what cannot fit (its smallest runs peaked at 738.5 MiB): at 2 GiB, or unlimited, the
    command is parsed and runs (here its bad input is then named, exit 2)."""
    _address_space_cap(monkeypatch, 2 * 2 ** 30)
    assert cli.main(["adapt", "nosuch.json", "--trace", "azure-functions-2019"]) == 2


@pytest.mark.parametrize("command", ["check", "scenario"])
def test_commands_without_a_floor_are_not_refused(command, monkeypatch):
    _address_space_cap(monkeypatch, 100 * 2 ** 20)
    assert command not in cli.ADDRESS_SPACE_FLOORS
    assert cli.main([command, "--help"]) == 0
