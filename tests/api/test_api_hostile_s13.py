"""The Python API against a hostile caller, session 13: a plan of another instance given as warm_start or current
was used (current: milp 'optimal' from a MIG plan on an MPS instance) or dropped with a log line (warm_start),
where `stsched solve` refuses it (exit 1); `st.bound(method="layout-lp")` ignored params and a NaN time limit."""

from __future__ import annotations

import pytest

import stsched as st
from stsched.errors import InputError, InvalidPlanError
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from tests.conftest import make_mps_instance

INST = make_mps_instance()
MIG_PLAN = Plan((GpuLayout((Partition(7, (Tenant("s0", 4, 300.0),)),)),))  # a plan of a MIG instance
PLAN = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),))


@pytest.mark.parametrize("kwargs", [{"warm_start": MIG_PLAN}, {"objective": "adapt", "current": MIG_PLAN}])
def test_a_plan_of_another_instance_is_refused_as_the_cli_refuses_it(kwargs):
    what = "warm_start" if "warm_start" in kwargs else "current"
    with pytest.raises(InvalidPlanError, match=rf"{what} \(given\) is not valid for instance 'tiny-mps'.*size 7"):
        st.solve(INST, "heuristic", time_limit=5, **kwargs)
    with pytest.raises(InputError, match="allow_invalid"):
        st.solve(INST, "heuristic", time_limit=5, allow_invalid="yes", **kwargs)


def test_a_valid_current_plan_is_used_and_allow_invalid_lets_a_bad_one_through():
    r = st.solve(INST, "heuristic", objective="adapt", current=PLAN, time_limit=5)
    assert r.valid
    st.solve(INST, "heuristic", warm_start=MIG_PLAN, time_limit=5, allow_invalid=True)


def test_the_layout_lp_bound_refuses_what_it_would_ignore():
    with pytest.raises(InputError, match="takes no params"):
        st.bound(INST, method="layout-lp", params={"zz": 1})
    with pytest.raises(InputError, match="time limit"):
        st.bound(INST, method="layout-lp", time_limit=float("nan"))
    assert st.bound(INST, method="layout-lp").value > 0
