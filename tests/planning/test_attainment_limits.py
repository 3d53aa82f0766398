"""The attainment loop within limits: one deadline for all its rounds (`AttainmentOptions.time_limit_s`, the
`stsched solve --time-limit` of a loop) and simulations counted per service and span without keeping records.

Before: `stsched solve r256.json --solver cg --time-limit 0.001` (256 services, Poisson) ran 546 s of wall (every
round a solve within the limit plus a 120-s simulation, 12 rounds) and a round of the heuristic held 9.6 GB (every
request's record, and a mask per service over all of them in `lower_bounds`)."""

from __future__ import annotations

import functools
import math
import time

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.checker import check
from stsched.io import save_instance
from stsched.planning import attainment
from stsched.planning.attainment import AttainmentOptions, lower_bounds, plan_for_attainment, registry_solver
from stsched.registry import SolveOptions, run_solver
from stsched.scenarios import random_instance
from stsched.simulation import ArrivalSpec, SimOptions, simulate
from stsched.simulation.span_counts import simulate_spans
from stsched.simulation.summary import within_slo
from tests.conftest import run_cli


@functools.lru_cache(maxsize=None)
def planned():
    """A 12-service instance and a heuristic plan of it whose simulated attainment is below 0.99 (tenants at full
    load under Poisson arrivals), so that a loop handed this plan every round never meets the target."""
    inst = random_instance(12, 2, 3, arrivals="deterministic").with_gpus(8)
    judged = run_solver("heuristic", inst, SolveOptions(time_limit_s=30.0))
    assert judged.valid
    return inst, judged


def reference_bounds(records, slo_ms, duration_s, batches, z):
    """The batch-means bounds as `lower_bounds` computed them on full records before the counts (a mask per
    service over all requests)."""
    ok = within_slo(records, slo_ms)
    span = np.minimum((records.arrival / duration_s * batches).astype(int), batches - 1)
    out = []
    for sel in [np.ones(len(ok), dtype=bool)] + [records.service == i for i in range(len(records.services))]:
        n = np.bincount(span[sel], minlength=batches)
        good = np.bincount(span[sel], weights=ok[sel], minlength=batches)
        have = n > 0
        if have.sum() < 2:
            out.append(float(good.sum() / n.sum()) if n.sum() else 1.0)
            continue
        frac = good[have] / n[have]
        out.append(float(frac.mean() - z * frac.std(ddof=1) / math.sqrt(len(frac))))
    return out[0], np.array(out[1:])


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), batches=st.integers(2, 40), z=st.sampled_from([0.0, 1.0, 1.645]),
       duration=st.sampled_from([3.0, 10.0, 20.0]), arrivals=st.sampled_from(["poisson", "gamma:2", "deterministic"]))
def test_span_counts_give_the_bounds_of_full_records(seed, batches, z, duration, arrivals):
    inst, judged = planned()
    plan = judged.result.plan
    opts = SimOptions(duration_s=duration, seed=seed)
    full = simulate(inst, plan, ArrivalSpec.parse(arrivals), opts)
    counts = simulate_spans(inst, plan, ArrivalSpec.parse(arrivals), opts, batches)
    slo_ms = np.array([s.slo_ms for s in inst.services])
    want_overall, want_per = reference_bounds(full.records, slo_ms, duration, batches, z)
    overall, per = counts.lower_bounds(z)
    assert overall == want_overall and np.array_equal(per, want_per)  # the same numbers, not close ones
    again_overall, again_per = lower_bounds(full.records, slo_ms, duration, batches, z)  # the loop's own wrapper
    assert again_overall == overall and np.array_equal(again_per, per)
    assert counts.attainment == full.summary.slo_attainment
    assert counts.requests.sum() == full.summary.requests and counts.within.sum() == full.summary.within_slo
    assert counts.requests.shape == (len(inst.services), batches)


def fixed(judged, limits=None, sleep_s=0.0):
    """A `solve` that returns `judged` whatever it is asked, after `sleep_s`, noting the time limits it is given."""
    def solve(_planned, time_limit_s):
        if limits is not None:
            limits.append(time_limit_s)
        time.sleep(sleep_s)
        return judged
    return solve


def test_a_deadline_passed_before_the_first_simulation_returns_the_first_plan_unsimulated():
    inst, judged = planned()
    t0 = time.perf_counter()
    res = plan_for_attainment(inst, fixed(judged), AttainmentOptions(time_limit_s=1e-6))
    assert time.perf_counter() - t0 < 5.0
    assert not res.met and res.plan is judged.result.plan and res.report.valid
    assert len(res.rounds) == 1 and res.rounds[0].attainment is None
    assert "the time limit (1e-06 s, the whole loop's) stopped the loop after 0 simulated rounds" in res.message
    assert "its attainment not simulated" in res.message


def test_a_round_that_would_pass_the_deadline_is_not_started():
    inst, judged = planned()
    limits = []
    opts = AttainmentOptions(time_limit_s=2.0, duration_s=3.0, rounds=50)
    t0 = time.perf_counter()
    res = plan_for_attainment(inst, fixed(judged, limits, sleep_s=0.4), opts)
    took = time.perf_counter() - t0
    assert not res.met and res.plan is judged.result.plan and check(inst, res.plan).valid
    assert res.rounds[0].attainment is not None  # the best simulated round comes back
    assert "the time limit (2 s, the whole loop's) stopped the loop" in res.message
    assert limits[0] == 1.0 and all(0 < x < 2.0 - 0.4 for x in limits[1:])  # half, then what is left
    assert took < 2.0 + 3.0  # one partition's simulation past the deadline at most, on a loaded machine


def test_no_limit_gives_each_solve_its_own(monkeypatch):
    inst, judged = planned()
    limits = []
    res = plan_for_attainment(inst, fixed(judged, limits), AttainmentOptions(duration_s=3.0, rounds=2))
    assert limits == [None, None] and len(res.rounds) == 2 and "time limit" not in res.message
    given_ = []
    monkeypatch.setattr(attainment, "run_solver", lambda name, inst_, options: given_.append(options.time_limit_s))
    solve = registry_solver("heuristic", SolveOptions(time_limit_s=7.0))
    solve(inst, None), solve(inst, 3.0), solve(inst, 30.0)
    assert given_ == [7.0, 3.0, 7.0]


def test_cli_tiny_time_limit_returns_quickly_and_names_it(tmp_path, capsys, monkeypatch):
    # a solver that returns a valid plan at once whatever its limit (as cg did at --time-limit 0.001 on 256
    # services), on an instance planned for Poisson arrivals (the default loop runs): before, 12 rounds of
    # simulation; now the first plan, unsimulated, and a warning naming the time limit
    inst = random_instance(12, 2, 3).with_gpus(8)
    judged = run_solver("heuristic", inst, SolveOptions(time_limit_s=30.0))
    assert judged.valid
    monkeypatch.setattr(attainment, "run_solver", lambda name, planned_, options: judged)
    save_instance(inst, tmp_path / "i.json")
    t0 = time.perf_counter()
    code, text = run_cli(capsys, "solve", str(tmp_path / "i.json"), "--time-limit", "0.001")
    assert time.perf_counter() - t0 < 10.0
    assert code == 1
    assert ("stsched: warning: SLO-attainment target not met: the time limit (0.001 s, the whole loop's) stopped "
            "the loop after 0 simulated rounds") in text
    assert "valid True" in text
