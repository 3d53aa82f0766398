"""`stsched show`'s picture (stsched.view_picture): labels only where they fit, identical neighbours labelled once,
few artists; the command leaves the garbage collector as it found it."""

from __future__ import annotations

import gc

import pytest
from tests.cli.test_show_export import _big, _files

from stsched.cli import main
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from stsched.view import plan_view
from stsched.view_picture import EM, LABEL_PT, _figure, first_fit, fits, runs, sole_key, sole_text


def test_fits_counts_the_longest_line():
    assert fits("ab\nabcdef", 6 * LABEL_PT * EM + 4)
    assert not fits("ab\nabcdefg", 6 * LABEL_PT * EM + 4)
    assert first_fit(("a long label", "short", "s"), 5 * LABEL_PT * EM + 4) == "short"
    assert first_fit(("a long label",), 1.0) is None


def _sole_plan(mps_instance):
    """GPU 0: s0 in three 20 % partitions side by side, then s1 in one; GPU 1: s0, s1, s0 (no run)."""
    def part(svc, rate):
        return Partition(20.0, (Tenant(svc, 4, rate),), duty_ms=mps_instance.solo_ms(svc, 4, 20.0))

    return Plan((GpuLayout((part("s0", 1.0), part("s0", 1.0), part("s0", 1.0), part("s1", 1.0))),
                 GpuLayout((part("s0", 1.0), part("s1", 1.0), part("s0", 1.0)))))


def test_identical_neighbours_form_one_run(mps_instance):
    view = plan_view(mps_instance, _sole_plan(mps_instance))
    g0, g1 = view.gpus
    assert all(sole_key(p) is not None for p in g0)
    assert [len(r) for r in runs(g0)] == [3, 1]
    assert [len(r) for r in runs(g1)] == [1, 1, 1]
    text = sole_text(g0[0], 1000.0, 3)
    assert text.startswith("s0 b4 \u00d73\n20 % each:")


def test_a_time_shared_partition_is_never_part_of_a_run(mps_instance):
    shared = Partition(50.0, (Tenant("s0", 4, 1.0), Tenant("s1", 2, 1.0)), duty_ms=40.0)
    view = plan_view(mps_instance, Plan((GpuLayout((shared, shared)),)))
    assert [sole_key(p) for p in view.gpus[0]] == [None, None]
    assert [len(r) for r in runs(view.gpus[0])] == [1, 1]


def test_every_label_of_a_32_gpu_plan_fits_its_box_and_artists_are_few():
    inst, plan = _big(32)
    view = plan_view(inst, plan)
    fig = _figure(view)
    ax = fig.axes[0]
    # one text per GPU name, per service name and per partition label at most; no per-tenant field artists
    assert len(fig.texts) <= len(view.gpus) * 3 + len(view.services)
    unit_pt = ax.get_position().width * 15.0 * 72 / (ax.get_xlim()[1] - ax.get_xlim()[0])
    sizes = sorted({p.size for parts in view.gpus for p in parts})
    inside = [t for t in fig.texts if t.get_transform() == ax.transData and t.get_position()[0] > 0]
    assert inside, "no partition is labelled"
    for t in inside:
        assert fits(t.get_text(), max(sizes) * unit_pt), t.get_text()


@pytest.mark.parametrize("enabled", [True, False])
def test_show_restores_the_collector_and_freezes_nothing_in_process(tmp_path, enabled):
    inst, plan = _big(2)
    i, p = _files(tmp_path, inst, plan)
    frozen = gc.get_freeze_count()
    was = gc.isenabled()
    try:
        if not enabled:
            gc.disable()
        assert main(["show", i, p, "--out", str(tmp_path / "x.png")]) == 0
        assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()
    assert gc.get_freeze_count() == frozen  # only the `stsched` process itself freezes before it exits
