"""Hostile input and faults, session 14: each test is one bug found by playing a hostile user of the command line,
the Python API and the studies; the docstring says what happened before the fix.  In-process through
`stsched.cli.main` on small hand-made instances."""

from __future__ import annotations

import pytest

import stsched as st
from stsched.errors import InputError
from tests.conftest import run_cli, small_inst_and_plan


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    return small_inst_and_plan(tmp_path_factory.mktemp("hostile14"))


_run = run_cli


@pytest.mark.parametrize("solver", ["heuristic", "cpsat", "gslice"])
def test_an_engine_for_a_solver_without_engines_is_refused(files, capsys, tmp_path, solver):
    """`solve --solver heuristic --engine highs` (and cpsat, brute, every baseline) solved and exit 0: the engine
    was silently ignored.  Now one line naming the solver and the solvers that take an engine, exit 2, no work."""
    out = tmp_path / "p.json"
    code, text = _run(capsys, "solve", files["inst"], "--solver", solver, "--engine", "highs", "--out", str(out))
    assert code == 2 and f"solver {solver!r} takes no --engine" in text and "cg, milp" in text, text
    assert not out.exists()


def test_the_api_refuses_an_engine_a_solver_does_not_have(files):
    inst = st.load_instance(files["inst"])
    with pytest.raises(InputError, match="solver 'heuristic' takes no --engine"):
        st.solve(inst, "heuristic", engine="highs")
    with pytest.raises(InputError, match=r"solver 'cg': engine 'gurobi' \(its engines: highs, cbc\)"):
        st.solve(inst, "cg", engine="gurobi", time_limit=5)
    assert st.solve(inst, "milp", engine="highs", time_limit=10).valid
