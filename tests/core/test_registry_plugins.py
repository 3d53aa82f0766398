"""The registry finds solvers through the `stsched.solvers` entry-point group: a third party's package adds one
without editing this repository, and a broken plugin does not take the others down."""

from __future__ import annotations

import importlib.metadata as md
import sys
import textwrap

import pytest

from stsched import registry
from stsched.scenarios import gpulet_mix

PLUGIN = textwrap.dedent('''
    from stsched.registry import SolveResult, Status, register, run_solver, SolveOptions


    @register("one-gpu-each", "heuristic", "every service alone on its own whole GPU (a third party's toy)")
    class OneGpuEach:
        def solve(self, instance, options):
            from stsched.plan import GpuLayout, Partition, Plan, Tenant
            from stsched.bounds import gpu_throughput
            full = max(instance.mechanism.sizes)
            gpus = []
            for s in instance.services:
                best = max((e for e in instance.table(s.model).entries if e.size == full and e.procs == 1
                            and e.batch in instance.batches and 2 * e.latency_ms <= instance.slo_budget_ms(s.name)),
                           key=lambda e: e.batch, default=None)
                if best is None:
                    return SolveResult(self.name, Status.INFEASIBLE, infeasible_services=(s.name,))
                gpus.append(GpuLayout((Partition(full, (Tenant(s.name, best.batch, s.rate),)),)))
            return SolveResult(self.name, Status.FEASIBLE, float(len(gpus)), plan=Plan(tuple(gpus)))
''')


@pytest.fixture
def plugin_world(tmp_path, monkeypatch):
    (tmp_path / "thirdparty_solver.py").write_text(PLUGIN)
    (tmp_path / "broken_solver.py").write_text("raise RuntimeError('this plugin is broken')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ours = list(md.entry_points(group=registry.ENTRY_POINT_GROUP))
    theirs = [md.EntryPoint("one-gpu-each", "thirdparty_solver:OneGpuEach", registry.ENTRY_POINT_GROUP),
              md.EntryPoint("broken", "broken_solver:Nothing", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(md, "entry_points", lambda group=None: ours + theirs if group else ours + theirs)
    monkeypatch.setattr(registry, "REGISTRY", {})
    monkeypatch.setattr(registry, "_LOADED", False)
    yield
    sys.modules.pop("thirdparty_solver", None)


def test_a_third_party_solver_is_registered_and_judged(plugin_world, caplog):
    solvers = registry.available_solvers()
    assert "one-gpu-each" in solvers and "heuristic" in solvers and "broken" not in solvers
    assert any("broken" in r.message and "failed to load" in r.message for r in caplog.records)
    inst = gpulet_mix("m2", 4)
    judged = registry.run_solver("one-gpu-each", inst)
    assert judged.valid and judged.plan.gpus_used == len(inst.services)


def test_without_entry_points_the_registry_says_how_to_install(monkeypatch):
    monkeypatch.setattr(md, "entry_points", lambda group=None: [])
    monkeypatch.setattr(registry, "REGISTRY", {})
    monkeypatch.setattr(registry, "_LOADED", False)
    with pytest.raises(registry.InputError, match="pip install"):
        registry.available_solvers()
