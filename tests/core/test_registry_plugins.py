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


# ------------------------------------------------------------------ declaration errors of a third party (session 16)
@pytest.fixture
def clean_registry(monkeypatch):
    """The registry with every shipped solver loaded, restored after the test (a declaration must not leak)."""
    registry.available_solvers()
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))


class _Toy:
    def solve(self, instance, options):  # never called: the declaration is what is tested
        raise AssertionError


def test_a_third_party_cannot_take_a_shipped_solvers_name_silently(clean_registry):
    """`@register("heuristic", ...)` in a third party's module imported after the registry loaded replaced the
    shipped heuristic without a word: `st.solve(inst, "heuristic")` then ran the impostor and reported its result as
    the heuristic's.  Now a name held by another class is a declaration error naming the holder."""
    with pytest.raises(ValueError, match=r"'heuristic' is already registered by stsched\.heuristic\.solver"):
        registry.register("heuristic", "heuristic", "an impostor")(type("Impostor", (_Toy,), {}))
    assert registry.REGISTRY["heuristic"].factory.__module__ == "stsched.heuristic.solver"


def test_a_name_declared_by_an_entry_point_is_refused_to_another_class(clean_registry, monkeypatch):
    """The order does not matter: a module registering a name that an installed entry point declares for another
    class is refused even before the registry loads (else the shipped solver failed to load, blamed on itself)."""
    monkeypatch.setattr(registry, "REGISTRY", {})
    monkeypatch.setattr(registry, "_LOADED", False)
    with pytest.raises(ValueError, match=r"'milp' is declared by entry point solvers\.exact\.milp:MilpSolver"):
        registry.register("milp", "exact", "an impostor")(type("Impostor", (_Toy,), {}))


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "magic"}, r"kind 'magic' \(expected one of exact, heuristic, baseline\)"),
    ({"objectives": ("min-gpus", "fewest-watts")}, r"objective 'fewest-watts' \(known: min-gpus"),
])
def test_a_bad_declaration_is_refused_at_import(clean_registry, kwargs, message):
    """A kind outside exact/heuristic/baseline was accepted as it stood; objectives given as strings (the docs'
    `objectives=(...)`) were accepted, then `stsched solvers --json` died with an AttributeError ('str' object has
    no attribute 'value').  Now the kind is checked and the objectives parsed at the declaration."""
    kind = kwargs.pop("kind", "heuristic")
    with pytest.raises(ValueError, match=message):
        registry.register("toy-bad", kind, "a toy", **kwargs)(type("Toy", (_Toy,), {}))
    assert "toy-bad" not in registry.REGISTRY


def test_objectives_as_strings_are_parsed(clean_registry):
    cls = registry.register("toy-strings", "heuristic", "a toy", objectives=("min-gpus",))(type("Toy", (_Toy,), {}))
    assert cls.solver_info.objectives == (registry.Objective.MIN_GPUS,)
    assert cls.solver_info.to_dict()["objectives"] == ["min-gpus"]


def test_an_option_without_a_default_is_a_declaration_error(clean_registry):
    """An options field without a default was accepted (listed with default None); `stsched solve --solver x`
    given no --param then said "bad option value: __init__() missing 1 required positional argument", blaming the
    user for the plugin's declaration.  Now the declaration is refused at import, naming the field."""
    import dataclasses

    opts = dataclasses.make_dataclass("NoDefault", [("k", int)], frozen=True)
    with pytest.raises(TypeError, match=r"NoDefault\.k: an option needs a default"):
        registry.register("toy-nodefault", "heuristic", "a toy", options=opts)(type("Toy", (_Toy,), {}))


def test_a_plugin_that_failed_to_load_is_named_as_such(plugin_world, tmp_path, capsys):
    """An installed plugin whose import failed was "unknown solver 'broken' (known: ...)" when asked for by name
    (`stsched solve --solver broken`, `st.solve`), blaming the name the user typed; the reason was only in a warning
    line above.  Now the refusal says it is installed but failed to load, and why."""
    from stsched.io import save_instance
    from tests.conftest import run_cli

    registry.available_solvers()
    with pytest.raises(registry.InputError, match=r"solver 'broken' .*failed to load: .*this plugin is broken"):
        registry.get_solver("broken")
    save_instance(gpulet_mix("m2", 4), tmp_path / "i.json")
    code, text = run_cli(capsys, "solve", str(tmp_path / "i.json"), "--solver", "broken")
    assert code == 2 and "failed to load" in text and "this plugin is broken" in text, text
    with pytest.raises(registry.InputError, match=r"unknown solver 'nope' \(known: "):
        registry.get_solver("nope")


def test_a_third_party_engine_reaches_the_solver_from_the_command_line(clean_registry, tmp_path, capsys):
    """`register(..., engines=("fast", "slow"))` is the documented way to let `--engine` choose inside a solver, but
    `stsched solve --engine` accepted only cbc and highs (argparse choices), so a third party's engine was refused
    before the registry saw it ("invalid choice: 'slow'").  Now the registry checks the engine per solver."""
    from stsched.io import save_instance
    from tests.conftest import run_cli

    seen = []

    class Toy:
        def solve(self, instance, options):
            seen.append(options.engine)
            return registry.SolveResult("toy-engines", registry.Status.UNKNOWN)

    registry.register("toy-engines", "heuristic", "a toy", engines=("fast", "slow"))(Toy)
    save_instance(gpulet_mix("m2", 2), tmp_path / "i.json")
    code, text = run_cli(capsys, "solve", str(tmp_path / "i.json"), "--solver", "toy-engines", "--engine", "slow")
    assert seen == ["slow"] and code == 1, text
    code, text = run_cli(capsys, "solve", str(tmp_path / "i.json"), "--solver", "toy-engines", "--engine", "cbc")
    assert code == 2 and "its engines: fast, slow" in text and seen == ["slow"], text
    code, text = run_cli(capsys, "solve", str(tmp_path / "i.json"), "--solver", "heuristic", "--engine", "slow")
    assert code == 2 and "takes no --engine" in text, text


def _toy_solver(name: str, cls: str, doc: str) -> str:
    """The source of a plugin module registering a toy solver `cls` under `name` (it answers UNKNOWN)."""
    return textwrap.dedent(f'''
        from stsched.registry import SolveResult, Status, register

        @register({name!r}, "heuristic", {doc!r})
        class {cls}:
            def solve(self, instance, options):
                return SolveResult(self.name, Status.UNKNOWN)
    ''')

def test_a_third_party_entry_point_with_a_shipped_name_loses_to_the_shipped_solver(tmp_path, monkeypatch, caplog):
    """Two installed entry points named "heuristic" (ours and a third party's): the shipped solver keeps the name,
    whatever the order the entry points come in, and the third party's is skipped with a warning naming why (with
    a check against every entry point, each refused the other and neither loaded)."""
    (tmp_path / "impostor_solver.py").write_text(_toy_solver("heuristic", "Impostor", "an impostor"))
    monkeypatch.syspath_prepend(str(tmp_path))
    ours = list(md.entry_points(group=registry.ENTRY_POINT_GROUP))
    theirs = [md.EntryPoint("heuristic", "impostor_solver:Impostor", registry.ENTRY_POINT_GROUP)]
    for order in (theirs + ours, ours + theirs):
        monkeypatch.setattr(md, "entry_points", lambda group=None, eps=order: eps)
        monkeypatch.setattr(registry, "REGISTRY", {})
        monkeypatch.setattr(registry, "_LOADED", False)
        sys.modules.pop("impostor_solver", None)
        solvers = registry.available_solvers()
        assert solvers["heuristic"].factory.__module__ == "stsched.heuristic.solver"
        assert "failed to load" in caplog.text and "impostor_solver" in caplog.text
    sys.modules.pop("impostor_solver", None)


def test_a_third_party_entry_point_may_name_a_re_exported_class(tmp_path, monkeypatch):
    """A plugin's entry point `one = "reexport_pkg:OneSolver"`, the class defined in reexport_pkg/solver.py and
    re-exported by the package's __init__, was refused ("register reexport_pkg.solver:OneSolver under another
    name"): the entry point's text was compared with where the class is defined.  Only the shipped entry points'
    spellings are compared now (a shipped name wins whatever the import order); any importable spelling of a third
    party's class loads."""
    pkg = tmp_path / "reexport_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from reexport_pkg.solver import OneSolver\n")
    (pkg / "solver.py").write_text(_toy_solver("one-reexported", "OneSolver",
                                               "a third party's toy, re-exported by its package"))
    monkeypatch.syspath_prepend(str(tmp_path))
    ours = list(md.entry_points(group=registry.ENTRY_POINT_GROUP))
    theirs = [md.EntryPoint("one-reexported", "reexport_pkg:OneSolver", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(md, "entry_points", lambda group=None: ours + theirs)
    monkeypatch.setattr(registry, "REGISTRY", {})
    monkeypatch.setattr(registry, "FAILED", {})
    monkeypatch.setattr(registry, "_LOADED", False)
    try:
        solvers = registry.available_solvers()
        assert "one-reexported" not in registry.FAILED, registry.FAILED.get("one-reexported")
        assert solvers["one-reexported"].factory.__module__ == "reexport_pkg.solver"
    finally:
        for mod in ("reexport_pkg", "reexport_pkg.solver"):
            sys.modules.pop(mod, None)
