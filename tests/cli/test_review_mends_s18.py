"""Session 18, review mends (s18-mendB): each test is one finding of the review of s18-limits and s18-dedup; the
docstring says what happened before the fix."""

from __future__ import annotations

import types
from typing import Callable

import pytest

from stsched.errors import InputError


def test_a_detect_s_of_400_digits_is_bad_input_naming_it_not_an_overflow():
    """`check_real` caught TypeError and ValueError only: `float(10**400)` raised OverflowError through it (a
    traceback from `check_detect(10**400)`, any option read by it).  Now bad input naming the option."""
    from stsched.planning.adapt.detect import check_detect

    with pytest.raises(InputError, match=r"^detect_s .*: expected a finite number, got an integer of about 401 "
                                         r"digits$"):
        check_detect(10 ** 400)


@pytest.mark.parametrize("flags, named", [
    (["--param", "bogus=1"], "unknown option 'bogus'"),
    (["--param", "max_rounds=x"], "max_rounds='x'"),
    (["--param", "lns_free=20"], "lns_free: read by its solve only"),
    (["--param", "clock=sundial"], "clock: expected wall or cpu, got 'sundial'"),
    (["--method", "nosuch"], "'nosuch' provides no bound"),
])
def test_the_bound_command_refuses_a_bad_method_or_param_before_loading_the_instance(flags, named, tmp_path, capsys,
                                                                                       monkeypatch):
    """`stsched bound` checked --method and --param only in `run_bound`, after `load_instance` (1.1-1.3 s at 100,000
    services; a missing file was named instead of the bad option).  Now the option is named, exit 2, and the
    instance file is never opened (here it would not load)."""
    from stsched.cli import main
    from stsched.commands import bound as bound_command

    def never(path):
        raise AssertionError("the instance was loaded before the options were checked")

    monkeypatch.setattr(bound_command, "load_instance", never)
    code = main(["bound", str(tmp_path / "nosuch.json"), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and named in err[0], err


def test_the_bound_command_on_the_cpu_clock_counts_the_loads_cpu_time(tmp_path, monkeypatch):
    """With `--param clock=cpu` the limit is CPU seconds (the provider's clock), but `time_left` took the load's wall
    time off it.  Now the load counts on the limit's clock: 7 s of CPU (and 1 s of wall) leave 3 of 10."""
    from stsched.cli import main
    from stsched.commands import _common
    from stsched.commands import bound as bound_command
    from stsched.io import save_instance
    from stsched.registry import BoundResult
    from stsched.scenarios import random_instance

    wall, cpu = [100.0], [50.0]
    fake_time = types.SimpleNamespace(perf_counter=lambda: wall[0])
    monkeypatch.setattr(_common, "time", fake_time)
    monkeypatch.setattr(bound_command, "clock_named", lambda name: {"wall": fake_time.perf_counter,
                                                                    "cpu": lambda: cpu[0]}[name])
    path = tmp_path / "i.json"
    save_instance(random_instance(4, 2, 3), path)
    loaded = bound_command.load_instance

    def load(p):
        wall[0] += 1.0
        cpu[0] += 7.0
        return loaded(p)

    seen = []

    def fake_bound(name, instance, options):
        seen.append(options.time_limit_s)
        return BoundResult(options.objective, 1.0, 1.0, True, 0, 0, 0.0, "cg")

    monkeypatch.setattr(bound_command, "load_instance", load)
    monkeypatch.setattr(bound_command, "checked_bound", fake_bound)
    assert main(["bound", str(path), "--time-limit", "10", "--param", "clock=cpu", "--json"]) == 0
    assert seen == [pytest.approx(3.0)]


def _cut_scan(monkeypatch, polls: int = 2) -> None:
    """cg's feasibility scans (`stsched.bounds.screen` in its set-up) stopped after `polls` polls each, as a time
    limit passing there stops them (128 of 200 services scanned)."""
    from solvers.exact import colgen
    from stsched import bounds

    def after() -> Callable[[], bool]:
        calls = [0]

        def stop() -> bool:
            calls[0] += 1
            return calls[0] > polls

        return stop

    monkeypatch.setattr(colgen, "screen", lambda inst, objective, _stop=None: bounds.screen(inst, objective, after()))


@pytest.mark.parametrize("unservable", [False, True])
def test_a_bound_cut_in_the_feasibility_scan_says_so_in_its_json(unservable, monkeypatch):
    """`BoundResult` said "feasibility not fully checked" in its message only: its JSON gave `infeasible_services:
    []` (or the services found) and `converged: false`, as a bound stopped later does.  Now `feasibility_checked`
    (`Screen.complete`) says it, false here, true on a whole scan."""
    from stsched.registry import Objective, SolveOptions, run_bound
    from stsched.scenarios import random_instance

    inst = random_instance(200, 100, 3, arrivals="deterministic")
    if unservable:  # no GPU count serves it, found before the cut
        inst = inst.with_rates({inst.services[5].name: 1e15})
    opts = SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=60)
    if not unservable:
        assert run_bound("cg", random_instance(4, 2, 3, arrivals="deterministic"), opts).to_dict()[
            "feasibility_checked"] is True
    _cut_scan(monkeypatch)
    out = run_bound("cg", inst, opts).to_dict()
    assert out["feasibility_checked"] is False and "128 of 200 services scanned" in out["message"]
    assert out["infeasible_services"] == ([inst.services[5].name] if unservable else [])


def test_scale_evals_bound_row_records_a_cut_feasibility_scan(monkeypatch):
    """experiments/scale_eval.py's bound row recorded `infeasible: 0` for a scan cut by the limit, as for a whole
    one.  Now the row has `feasibility_checked`."""
    from experiments import scale_eval

    _cut_scan(monkeypatch)
    row = scale_eval._bound({"services": 200, "seed": 3, "device": "a100-mps", "objective": "min-gpus",
                             "bound_rounds": 5, "bound_time": 60})
    assert row["infeasible"] == 0 and row["feasibility_checked"] is False


def test_solve_with_a_cg_bound_keeps_the_providers_message(monkeypatch, tmp_path, capsys):
    """`stsched solve --bound cg` reported "bound from cg (... converged false)" and dropped the provider's message:
    a bound from a cut feasibility scan read as any early stop.  Now the message follows."""
    import json

    from stsched.cli import main
    from stsched.io import save_instance
    from stsched.scenarios import random_instance

    path = tmp_path / "i.json"
    save_instance(random_instance(200, 100, 3, arrivals="deterministic"), path)
    _cut_scan(monkeypatch)
    main(["solve", str(path), "--solver", "heuristic", "--bound", "cg", "--time-limit", "30", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert "bound from cg" in out["message"] or "cg bound" in out["message"], out["message"]
    assert "feasibility not fully checked, 128 of 200 services scanned" in out["message"], out["message"]


def test_the_cg_solvers_message_says_its_bound_comes_from_a_cut_feasibility_scan(monkeypatch):
    """Solver cg's notes began "bound: 0 master solves, 0 columns, restricted master nan" and omitted
    `CgBound.unchecked`: its bound (the efficiency LP of the services scanned) and its unchecked feasibility went
    unsaid.  Now the note says it."""
    from stsched.registry import Objective, SolveOptions, run_solver
    from stsched.scenarios import random_instance

    _cut_scan(monkeypatch)
    j = run_solver("cg", random_instance(200, 100, 3, arrivals="deterministic"),
                   SolveOptions(objective=Objective.MIN_GPUS, time_limit_s=30))
    assert "feasibility not fully checked, 128 of 200 services scanned" in j.result.message, j.result.message


@pytest.mark.parametrize("objective", ["min-gpus", "max-scale"])
def test_solver_cg_cut_in_its_feasibility_scan_returns_its_warm_plan_not_a_fault(objective, monkeypatch):
    """Found mending the previous finding: cut in the feasibility scan, the column generation returned no layouts,
    and solver cg's slots model failed on them ("solver 'cg' failed: ValueError: max() arg is an empty sequence (a
    fault of the solver)", exit 1), a plan from the heuristic in hand.  Now the layouts come back (milliseconds) and
    the warm plan is judged and returned."""
    from stsched.registry import Objective, SolveOptions, Status, run_solver
    from stsched.scenarios import random_instance

    _cut_scan(monkeypatch)
    j = run_solver("cg", random_instance(200, 100, 3, arrivals="deterministic"),
                   SolveOptions(objective=Objective(objective), time_limit_s=30))
    assert j.result.status is Status.FEASIBLE and j.valid, j.result.message
