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
from tests.conftest import make_mps_instance


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("hostile12")
    save_instance(make_mps_instance(), d / "inst.json")
    save_plan(Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),)),
              d / "plan.json")
    return {"dir": str(d), "inst": str(d / "inst.json"), "plan": str(d / "plan.json")}


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    if code == 2:
        assert len(out.err.strip().splitlines()) == 1, out.err
    return code, text


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
