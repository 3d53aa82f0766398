"""The exact solvers and the layout LP on astronomical rates (session 12, hostile tester): a rate no GPU count serves
(1e308 req/s) on more than 1,000 GPUs made the layout LP fail numerically before the solver named the service
(`stsched solve --solver milp`: RuntimeError 'LP relaxation failed', exit 1 with a traceback); `st.bound(...,
method="layout-lp")` raised the same RuntimeError."""

from __future__ import annotations

import math

import pytest

import stsched as st
from stsched.registry import Objective
from tests.conftest import make_mps_instance


@pytest.fixture(scope="module")
def huge():
    return make_mps_instance(rates=(1e308, 50.0), gpus=2000)


@pytest.mark.parametrize("solver", ["milp", "cpsat"])
def test_an_exact_solver_names_the_service_no_gpu_count_serves(huge, solver):
    r = st.solve(huge, solver, objective="min-gpus", time_limit=5)
    assert r.result.status.value == "infeasible" and r.result.infeasible_services == ("s0",)


def test_the_layout_lp_through_the_api_answers_for_a_service_it_cannot_serve(huge):
    b = st.bound(huge, "min-gpus", method="layout-lp")
    assert math.isinf(b.value) and b.objective is Objective.MIN_GPUS
