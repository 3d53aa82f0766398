"""`TimingMemo`: `gpu_timings` once per layout shape (sizes, processes, services and batches), exactly what
`gpu_timings` gives for every layout, whatever the rates, duty cycles and start slots; the checker and the safety
warning use it (a plan on 96,165 GPUs of a few shapes was timed GPU by GPU three times over)."""

from __future__ import annotations

from functools import partial

from hypothesis import given, settings, strategies as st

import stsched.checker as checker
import stsched.safety as safety
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.problem import Interference
from stsched.timing import TimingMemo, gpu_timings, layout_shape
from tests.conftest import make_mps_instance

INST = make_mps_instance(interference=Interference("gpulet-linear", (0.0, 0.0, 0.0, 0.0, 1.5)))

tenant = st.builds(Tenant, st.sampled_from(["s0", "s1", "nope"]), st.sampled_from([1, 2, 4, 8, 3]),
                   st.floats(0.1, 500.0))
partition = st.builds(Partition, st.sampled_from([20.0, 40.0, 50.0, 60.0, 30.0]),
                      st.lists(tenant, min_size=1, max_size=3).map(tuple),
                      st.one_of(st.none(), st.floats(1.0, 100.0)))
layout = st.lists(partition, min_size=0, max_size=3).map(lambda ps: GpuLayout(tuple(ps)))


@settings(max_examples=60, deadline=None)
@given(st.lists(layout, min_size=1, max_size=6))
def test_memo_equals_gpu_timings(layouts):
    memo = TimingMemo(INST)
    for g in layouts + layouts[::-1]:
        assert memo(g) == gpu_timings(INST, g)


def test_rates_and_duty_cycles_share_a_shape_batches_do_not(monkeypatch):
    a = GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),
                   Partition(50.0, (Tenant("s1", 8, 10.0),), None)))
    b = GpuLayout((Partition(50.0, (Tenant("s0", 4, 1.0), Tenant("s1", 2, 5.0)), None),
                   Partition(50.0, (Tenant("s1", 8, 99.0),), 30.0)))
    c = GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),
                   Partition(50.0, (Tenant("s1", 4, 10.0),), None)))  # a neighbour's batch: other interference
    assert layout_shape(a) == layout_shape(b) != layout_shape(c)
    memo = TimingMemo(INST)
    assert memo(a) is memo(b) and memo(c) == gpu_timings(INST, c) != gpu_timings(INST, a)
    plan = Plan((a, b, c, a, b))
    memo_report, memo_warning = checker.check(INST, plan), safety.overloads(INST, plan)
    # the same verdicts, GPU by GPU, without the memo (the warning reads the checker's `capacities`)
    monkeypatch.setattr(checker, "TimingMemo", lambda inst: partial(gpu_timings, inst))
    assert checker.check(INST, plan) == memo_report and safety.overloads(INST, plan) == memo_warning
    assert {v.gpu for v in memo_report.violations} - {None} == {0, 1, 2, 3, 4}  # and coverage, GPU None


def test_a_plan_of_one_shape_is_timed_once(monkeypatch):
    import stsched.timing as timing

    calls = []
    real = timing.gpu_timings
    monkeypatch.setattr(timing, "gpu_timings", lambda inst, g: calls.append(g) or real(inst, g))
    g = GpuLayout((Partition(50.0, (Tenant("s0", 4, 10.0), Tenant("s1", 2, 5.0)), None),))
    plan = Plan(tuple(GpuLayout((Partition(50.0, (Tenant("s0", 4, 10.0 + i), Tenant("s1", 2, 5.0)), None),))
                      for i in range(300)))
    checker.check(INST, plan)
    safety.overloads(INST, plan)
    assert len(calls) == 2 and calls[0] == g  # once for the checker, once for the warning
