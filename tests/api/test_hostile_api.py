"""The Python API and the solver registry used with hostile input, session 18: objects built by hand in a notebook
(an `Instance` with odd values, a `Plan` of dicts or NaN) and plugins registered badly.  Each case was accepted (the
checker then judged garbage: a NaN latency factor made it call any plan valid) or failed deep inside with a
TypeError / AttributeError; now one `InputError` naming the field, or, for a declaration, a TypeError / ValueError
naming the solver when its module is imported (docs/ARCHITECTURE.md, "Adding a solver")."""

from __future__ import annotations

import dataclasses
import math
import pickle
from dataclasses import dataclass

import numpy as np
import pytest

import stsched as st
from stsched import registry
from stsched.errors import InputError, SolverFailed
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import (Device, Interference, LatencyTable, Margin, Mechanism, MechanismKind, ProfileEntry,
                             Service, ThroughputRule)
from stsched.registry import SolveResult, Status
from tests.conftest import make_mps_instance

INST = make_mps_instance()
NAN, INF = math.nan, math.inf
TENANTS = (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0))
PLAN = Plan((GpuLayout((Partition(50.0, TENANTS, 24.0),)),))


def _inst(**fields):
    return dataclasses.replace(INST, **fields)


def _plan(scale=1.0, size=50.0, tenants=TENANTS, procs=1, start=None):
    return Plan((GpuLayout((Partition(size, tenants, 24.0, procs, start),)),), scale)


def _one_line_input_error(call, words):
    with pytest.raises(InputError) as e:
        call()
    assert words in str(e.value) and "\n" not in str(e.value), str(e.value)


# ------------------------------------------------------------------------------------------- the checker fooled
def test_a_nan_latency_factor_is_refused_not_judged_valid():
    """`Margin(latency_factor=nan)` was accepted and `st.check` called a plan valid under it (every comparison with a
    NaN execution time is false, so no rule fired); inf was accepted too."""
    assert st.check(INST, PLAN).valid
    for bad in (NAN, INF, "1.1"):
        _one_line_input_error(lambda: Margin(latency_factor=bad), "margin: latency_factor")
    _one_line_input_error(lambda: Margin(slo_factor="0.9"), "margin: slo_factor")
    _one_line_input_error(lambda: Margin(late_share="0.1"), "margin: late_share")


@pytest.mark.parametrize("scale", [NAN, -1.0, INF, "1"])
def test_a_plan_scale_that_is_not_a_number_at_least_0_is_refused(scale):
    """`Plan(..., scale=nan)` and `scale=-1` were judged valid by the checker; `st.simulate` of the NaN one was
    numpy's "ValueError: lam < 0 or lam is NaN"."""
    _one_line_input_error(lambda: _plan(scale=scale), "plan: scale")


def test_a_plugins_plan_at_scale_0_is_not_a_min_gpus_plan(monkeypatch):
    """A solver that returned an empty plan at scale 0 for min-gpus was reported valid and optimal with 0 GPUs: the
    checker judges a plan at its scale and scale 0 asks for no coverage.  `run_solver` judges a min-gpus or adapt
    plan at the offered rates."""
    registry.available_solvers()
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))

    @registry.register("s18-zero", "heuristic")
    class Zero:
        def solve(self, instance, options):
            return SolveResult("s18-zero", Status.OPTIMAL, 0.0, 0.0, plan=Plan((), scale=0.0))

    r = st.solve(INST, "s18-zero", time_limit=5, attainment=0)
    assert r.valid is False and r.status is Status.UNKNOWN
    assert any("coverage" in str(v) for v in r.report.violations)


# ------------------------------------------------------------------------------------------ instances by hand
INSTANCE_CASES = [
    ("gpus text", dict(gpus="2"), "gpus"),  # TypeError from a comparison
    ("gpus nan", dict(gpus=NAN), "gpus"),  # solved, 1 GPU
    ("gpus 2.5", dict(gpus=2.5), "gpus"),  # max-scale: "solver 'heuristic' failed: TypeError" (blamed the solver)
    ("gpus True", dict(gpus=True), "gpus"),  # max-scale on 1 GPU
    ("name int", dict(name=5), "instance name"),
    ("name with a newline", dict(name="a\nb"), "control characters"),
    ("services of dicts", dict(services=({"name": "s0"},)), "services[0]"),  # AttributeError
    ("services text", dict(services="s0"), "services"),
    ("tables a dict", dict(tables={"m0": None}), "tables"),
    ("batches text", dict(batches="1248"), "batches"),
    ("batches 1.5", dict(batches=(1.5, 2, 4, 8)), "batches[0]"),
    ("batches nan", dict(batches=(NAN,)), "batches[0]"),
    ("margin a dict", dict(margin={"latency_factor": 1.0}), "margin"),  # AttributeError in the solver
    ("device text", dict(device="a100"), "device"),
    ("mechanism text", dict(mechanism="mps"), "mechanism"),
    ("interference text", dict(interference="none"), "interference"),  # AttributeError
    ("throughput rule unknown", dict(throughput_rule="fast"), "throughput_rule"),
    ("notes int", dict(notes=5), "notes"),
]


@pytest.mark.parametrize("fields, words", [c[1:] for c in INSTANCE_CASES], ids=[c[0] for c in INSTANCE_CASES])
def test_an_instance_built_by_hand_with_a_bad_field_is_one_input_error(fields, words):
    _one_line_input_error(lambda: _inst(**fields), words)


PART_CASES = [
    ("service name int", lambda: Service(5, "m0", 1.0, 10.0), "service name"),
    ("service model empty", lambda: Service("a", "", 1.0, 10.0), "model"),
    ("service name escape", lambda: Service("a\x1b[31m", "m0", 1.0, 10.0), "control characters"),
    ("device memory nan", lambda: Device("d", NAN, 108), "memory_mb"),
    ("device memory negative", lambda: Device("d", -1.0, 108), "memory_mb"),
    ("device memory text", lambda: Device("d", "80", 108), "memory_mb"),
    ("device sms 0", lambda: Device("d", 80_000.0, 0), "sms"),
    ("device sms 1.5", lambda: Device("d", 80_000.0, 1.5), "sms"),
    ("device context nan", lambda: Device("d", 80_000.0, 108, NAN), "context_mb"),
    ("mechanism kind unknown", lambda: Mechanism("zzz", 100.0, (50.0, 100.0)), "kind"),
    ("mechanism placements text", lambda: Mechanism(MechanismKind.MIG, 7.0, (1.0, 7.0), placements=("x",)),
     "placements[0]"),
    ("mechanism memory pairs", lambda: Mechanism(MechanismKind.MPS, 100.0, (100.0,), partition_memory_mb=(5,)),
     "partition_memory_mb[0]"),
    ("entry batch 0", lambda: ProfileEntry(0, 50.0, 1, 5.0), "batch"),
    ("entry batch text", lambda: ProfileEntry("1", 50.0, 1, 5.0), "batch"),
    ("entry size nan", lambda: ProfileEntry(1, NAN, 1, 5.0), "size"),
    ("entry size negative", lambda: ProfileEntry(1, -5.0, 1, 5.0), "size"),
    ("entry procs 0", lambda: ProfileEntry(1, 50.0, 0, 5.0), "procs"),
    ("entry latency text", lambda: ProfileEntry(1, 50.0, 1, "5"), "latency_ms"),  # TypeError in LatencyTable
    ("entry l2 nan", lambda: ProfileEntry(1, 50.0, 1, 5.0, None, NAN, 0.1), "l2_util"),
    ("table of dicts", lambda: LatencyTable("m", ({"batch": 1},)), "entries[0]"),  # AttributeError
    ("table model int", lambda: LatencyTable(5, ()), "model"),
    ("interference coef text", lambda: Interference("none", "abc"), "coef"),
    ("tenant batch text", lambda: Tenant("s0", "4", 1.0), "batch"),  # TypeError
    ("tenant batch 2.5", lambda: Tenant("s0", 2.5, 1.0), "batch"),
    ("tenant batch nan", lambda: Tenant("s0", NAN, 1.0), "batch"),
    ("tenant batch True", lambda: Tenant("s0", True, 1.0), "batch"),
    ("tenant rate text", lambda: Tenant("s0", 4, "1"), "rate"),  # TypeError
    ("tenant rate inf", lambda: Tenant("s0", 4, INF), "rate"),
    ("tenant service int", lambda: Tenant(5, 4, 1.0), "tenant service"),
    ("partition size nan", lambda: Partition(NAN, ()), "partition size"),
    ("partition size text", lambda: Partition("50", ()), "partition size"),  # TypeError
    ("partition tenants of dicts", lambda: Partition(50.0, ({"service": "s0"},)), "tenants[0]"),  # AttributeError
    ("partition procs 1.5", lambda: Partition(50.0, (), procs=1.5), "procs"),
    ("partition start -1", lambda: Partition(50.0, (), start=-1), "start"),
    ("layout text", lambda: GpuLayout("x"), "partitions"),  # AttributeError in the checker
    ("plan gpus a dict", lambda: Plan({"gpus": []}), "plan: gpus"),
    ("plan solver int", lambda: Plan((), solver=5), "solver"),
]


@pytest.mark.parametrize("call, words", [c[1:] for c in PART_CASES], ids=[c[0] for c in PART_CASES])
def test_a_part_built_by_hand_with_a_bad_field_is_one_input_error(call, words):
    _one_line_input_error(call, words)


def test_lists_are_frozen_into_tuples_and_numpy_numbers_kept_as_numbers():
    """A list given for a tuple stayed a list inside the frozen object (mutable, and `hash(instance)` a TypeError);
    numpy scalars (what a notebook's arrays hold) are accepted and stored as Python numbers (JSON writes them)."""
    inst = _inst(services=list(INST.services), batches=[1, 2, 4, 8])
    assert inst == INST and hash(inst) == hash(INST)
    plan = Plan([GpuLayout([Partition(np.float64(50.0), [Tenant("s0", np.int64(4), np.float64(100.0)),
                                                         Tenant("s1", 2.0, 50)], 24.0)])])
    assert plan == PLAN and isinstance(plan.gpus, tuple) and type(plan.gpus[0].partitions[0].tenants[0].batch) is int
    assert st.check(INST, plan).valid
    st.save(plan, "/dev/null")  # numpy scalars were not JSON-serialisable


def test_results_pickle_for_other_processes():
    r = st.solve(INST, time_limit=5)
    for obj in (INST, r, r.plan, r.report):
        assert pickle.loads(pickle.dumps(obj)) == obj


# ------------------------------------------------------------------------------------------ plugins declared badly
@pytest.fixture
def clean_registry(monkeypatch):
    registry.available_solvers()
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))


class _Solves:
    def solve(self, instance, options):
        return SolveResult("x", Status.UNKNOWN)


@dataclass(frozen=True)
class _DefaultRefused:
    k: int = 0

    def __post_init__(self):
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")


@dataclass
class _NotFrozen:
    k: int = 1


class _NotADataclass:
    k: int = 1


DECLARATIONS = [
    # an int name registered, then every listing of the registry (`sorted`) was a TypeError, for every solver
    ("name int", lambda: registry.register(5, "heuristic")(_Solves), TypeError, "expected a string"),
    ("name with a colon", lambda: registry.register("a:b=c", "heuristic")(_Solves), ValueError, "NAME:key=value"),
    ("name with a space", lambda: registry.register("a b", "heuristic")(_Solves), ValueError, "letters, digits"),
    ("name empty", lambda: registry.register("", "heuristic")(_Solves), ValueError, "letters, digits"),
    # a string where a tuple belongs: "cbc" was taken as the engines 'c', 'b', 'c' without a word
    ("engines text", lambda: registry.register("s18-e", "heuristic", engines="cbc")(_Solves), TypeError, "engines"),
    ("mechanisms text", lambda: registry.register("s18-m", "heuristic", mechanisms="mps")(_Solves), TypeError,
     "mechanisms must be a tuple"),
    ("objectives text", lambda: registry.register("s18-o", "heuristic", objectives="min-gpus")(_Solves), TypeError,
     "objectives must be a tuple"),
    ("options not a dataclass", lambda: registry.register("s18-d", "heuristic", options=_NotADataclass)(_Solves),
     TypeError, "solver s18-d: options must be a dataclass"),
    ("options an instance", lambda: registry.register("s18-i", "heuristic", options=_DefaultRefused.__new__(
        _DefaultRefused))(_Solves), TypeError, "solver s18-i: options must be a dataclass"),  # AttributeError
    ("options not frozen", lambda: registry.register("s18-f", "heuristic", options=_NotFrozen)(_Solves), TypeError,
     "frozen"),
    ("a function", lambda: registry.register("s18-fn", "heuristic")(lambda: None), TypeError, "decorates a class"),
    ("no solve method", lambda: registry.register("s18-n", "heuristic")(type("NoSolve", (), {})), TypeError,
     "has no solve"),
    ("constructor needs an argument", lambda: registry.register("s18-c", "heuristic")(
        type("NeedsArg", (_Solves,), {"__init__": lambda self, x: None})), TypeError, "without arguments"),
]


@pytest.mark.parametrize("declare, error, words", [c[1:] for c in DECLARATIONS], ids=[c[0] for c in DECLARATIONS])
def test_a_bad_declaration_is_refused_when_it_is_made(clean_registry, declare, error, words):
    before = dict(registry.REGISTRY)
    with pytest.raises(error, match=words):
        declare()
    assert registry.REGISTRY == before
    assert "heuristic" in registry.available_solvers()  # the registry still lists


def test_options_whose_defaults_fail_their_own_check_are_the_declarations_fault(clean_registry):
    """Every solve of such a solver was refused as "bad option value: k must be >= 1", bad input, with no --param
    given; now the one line of a solver's fault (exit 1) saying its declaration refuses its defaults."""
    registry.register("s18-bd", "heuristic", options=_DefaultRefused)(type("Bd", (_Solves,), {}))
    with pytest.raises(SolverFailed, match="defaults of its options class _DefaultRefused fail its own check"):
        st.solve(INST, "s18-bd", time_limit=5, attainment=0)
    assert st.solve(INST, "s18-bd", time_limit=5, attainment=0, params={"k": 2}).status is Status.UNKNOWN


def test_a_solver_whose_constructor_raises_is_one_line_naming_it(clean_registry):
    def broken(self):
        raise KeyError("licence")

    registry.register("s18-ctor", "heuristic")(type("Ctor", (_Solves,), {"__init__": broken}))
    with pytest.raises(SolverFailed, match="solver 's18-ctor' failed: KeyError"):  # was the KeyError itself
        st.solve(INST, "s18-ctor", time_limit=5, attainment=0)
    with pytest.raises(InputError, match="unknown solver 5"):
        st.solve(INST, 5)


# ------------------------------------------------------------------------------------------ API calls
def test_an_attainment_scope_without_a_loop_is_refused_as_the_cli_refuses_it():
    """`st.solve(inst, attainment_scope="zz")` on a deterministic instance ran without a word (the scope read by no
    loop) where `stsched solve --attainment-scope service` is refused there; one rule now (`check_scope`)."""
    for scope in ("zz", "service"):
        _one_line_input_error(lambda: st.solve(INST, attainment_scope=scope, time_limit=5),
                              f"attainment_scope {scope}: no attainment loop runs here")
    assert st.solve(INST, attainment=0.5, attainment_scope="service", time_limit=5).valid


def test_a_misspelt_scenario_argument_is_named():
    """`st.scenario("random", servics=4, gpus=2)` said "missing a required argument: 'services'"."""
    _one_line_input_error(lambda: st.scenario("random", servics=4, gpus=2), "unknown argument(s) servics")


def test_an_integer_too_large_for_a_float_in_a_file_is_one_input_error():
    """`"gpus": 1000...0` (400 digits, valid JSON) was an OverflowError from `math.isnan`."""
    from stsched.io import instance_from_dict, instance_to_dict

    _one_line_input_error(lambda: instance_from_dict({**instance_to_dict(INST), "gpus": 10 ** 400}),
                          "gpus: too large for a number (401 digits)")


def test_a_plan_a_solver_builds_badly_is_the_solvers_fault_not_bad_input(clean_registry):
    """A plugin whose solve built `Tenant("s0", 2.5, ...)` was reported as bad input (the InputError of the field
    check passed through `guarded` as the user's: exit 2); the instance it was given had passed the same checks."""
    def solve(self, instance, options):
        return SolveResult("x", Status.FEASIBLE, plan=Plan((GpuLayout((Partition(50.0, (Tenant("s0", 2.5, 1.0),)),)),)))

    registry.register("s18-built", "heuristic")(type("Built", (), {"solve": solve}))
    with pytest.raises(SolverFailed, match=r"solver 's18-built' failed: FieldError: tenant 's0': batch"):
        st.solve(INST, "s18-built", time_limit=5, attainment=0)
