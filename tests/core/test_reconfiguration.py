"""The one reconfiguration measure (stsched.plan) and `stsched check --current`."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from stsched.cli import main
from stsched.io import save_plan
from stsched.plan import (GpuLayout, Partition, Plan, Reconfiguration, Tenant, changed_gpus, layout_changes,
                          tenant_changes)


def gpu(*parts: tuple[float, str]) -> GpuLayout:
    return GpuLayout(tuple(Partition(size, (Tenant(svc, 4, 10.0),) if svc else ()) for size, svc in parts))


def test_empty_partitions_are_not_part_of_a_layout():
    assert gpu((50.0, "a"), (50.0, "")).layout() == (50.0,)
    assert layout_changes(Plan((gpu((50.0, "a"), (50.0, "")),)), Plan((gpu((50.0, "a")),))) == 0


def test_switching_a_gpu_on_or_off_is_a_change_and_tenant_changes_count_on_kept_layouts_only():
    old = Plan((gpu((50.0, "a"), (50.0, "b")), gpu((100.0, "c"))))
    new = Plan((gpu((50.0, "a"), (50.0, "c")), GpuLayout(), gpu((100.0, "b"))))
    r = Reconfiguration.between(old, new)
    assert (r.layout_changes, r.tenant_changes, r.changed_gpus) == (2, 1, (2,))
    assert (r.gpus_before, r.gpus_after) == (2, 2)


sizes = st.sampled_from([20.0, 40.0, 50.0, 60.0, 100.0])
layouts = st.lists(st.tuples(sizes, st.sampled_from(["", "a", "b", "c"])), max_size=3).map(lambda ps: gpu(*ps))
plans = st.lists(layouts, max_size=4).map(lambda gs: Plan(tuple(gs)))


@settings(max_examples=60, deadline=None)
@given(plans, plans)
def test_measure_is_a_metric_on_layouts_by_index(a, b):
    assert layout_changes(a, a) == 0 and tenant_changes(a, a) == 0
    assert layout_changes(a, b) == layout_changes(b, a)
    assert len(changed_gpus(a, b)) <= layout_changes(a, b)
    assert layout_changes(a, b) <= max(len(a.gpus), len(b.gpus))


def test_check_current_reports_the_reconfiguration(tmp_path, capsys):
    assert main(["scenario", "gpulet-m2", "--gpus", "2", "--out", str(tmp_path / "i.json")]) == 0
    assert main(["solve", str(tmp_path / "i.json"), "--out", str(tmp_path / "p.json")]) == 0
    capsys.readouterr()
    assert main(["check", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--current",
                 str(tmp_path / "p.json"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["reconfiguration"]["layout_changes"] == 0 and d["reconfiguration"]["tenant_changes"] == 0
    save_plan(Plan(()), tmp_path / "empty.json")
    assert main(["check", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--current",
                 str(tmp_path / "empty.json"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["reconfiguration"]["layout_changes"] == d["reconfiguration"]["gpus_after"] >= 1  # every GPU switched on
