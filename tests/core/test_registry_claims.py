"""A third party's solver plugin is judged, never trusted (session 13, hostile tester; `stsched.claims`).

Before: a plugin that raised was a traceback (exit 1); one that returned None a TypeError traceback; an invalid
plan was reported 'optimal'; an objective of 0 GPUs for a plan on 1 was printed as 0; a lower bound of 5 above its
own 1-GPU plan was a gap of 80 %; 'infeasible' with a valid plan exited 1 naming a service that does not exist; a
solver 4 s past its 1 s limit passed unnoticed; `solve --bound P` took a provider's bound of 99 GPUs above the
plan's 1 (gap 98.99 %)."""

from __future__ import annotations

import importlib.metadata as md
import sys
import textwrap

import pytest

from stsched import registry
from stsched.errors import SolverFailed
from stsched.io import save_instance
from stsched.registry import Objective, SolveOptions, Status
from tests.conftest import make_mps_instance, run_cli

PLUGIN = textwrap.dedent('''
    import time
    from stsched.plan import GpuLayout, Partition, Plan, Tenant
    from stsched.registry import BoundResult, SolveResult, Status, register


    def valid():
        return Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),))


    @register("h-raises", "heuristic")
    class Raises:
        def solve(self, instance, options):
            raise RuntimeError("boom inside a plugin")


    @register("h-none", "heuristic")
    class ReturnsNone:
        def solve(self, instance, options):
            return None


    @register("h-invalid", "heuristic")
    class Invalid:
        def solve(self, instance, options):
            plan = Plan((GpuLayout((Partition(50.0, (Tenant("s0", 8, 1e6),)),)),))
            return SolveResult(self.name, Status.OPTIMAL, 1.0, bound=1.0, plan=plan)


    @register("h-liar", "heuristic")
    class Liar:
        def solve(self, instance, options):
            alpha = options.objective.value == "max-scale"
            return SolveResult(self.name, Status.OPTIMAL, 50.0 if alpha else 0.0, bound=50.0 if alpha else 0.0,
                               plan=valid())


    @register("h-high-bound", "heuristic")
    class HighBound:
        def solve(self, instance, options):
            return SolveResult(self.name, Status.OPTIMAL, 1.0, bound=5.0, plan=valid())

        def bound(self, instance, options):
            return BoundResult(options.objective, 99.0, 99.0, True, 0, 0, 0.0, "bogus")


    @register("h-infeasible", "heuristic")
    class Infeasible:
        def solve(self, instance, options):
            return SolveResult(self.name, Status.INFEASIBLE, float("nan"), bound=float("inf"), plan=valid(),
                               infeasible_services=("nope",))


    @register("h-sleeper", "heuristic")
    class Sleeper:
        def solve(self, instance, options):
            time.sleep(options.time_limit_s * 1.1 + 1.2)
            return SolveResult(self.name, Status.FEASIBLE, 1.0, plan=valid())
''')
NAMES = {"h-raises": "Raises", "h-none": "ReturnsNone", "h-invalid": "Invalid", "h-liar": "Liar",
         "h-high-bound": "HighBound", "h-infeasible": "Infeasible", "h-sleeper": "Sleeper"}
INST = make_mps_instance()


@pytest.fixture
def hostile_plugins(tmp_path, monkeypatch):
    (tmp_path / "hostile_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    ours = list(md.entry_points(group=registry.ENTRY_POINT_GROUP))
    theirs = [md.EntryPoint(n, f"hostile_plugin:{c}", registry.ENTRY_POINT_GROUP) for n, c in NAMES.items()]
    monkeypatch.setattr(md, "entry_points", lambda group=None: ours + theirs)
    monkeypatch.setattr(registry, "REGISTRY", {})
    monkeypatch.setattr(registry, "_LOADED", False)
    save_instance(INST, tmp_path / "inst.json")
    yield str(tmp_path / "inst.json")
    sys.modules.pop("hostile_plugin", None)


@pytest.mark.parametrize("name, words", [("h-raises", "solver 'h-raises' failed: RuntimeError: boom inside a plugin"),
                                         ("h-none", "solver 'h-none' returned NoneType, not a SolveResult")])
def test_a_plugin_that_raises_or_returns_nonsense_is_one_line_exit_1(hostile_plugins, capsys, name, words):
    code, text = run_cli(capsys, "solve", hostile_plugins, "--solver", name)
    assert code == 1 and words in text and len(text.strip().splitlines()) == 1, text
    with pytest.raises(SolverFailed, match=words.split(":")[0]):
        registry.run_solver(name, INST)


def test_an_invalid_plan_is_not_optimal(hostile_plugins):
    j = registry.run_solver("h-invalid", INST)
    assert j.valid is False and j.status is Status.UNKNOWN and "checker rejects" in j.message


@pytest.mark.parametrize("objective, value", [(Objective.MIN_GPUS, 1.0), (Objective.MAX_SCALE, 1.0)])
def test_the_objective_is_the_plans_and_a_gap_is_not_optimal(hostile_plugins, objective, value):
    j = registry.run_solver("h-liar", INST, SolveOptions(objective=objective))
    assert j.valid and j.objective == value and j.status is Status.FEASIBLE, j.result


def test_a_bound_its_own_plan_disproves_is_dropped(hostile_plugins, capsys):
    j = registry.run_solver("h-high-bound", INST)
    assert j.bound is None and j.status is Status.FEASIBLE and "not a bound" in j.message
    code, text = run_cli(capsys, "solve", hostile_plugins, "--solver", "heuristic", "--bound", "h-high-bound",
                         "--json")
    assert code == 0 and '"bound": 1.0' in text and "disproved by the valid plan" in text, text


def test_infeasible_with_a_valid_plan_is_feasible_and_strangers_are_not_named(hostile_plugins):
    j = registry.run_solver("h-infeasible", INST)
    assert j.status is Status.FEASIBLE and j.objective == 1.0 and j.bound is None and not j.result.infeasible_services


def test_a_solver_past_its_time_limit_is_named(hostile_plugins, capsys):
    code, text = run_cli(capsys, "solve", hostile_plugins, "--solver", "h-sleeper", "--time-limit", "0.05")
    assert code == 0 and "past its time limit of 0.05 s" in text, text


def test_our_solvers_claims_stand(caplog):
    """The judge corrects nothing of a solver that tells the truth (the heuristic and the MILP, both objectives)."""
    for name in ("heuristic", "milp"):
        for objective in (Objective.MIN_GPUS, Objective.MAX_SCALE):
            j = registry.run_solver(name, INST, SolveOptions(objective=objective, time_limit_s=20))
            assert j.valid and "registry:" not in j.message, (name, objective, j.result)
    assert not [r for r in caplog.records if r.name == "stsched.claims"]


@pytest.mark.parametrize("kind, raised", [("interrupt", KeyboardInterrupt), ("terminate", "Terminated")])
def test_an_error_after_an_interrupt_is_the_interrupt(monkeypatch, kind, raised):
    """`stsched solve --solver cg` interrupted after 7 s (SIGINT to the process group, as Ctrl-C) said 'solver cg
    failed: PulpSolverError: HiGHS: Not Available', exit 1: PuLP imports highspy inside a bare `except:`, which
    swallowed the KeyboardInterrupt.  The CLI's handlers note every interrupt; an error raised after one is it."""
    from stsched import errors

    class Dies:
        def solve(self, instance, options):
            errors.note_interrupt(kind)  # what the CLI's handler does before raising; the library swallows it
            raise RuntimeError("HiGHS: Not Available")

    registry.load_solvers()
    monkeypatch.setattr(registry, "get_solver", lambda name: Dies())
    want = errors.Terminated if raised == "Terminated" else raised
    with pytest.raises(want):
        registry.run_solver("heuristic", INST)
