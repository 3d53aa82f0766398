"""Session 19, issue 17 ("bad input and honesty"), the tidy-ups beside the exact solvers' tolerance edge: the bound
command's provider check once, the LNS pool's column memory reused, one memory rule.  Each docstring says what
happened before."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stsched.scenarios import random_instance


def test_the_bound_command_checks_its_provider_once(tmp_path, monkeypatch):
    """`stsched bound` checked the provider before the load and again inside `run_bound`."""
    from stsched import registry
    from stsched.cli import main
    from stsched.commands import bound as bound_command
    from stsched.io import save_instance

    calls = []
    real = registry.check_bound_provider

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(registry, "check_bound_provider", counted)
    monkeypatch.setattr(bound_command, "check_bound_provider", counted)
    path = tmp_path / "i.json"
    save_instance(random_instance(3, 2, 1), path)
    assert main(["bound", str(path), "--method", "cg", "--time-limit", "20", "--json"]) == 0
    assert calls == ["cg"]


def test_pool_columns_reuse_the_memory_of_a_column_that_keeps_every_tenant(monkeypatch):
    """`pool_columns` recomputed every column's memory, also where no tenant was dropped (the column's own then)."""
    from solvers.exact import cg_lns, patterns
    from solvers.exact.patterns import Config

    inst = random_instance(3, 2, 1)
    whole = Config(inst.mechanism.sizes[0], 1, ((0, 1),), (5.0,), 123.0)  # (a memory only this column knows)
    cut = Config(inst.mechanism.sizes[0], 1, ((0, 1), (2, 1)), (5.0, 6.0), 456.0)
    sub = replace(inst, services=inst.services[:2])
    computed = []
    real = patterns._memory
    monkeypatch.setattr(patterns, "_memory", lambda *a: computed.append(a[1:]) or real(*a))
    cols = cg_lns.pool_columns(inst, sub, [whole])
    assert [c.memory_mb for c in cols] == [123.0] and not computed
    cols = cg_lns.pool_columns(inst, sub, [cut])  # (s2 dropped: recomputed, s0 at batch 1 alone)
    assert [c.memory_mb for c in cols] == [real(sub, 1, [(sub.service_names[0], 1)])] and len(computed) == 1


@pytest.mark.parametrize("device", ["a100-mps", "a100-mig"])
def test_every_memory_limit_is_the_checkers(device):
    """The heuristic, the exact solvers' preparation and reconfig wrote `memory_mb * memory_cap` by hand; now
    `stsched.checker.memory_limit_mb` / `gpu_memory_limit_mb`, here at a memory_cap of 0.9.  The GPU's limit is a
    guard (the hand formula gives the same value); on MIG the slices' limits can fail: the table's slice memory is
    not the proportional share `memory_mb * memory_cap * size / capacity` a hand formula would write (asserted)."""
    from stsched.checker import gpu_memory_limit_mb, memory_limit_mb
    from stsched.heuristic.model import build_context
    from stsched.heuristic.options import HeuristicOptions

    inst = random_instance(3, 2, 1, device)
    inst = replace(inst, device=replace(inst.device, memory_cap=0.9))
    assert gpu_memory_limit_mb(inst) == pytest.approx(inst.device.memory_mb * 0.9)
    model = build_context(inst, HeuristicOptions())
    assert model.gpu_memory() == gpu_memory_limit_mb(inst)
    for size in inst.mechanism.sizes:
        want = memory_limit_mb(inst, size) if device == "a100-mig" else None
        assert model.slice_memory(size) == want
    if device == "a100-mig":
        share = [inst.device.memory_mb * 0.9 * s / inst.mechanism.capacity for s in inst.mechanism.sizes]
        assert any(memory_limit_mb(inst, s) != pytest.approx(v) for s, v in zip(inst.mechanism.sizes, share))
