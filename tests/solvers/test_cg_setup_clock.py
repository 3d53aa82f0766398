"""The column generation's set-up polls its clock (issue 17, session 17): `stsched bound` on 100,000 services ran
130 s of a 10 s limit in it before (docs/RESULTS.md, "Limits and faults").  Tested by the mechanism with a work
counter, not by timing: a limit spent before the operating points are built stops the set-up at its first poll and
returns the efficiency LP bound, valid and said so, unconverged.  Then (session 17's review): a clock that passes
after N readings stops the set-up at each of its polls in turn; HiGHS's wall limit only on the wall clock; the
Poisson loosening without a second scan."""

from __future__ import annotations

import math

import pytest

from solvers.exact import cg as _cg  # noqa: F401  (imported before any test patches colgen._clock: cg binds
# `_clock` at its import, and a cg first imported under the patch would share the test's counting clock)
from solvers.exact import cg_master, colgen, patterns
from solvers.exact.cg_pricing import _SoloTimer
from solvers.exact.colgen import CgOptions, column_generation
from stsched import bounds
from stsched.bounds import lp_gpus, lp_relaxation
from stsched.checker import tolerant_scale
from stsched.registry import Objective, SolveOptions, run_bound
from stsched.scenarios import random_instance


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_a_limit_spent_in_the_set_up_returns_the_efficiency_bound_at_once(objective, monkeypatch):
    inst = random_instance(24, 12, 3, arrivals="deterministic")
    count = [0]
    for timer in (patterns._Timer, _SoloTimer):  # (the solo timer, for forms without interference, is its own)
        def counted(self, *args, exec_ms=timer.exec_ms):
            count[0] += 1
            return exec_ms(self, *args)

        monkeypatch.setattr(timer, "exec_ms", counted)
    # (the feasibility scan before the set-up polls the clock too: tests/solvers/test_bound_scan_clock.py; here
    # it runs whole, so that the set-up's own first poll is what stops)
    monkeypatch.setattr(colgen, "screen", lambda instance, objective, stop=None: bounds.screen(instance, objective))
    r = column_generation(inst, objective, CgOptions(time_limit_s=1e-9))
    assert count[0] < patterns.POLL_EVERY  # stopped at its first poll (all its points: a few hundred lookups)
    assert not r.converged and math.isnan(r.lp_value) and r.columns == 0
    assert "efficiency LP" in r.source and "set-up" in r.source
    x = lp_gpus(inst)
    assert r.bound == (x if objective is Objective.MIN_GPUS else inst.gpus / x)
    layout = lp_relaxation(inst, objective).value  # (no weaker than the efficiency LP: it adds the layouts)
    assert (r.bound <= layout * (1 + 1e-9)) if objective is Objective.MIN_GPUS else (r.bound >= layout * (1 - 1e-9))
    full = column_generation(inst, objective, CgOptions(max_rounds=1))
    assert count[0] > 100 and not full.source  # (the counter sees the set-up's work)


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_the_poisson_loosening_reads_the_set_ups_efficiency_lp(objective, monkeypatch):
    """On a Poisson instance `run_bound` loosens cg's bound to the efficiency LP bound: it reads the value the set-up's
    scan computed (`BoundResult.lp_gpus`) instead of scanning every service again (at 100,000 services a second
    scan of ~10 s of CPU after the provider returned, docs/RESULTS.md "Limits and faults" session 17)."""
    inst = random_instance(24, 12, 3)  # (Poisson arrivals: the default)
    assert inst.margin.late_share > 0
    x = lp_gpus(inst)
    scans = [0]

    def counted(instance):
        scans[0] += 1
        return x

    monkeypatch.setattr(bounds, "lp_gpus", counted)
    b = run_bound("cg", inst, SolveOptions(objective=objective, time_limit_s=60, params=(("max_rounds", "2"),)))
    assert scans[0] == 0
    assert b.lp_gpus == x
    loose = min(b.bound, bounds.lp_bound_gpus(inst, x)) if objective is Objective.MIN_GPUS else max(
        b.bound, bounds.lp_bound_scale(inst, x))
    assert b.bound == loose  # (loosened all the same)


class _Readings:
    """A clock that reads 0 for its first `n` readings and far past any deadline after: the time limit passes at
    its n-th reading (each poll of the set-up reads it once; on the cpu clock so do HiGHS's interrupt callbacks)."""

    def __init__(self, n: int):
        self.n, self.reads = n, 0

    def __call__(self) -> float:
        self.reads += 1
        return 0.0 if self.reads <= self.n else 1e18


def _stops():
    """The readings after which the clock passes: every one of the first 8, then doubling (the HiGHS solves read it
    at each callback)."""
    yield from range(1, 9)
    n = 16
    while n < 10 ** 6:
        yield n
        n *= 2


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_a_branch_out_of_time_in_the_set_up_says_it_has_no_bound(objective, monkeypatch):
    """Under branching rows (branch and price) the layout LP bounds the whole problem, not the branch: a stop after
    it returns the branch's trivial bound and names it so ("the layout LP bound" before)."""
    inst = random_instance(24, 12, 3, arrivals="deterministic")
    trivial = 0.0 if objective is Objective.MIN_GPUS else math.inf
    where = set()
    for n in _stops():
        monkeypatch.setattr(colgen, "_clock", lambda name, c=_Readings(n): c)
        r = column_generation(inst, objective, CgOptions(time_limit_s=100, clock="cpu"),
                              y_rows=(({0: 1.0}, 0.0, math.inf),))
        if not r.source:
            break
        assert r.source.startswith("no bound of the branch (the time limit passed in the set-up") and r.bound == trivial
        assert not r.converged and math.isnan(r.lp_value)
        where.add(r.source)
    assert any("first" in s for s in where)  # (stops after the layout LP: the first master's columns or its LP)


@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_highs_gets_a_wall_time_limit_only_on_the_wall_clock(clock, monkeypatch):
    """The layout LP and the first master are stopped at the deadline: by HiGHS's own time_limit (wall seconds) on
    the wall clock; on the cpu clock by interrupt callbacks reading that clock (the CPU seconds left given to HiGHS as
    its wall limit cut the LP early on a loaded machine)."""
    seen = []
    solve = cg_master._Master.solve

    def spy(self):
        seen.append((self.h.getOptionValue("time_limit")[1], getattr(self, "_release", None) is not None))
        return solve(self)

    monkeypatch.setattr(cg_master._Master, "solve", spy)
    inst = random_instance(24, 12, 3, arrivals="deterministic")
    column_generation(inst, Objective.MIN_GPUS, CgOptions(time_limit_s=1000, clock=clock, max_rounds=2))
    assert len(seen) >= 2  # the layout LP, the first master (then the rounds' masters, with no limit)
    for limit, callbacks in seen[:2]:
        assert (limit <= 1000 and not callbacks) if clock == "wall" else (limit == math.inf and callbacks)
    assert all(limit == math.inf and not callbacks for limit, callbacks in seen[2:])


@pytest.mark.parametrize("device", ["a100-mps", "a100-mig"])
@pytest.mark.parametrize("arrivals", ["deterministic", "poisson"])
@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_a_stop_in_the_set_up_names_its_bound_never_above_the_layout_lps(device, arrivals, objective, monkeypatch):
    """`stsched bound` stopped after N readings of its clock, every N until the generation reaches a master: not
    converged, no LP value, the method names the bound it returns (the efficiency LP's or the layout LP's; on Poisson
    instances loosened to the efficiency LP's), and that bound is no better than `lp_relaxation`'s (but the efficiency
    LP's on Poisson MIG, below)."""
    inst = random_instance(24, 12, 3, device, arrivals=arrivals)
    layout = lp_relaxation(inst, objective)
    mini = objective is Objective.MIN_GPUS
    eff = bounds.lp_bound_gpus(inst) if mini else bounds.lp_bound_scale(inst)
    seen = set()
    for n in _stops():
        monkeypatch.setattr(colgen, "_clock", lambda name, c=_Readings(n): c)
        b = run_bound("cg", inst, SolveOptions(objective=objective, time_limit_s=100, params=(("clock", "cpu"),)))
        if b.lp_value is not None:  # (a master was solved: the set-up is over)
            break
        assert not b.converged
        if "feasibility not fully checked" in b.message:  # stopped within the scan (session 18): the services
            # scanned only (the message says so whether or not the Poisson loosening renamed the method)
            assert (b.bound <= eff) if mini else (b.bound >= eff), b.method
            continue
        kind = "efficiency" if "efficiency LP" in b.method or b.method == "lp-efficiency" else "layout"
        seen.add(kind)
        if kind == "efficiency":
            assert b.bound == eff, b.method
        else:
            assert "the layout LP bound" in b.method, b.method
            assert b.bound == (layout.gpus if mini else pytest.approx(tolerant_scale(layout.value), rel=1e-9)), b.method
            # (max-scale: the layout LP's alpha widened by the checker's tolerance, as every max-scale bound)
        if arrivals == "poisson" and device == "a100-mig" and kind == "efficiency":
            continue  # (the layout LP credits multi-process points with the best Poisson credit, which no plan gets:
            # here it is the weaker of the two, 6.65 GPUs against the efficiency LP's 7.21)
        assert (b.bound <= layout.gpus) if mini else (b.bound >= layout.value * (1 - 1e-9))
    assert "efficiency" in seen and (arrivals == "poisson" or "layout" in seen), seen
