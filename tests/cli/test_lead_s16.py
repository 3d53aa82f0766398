"""Session 16: the lead's fixes of session 15's documented leftovers (each test failed before its fix)."""

from __future__ import annotations

import json

import pytest

from stsched.errors import InputError
from stsched.plan import MAX_DUTY_MS, Partition
from tests.conftest import run_cli


@pytest.mark.parametrize("command", ["check", "show", "simulate"])
def test_a_duty_cycle_beyond_a_day_is_bad_input(files, capsys, tmp_path, command):
    """A hand-edited plan with `duty_ms` 1e300 was read; `check` and `show --text` then printed a latency of 300
    digits (the plan judged invalid, exit 1).  A duty cycle beyond a day serves nothing any SLO allows: one line
    naming the key, exit 2."""
    plan = json.loads(open(files["plan"]).read())
    plan["gpus"][0]["partitions"][0]["duty_ms"] = 1e300
    path = tmp_path / "p.json"
    path.write_text(json.dumps(plan))
    code, text = run_cli(capsys, command, files["inst"], str(path))
    assert code == 2 and "gpus[0].partitions[0].duty_ms" in text and "1e+300" in text, text


def test_the_python_api_keeps_the_same_limit():
    Partition(20.0, (), duty_ms=MAX_DUTY_MS)
    with pytest.raises(InputError, match="at most a day"):
        Partition(20.0, (), duty_ms=MAX_DUTY_MS * 2)
