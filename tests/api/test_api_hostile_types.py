"""More `st.*` calls with arguments of the wrong type: each one InputError naming the argument, before any work
(each was a TypeError, ValueError or AttributeError from inside, or, for `allow_invalid="no"`, silently true)."""

from __future__ import annotations

import pytest

import stsched as st
from stsched.errors import InputError
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Mechanism, MechanismKind
from stsched.registry import SolveOptions
from tests.conftest import make_mps_instance

INST = make_mps_instance()
PLAN = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),))
TRACE = "azure-functions-2019"

CALLS = [
    ("solve time_limit text", lambda: st.solve(INST, time_limit="abc"), "time limit"),
    ("solve time_limit beyond a year", lambda: st.solve(INST, time_limit=1e12), "time limit"),
    ("solve engine int", lambda: st.solve(INST, "milp", engine=5), "engine"),
    ("solve attainment text", lambda: st.solve(INST, attainment="x"), "attainment"),
    ("solve headroom text", lambda: st.solve(INST, headroom="x"), "headroom"),
    ("simulate duration text", lambda: st.simulate(INST, PLAN, duration="abc"), "duration"),
    ("simulate noise_cv text", lambda: st.simulate(INST, PLAN, duration=1, noise_cv="x"), "noise_cv"),
    ("simulate arrivals int", lambda: st.simulate(INST, PLAN, 3, duration=1), "arrivals"),
    ("simulate allow_invalid text", lambda: st.simulate(INST, PLAN, duration=1, allow_invalid="no"), "allow_invalid"),
    ("bound time_limit text", lambda: st.bound(INST, time_limit="abc"), "time limit"),
    ("bound layout-lp adapt", lambda: st.bound(INST, "adapt", method="layout-lp"), "adapt"),
    ("adapt epoch_s text", lambda: st.adapt(INST, trace=TRACE, epoch_s="5"), "epoch_s"),
    ("adapt policy int", lambda: st.adapt(INST, trace=TRACE, policy=3), "policy"),
    ("adapt simulate text", lambda: st.adapt(INST, trace=TRACE, simulate="no"), "simulate"),
    ("save path int", lambda: st.save(INST, 3), "path"),
    ("load_instance fd", lambda: st.load_instance(0), "path of a JSON file"),  # 0 read standard input
    ("load_plan None", lambda: st.load_plan(None), "path of a JSON file"),
    ("scenario name int", lambda: st.scenario(3), "name"),
    ("scenario sizes text", lambda: st.scenario("gpulet-m2", sizes="50"), "sizes"),
    ("scenario max_tenants 0", lambda: st.scenario("gpulet-m2", max_tenants=0), "max_tenants"),
    ("mechanism max_partitions text", lambda: Mechanism(MechanismKind.MPS, 100.0, (50.0, 100.0), "2"),
     "max_partitions"),
    ("mechanism max_tenants 0", lambda: Mechanism(MechanismKind.MPS, 100.0, (50.0, 100.0), None, 0), "max_tenants"),
    ("mechanism capacity text", lambda: Mechanism(MechanismKind.MPS, "100", (50.0,)), "capacity"),
    ("mechanism size text", lambda: Mechanism(MechanismKind.MPS, 100.0, ("50",)), "sizes"),
]


@pytest.mark.parametrize("call, words", [c[1:] for c in CALLS], ids=[c[0] for c in CALLS])
def test_a_wrong_type_is_one_input_error(call, words):
    with pytest.raises(InputError) as e:
        call()
    assert words in str(e.value) and "\n" not in str(e.value)


def test_solve_options_store_numbers():
    o = SolveOptions(objective="max-scale", time_limit_s="5", seed=2.0, threads="3")
    assert (o.time_limit_s, o.seed, o.threads, o.objective.value) == (5.0, 2, 3, "max-scale")
    assert isinstance(o.time_limit_s, float) and isinstance(o.seed, int)
