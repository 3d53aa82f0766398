"""The documents' Python blocks as an outsider reads them: every import a ```python block of README.md or docs/*.md
writes resolves (the README's whole block runs in tests/packaging/test_wheel.py; the others need data or minutes,
so here only what they import).  Session 16: docs/HEURISTIC.md's "Public API for re-planning" imported
`layout_changes` from `stsched.heuristic`, an ImportError (it lives in `stsched.plan`, the one reconfiguration
measure)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _imports():
    for doc in DOCS:
        for block in BLOCK.findall(doc.read_text()):
            for node in ast.walk(ast.parse(block)):
                if isinstance(node, ast.ImportFrom):
                    yield pytest.param(node.module, [a.name for a in node.names], id=f"{doc.name}:{node.module}")
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        yield pytest.param(alias.name, [], id=f"{doc.name}:{alias.name}")


@pytest.mark.parametrize("module, names", list(_imports()))
def test_a_documented_import_resolves(module, names):
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module} has no {', '.join(missing)}"


def test_the_blocks_were_found():
    assert len(list(_imports())) >= 6  # README, HEURISTIC, LATENCY, SIMULATOR: a broken pattern must not pass
