"""The layers only point down (docs/ARCHITECTURE.md, "Layers"): an AST walk over every import in the tree, those
inside functions included, fails on any that points up or sideways between plugins."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("stsched", "solvers", "profiler", "experiments")

# plugins: each is its own island (a solver never imports another solver)
PLUGINS = ("solvers.exact", "solvers.baselines", "stsched.heuristic")
# what may be imported from each layer (by module prefix); the first matching layer of a module applies
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("experiments", ()),  # the top: imports anything
    ("stsched.commands.experiment", ()),  # `stsched experiment` runs the studies: the top, like experiments/
    ("stsched.cli", ("experiments",)),
    ("stsched.commands", ("experiments",)),
    ("stsched.api", ("experiments", "stsched.commands", "stsched.cli")),
    ("stsched.planning", ("experiments", "stsched.commands", "stsched.cli", "stsched.api") + PLUGINS),
    ("stsched.executor", ("experiments", "stsched.commands", "stsched.cli", "stsched.api", "stsched.planning")
     + PLUGINS),
    ("profiler", ("experiments", "stsched.commands", "stsched.cli", "stsched.api", "stsched.planning",
                  "stsched.executor") + PLUGINS),
)
PLUGIN_FORBIDDEN = ("experiments", "stsched.commands", "stsched.cli", "stsched.api", "stsched.planning",
                    "stsched.executor", "profiler")
CORE_FORBIDDEN = PLUGIN_FORBIDDEN + PLUGINS  # stsched below the planning layer knows no solver


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return [(ln, m) for ln, m in out if m.split(".")[0] in PACKAGES]


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def forbidden_for(module: str) -> tuple[str, ...]:
    for prefix, banned in LAYERS:
        if _within(module, prefix):
            return banned
    for plugin in PLUGINS:
        if _within(module, plugin):
            return PLUGIN_FORBIDDEN + tuple(p for p in PLUGINS if p != plugin)
    if _within(module, "solvers"):  # the package itself (docstring only)
        return PLUGIN_FORBIDDEN
    return CORE_FORBIDDEN


def violations() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            me = _module_name(path)
            banned = forbidden_for(me)
            for line, target in _imports(path):
                if any(_within(target, b) for b in banned):
                    out.append(f"{path.relative_to(ROOT)}:{line}: {me} imports {target}")
    return out


def test_no_module_imports_up_a_layer():
    bad = violations()
    assert not bad, "imports that point up a layer:\n" + "\n".join(bad)


@pytest.mark.parametrize("module, target, allowed", [
    ("stsched.checker", "solvers.exact.milp", False),
    ("stsched.simulation.engine", "stsched.planning.attainment", False),
    ("solvers.exact.milp", "stsched.heuristic.adapt", False),
    ("solvers.baselines.gpulet", "solvers.exact.patterns", False),
    ("solvers.exact.milp", "solvers.exact.patterns", True),
    ("stsched.planning.adapt.policies", "stsched.registry", True),
    ("stsched.planning.adapt.policies", "solvers.exact.milp", False),
    ("experiments.scale_eval", "solvers.exact.milp", True),
])
def test_the_layer_rules_themselves(module, target, allowed):
    assert (not any(_within(target, b) for b in forbidden_for(module))) == allowed
