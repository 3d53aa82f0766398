"""An interrupt that lands while a plugin's extension module initialises (session 12, hostile tester): ortools'
cp_model turned it into `ImportError: initialization failed` (context: the KeyboardInterrupt), which the registry
logged as a broken plugin, and `stsched simulate` ran on to the end, exit 0 (found by SIGINT 4 s into a run on the
loaded machine).  Now the interrupt goes on up."""

from __future__ import annotations

import importlib.metadata as md

import pytest

from stsched import registry
from stsched.errors import reraise_interrupt


def _hidden_interrupt() -> ImportError:
    try:
        try:
            raise KeyboardInterrupt()
        except KeyboardInterrupt:
            raise ImportError("initialization failed")
    except ImportError as e:
        return e


def test_reraise_interrupt_finds_it_in_the_context_and_lets_other_errors_be():
    with pytest.raises(KeyboardInterrupt):
        reraise_interrupt(_hidden_interrupt())
    reraise_interrupt(ImportError("no module named x"))  # an ordinary failure: nothing raised
    try:
        raise RuntimeError("outer") from ValueError("inner")
    except RuntimeError as e:
        reraise_interrupt(e)


class _Interrupted(md.EntryPoint):
    def load(self):
        raise _hidden_interrupt()


def test_the_registry_does_not_swallow_an_interrupt_during_a_plugin_import(monkeypatch):
    ep = _Interrupted("slow-plugin", "nowhere:Nothing", registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(md, "entry_points", lambda group=None: [ep])
    monkeypatch.setattr(registry, "REGISTRY", {})
    monkeypatch.setattr(registry, "_LOADED", False)
    with pytest.raises(KeyboardInterrupt):
        registry.load_solvers()
