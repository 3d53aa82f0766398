"""Session 17: a hostile operator of long runs (interruption, resume, limits, bad traces).  Each test is one
finding; the docstring says what happened before the fix.  Small hand-made instances and traces (`count_trace`)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _study(*argv: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.parametrize("variant, says", [
    ("nosuch=1", "unknown option 'nosuch'; the options: adapt_nodes, adapt_solver"),
    ("epoch_s=600", "epoch_s is set by the study (--epochs)"),
    ("costs=5", "unknown option 'costs'"),
])
def test_adapt_eval_names_an_unknown_or_the_studys_own_variant_knob(variant, says, tmp_path):
    """`python -m experiments.adapt_eval --variant nosuch=1` printed Python's raw TypeError ("AdaptOptions.__init__()
    got an unexpected keyword argument 'nosuch'"), `--variant epoch_s=600` "got multiple values for keyword
    argument"; the study had its own copy of the knob parser.  Now adapt_eval parses with `parse_policy` (the
    frontier and scale studies' one), which names the unknown knob and lists the valid ones, and refuses the knobs
    the study sets itself naming its flag; exit 2 before any point runs."""
    r = _study("experiments.adapt_eval", "--variant", variant, "--out", str(tmp_path))
    line = r.stderr.strip().splitlines()[-1]
    assert r.returncode == 2 and says in line and "Traceback" not in r.stderr, r.stderr
    assert not any(tmp_path.iterdir())
