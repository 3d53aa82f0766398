"""`stsched bound` honours its limit as a whole command (session 18): at 100,000 services `--time-limit 10` took
12.6-13.7 s of CPU, the instance file's load and the feasibility scan (`stsched.bounds.screen`, which names the
services no plan serves) uncut.  Tested by the mechanism, not by timing: a stop that turns true after N polls ends
the scan with a valid bound of the services scanned, said so; the command takes the load's time off the limit
(a fake clock)."""

from __future__ import annotations

import math

import pytest

from solvers.exact import colgen
from solvers.exact.colgen import CgOptions, column_generation
from stsched import bounds
from stsched.commands import _common
from stsched.commands import bound as bound_command
from stsched.registry import BoundResult, Objective
from stsched.scenarios import random_instance


def _after(polls: int):
    """A stop that is false for its first `polls` calls, then true."""
    calls = [0]

    def stop() -> bool:
        calls[0] += 1
        return calls[0] > polls

    return stop


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_a_stop_ends_the_scan_with_a_bound_of_the_services_scanned(objective):
    inst = random_instance(200, 100, 3)
    whole = bounds.screen(inst, objective)
    assert whole.complete and whole.scanned == 200
    for polls in (0, 1, 2, 3):
        part = bounds.screen(inst, objective, _after(polls))
        assert not part.complete and part.scanned == polls * bounds.POLL_SERVICES
        assert part.lp_gpus <= whole.lp_gpus * (1 + 1e-12)  # a sum of fewer terms, each >= 0
        mini = objective is Objective.MIN_GPUS
        e_part, e_whole = (s.efficiency_bound(objective, inst.gpus) for s in (part, whole))
        assert (e_part <= e_whole) if mini else (e_part >= e_whole)
        assert set(part.unservable) <= set(whole.unservable)


def test_a_scan_that_finds_an_unservable_service_before_the_stop_names_it():
    inst = random_instance(200, 100, 3, arrivals="deterministic")
    svc = inst.services[5]
    cut = inst.with_rates({svc.name: 1e15})  # no GPU count serves it
    part = bounds.screen(cut, Objective.MIN_GPUS, _after(1))
    assert not part.complete and svc.name in part.unservable
    with pytest.raises(colgen.Infeasible):
        column_generation(cut, Objective.MIN_GPUS, CgOptions(time_limit_s=60))


@pytest.mark.parametrize("objective", [Objective.MIN_GPUS, Objective.MAX_SCALE])
def test_column_generation_stopped_in_the_scan_says_feasibility_was_not_fully_checked(objective, monkeypatch):
    inst = random_instance(200, 100, 3)
    reads = [0]

    def clock() -> float:  # the deadline is read first, then one reading per poll: passes at the scan's 3rd poll
        reads[0] += 1
        return 0.0 if reads[0] <= 3 else 1e18

    monkeypatch.setattr(colgen, "_clock", lambda name: clock)
    r = column_generation(inst, objective, CgOptions(time_limit_s=100, clock="cpu"))
    assert not r.converged and math.isnan(r.lp_value) and r.columns == 0
    assert "feasibility not fully checked" in r.unchecked and "128 of 200" in r.unchecked
    part = bounds.screen(inst, objective, _after(2))
    assert r.bound == part.efficiency_bound(objective, inst.gpus) and r.lp_gpus == part.lp_gpus


class _FakeClock:
    def __init__(self):
        self.t = 100.0

    def perf_counter(self) -> float:
        return self.t


@pytest.mark.parametrize("load_s, left", [(7.0, 3.0), (25.0, _common.LEAST_LIMIT_S)])
def test_the_bound_command_counts_the_instance_files_load(load_s, left, tmp_path, monkeypatch):
    clock = _FakeClock()
    monkeypatch.setattr(_common, "time", clock)
    monkeypatch.setattr(bound_command, "clock_named", lambda name: clock.perf_counter)  # (the wall clock: name "wall")
    inst = random_instance(4, 2, 3)
    loaded = bound_command.load_instance

    def slow_load(path):
        clock.t += load_s  # the load takes `load_s` seconds of the limit
        return loaded(path)

    seen = []

    def fake_bound(name, instance, options):
        seen.append(options.time_limit_s)
        return BoundResult(options.objective, 1.0, 1.0, True, 0, 0, 0.0, "cg")

    from stsched.io import save_instance
    path = tmp_path / "i.json"
    save_instance(inst, path)
    monkeypatch.setattr(bound_command, "load_instance", slow_load)
    monkeypatch.setattr(bound_command, "checked_bound", fake_bound)
    from stsched.cli import main
    assert main(["bound", str(path), "--time-limit", "10", "--json"]) == 0
    assert seen == [pytest.approx(left)]
