"""The field rules of the core data, session 18 review mends: every range check of an `Instance`'s or a `Plan`'s
parts is a `FieldError` (a solver that builds a bad part is named, exit 1, not reported as bad input), numpy numbers
are stored as Python numbers, a plan is judged as it is returned, and a profile entry refused is named with its
model and file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import stsched as st
from stsched import registry
from stsched.errors import FieldError, InputError, SolverFailed
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Margin, Service
from stsched.registry import SolveResult, Status
from tests.conftest import make_mps_instance, run_cli

INST = make_mps_instance()


@pytest.fixture
def clean_registry(monkeypatch):
    registry.available_solvers()
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))


BUILT_BADLY = [  # what a plugin's solve builds, and the field named
    ("duty_ms 0", lambda: Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 1.0),), duty_ms=0.0),)),)),
     "partition duty_ms"),
    ("latency_factor 0.5", lambda: Margin(latency_factor=0.5), "margin: latency_factor"),
    ("service rate -1", lambda: Service("s", "m", -1.0, 10.0), "service 's': rate"),
]


@pytest.mark.parametrize("build, words", [c[1:] for c in BUILT_BADLY], ids=[c[0] for c in BUILT_BADLY])
def test_a_part_a_solver_builds_out_of_range_is_the_solvers_fault(clean_registry, capsys, tmp_path, build, words):
    """`Partition(50.0, (), duty_ms=0.0)`, `Margin(latency_factor=0.5)` or `Service('s', 'm', -1.0, 10.0)` built
    inside a plugin's solve was a plain InputError (the range checks were not `field_*` checks): `guarded` passed it
    through as the user's bad input, exit 2."""
    def solve(self, instance, options):
        build()
        return SolveResult("x", Status.UNKNOWN)

    registry.register("s18-range", "heuristic")(type("Range", (), {"solve": solve}))
    with pytest.raises(FieldError, match=words):
        build()
    with pytest.raises(SolverFailed, match=rf"solver 's18-range' failed: FieldError: {words}"):
        st.solve(INST, "s18-range", time_limit=5, attainment=0)
    st.save(INST, tmp_path / "i.json")
    code, text = run_cli(capsys, "solve", str(tmp_path / "i.json"), "--solver", "s18-range", "--attainment", "0")
    assert code == 1 and "solver 's18-range' failed" in text and words in text, text


def test_numpy_numbers_are_stored_as_python_numbers_and_saved(tmp_path):
    """`Margin(latency_factor=np.float32(1.1)).latency_factor` stayed a numpy.float32 (`st.save(instance)` was a
    TypeError traceback: not JSON serialisable); `Service`'s own type test refused `np.int64(5)` as a rate, saying
    it must be a finite number >= 0."""
    margin = Margin(latency_factor=np.float32(1.1), slo_factor=np.float64(0.9), late_share=np.float32(0.05))
    assert all(type(getattr(margin, f)) is float for f in ("latency_factor", "slo_factor", "late_share"))
    s0 = dataclasses.replace(INST.services[0], rate=np.int64(5), slo_ms=np.float32(40.0))
    assert type(s0.rate) is int and s0.rate == 5 and type(s0.slo_ms) is float
    inst = dataclasses.replace(INST, margin=margin, services=(s0,) + INST.services[1:])
    st.save(inst, tmp_path / "i.json")
    assert st.load_instance(tmp_path / "i.json") == inst


def test_the_plan_returned_is_the_plan_judged(clean_registry, tmp_path):
    """A min-gpus plan at scale 0 was judged at scale 1 (invalid) while `Judged.plan` kept scale 0: `st.check` of
    the plan returned called it valid, and the plan written could not be read back (a plan file needs scale > 0)."""
    @registry.register("s18-scale0", "heuristic")
    class Zero:
        def solve(self, instance, options):
            return SolveResult("s18-scale0", Status.FEASIBLE, plan=Plan((), scale=0.0))

    r = st.solve(INST, "s18-scale0", time_limit=5, attainment=0)
    assert r.plan.scale == 1.0 and r.valid is False
    assert st.check(INST, r.plan).valid is r.valid
    st.save(r.plan, tmp_path / "p.json")
    assert st.load_plan(tmp_path / "p.json") == r.plan


def test_a_profile_entry_refused_names_its_model_and_file():
    """A profile without latency (`has_latency: false`, NaN latency_ms) read through the loader into an instance
    said "profile entry at batch 2, size 100: latency_ms: expected a finite number, got nan": no model, no file
    (the latency table's own check, which named the model, could no longer be reached)."""
    with pytest.raises(InputError) as e:
        st.scenario("profile", dataset="glet-2080ti", services=2)
    text = str(e.value)
    assert "glet-2080ti/solo.csv: latency table of '" in text and "latency_ms: expected a finite number" in text, text
    assert "\n" not in text


@pytest.mark.parametrize("value", [0, 1, 7, 2.5, 0.0, -1, -0.5, True, np.int64(3), np.float64(2.0), float("nan"),
                                   float("inf"), -float("inf"), 10**400, 86_400_000.0, 86_400_000.5, "3"])
def test_the_fast_path_is_taken_only_for_what_the_field_checks_return_unchanged(value):
    """`plain_in_range` (the fast path of `Tenant`, `Partition`, `Service`) passes a value only where `field_real`
    / `field_int` would return it as it is, so skipping them changes nothing."""
    from stsched.validate import field_int, field_real, plain_in_range

    checks = [((int, float), dict(minimum=0, strict=True, maximum=86_400_000.0), field_real),
              ((float,), dict(minimum=0.0), field_real), ((int,), dict(minimum=1), field_int)]
    for kinds, bounds, check in checks:
        if plain_in_range(value, kinds, **bounds):
            assert check(value, "x", **bounds) is value
    if plain_in_range(value, (int, float), minimum=0, strict=True):  # what a Partition then stores
        assert Partition(value, ()).size is value
