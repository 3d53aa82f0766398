"""`simulate --records F`: a run whose records cannot fit (in memory, where the streaming simulator holds them, or
on disk) is refused before any work, exit 2 with the estimate and the limit; a run that fits writes them."""

from __future__ import annotations

import collections

import pytest

import stsched.simulation.records_csv as rc
from stsched.cli import main
from stsched.io import save_instance, save_plan
from stsched.plan import GpuLayout, Partition, Plan, Tenant
from tests.conftest import make_mps_instance


@pytest.fixture
def files(tmp_path):
    save_instance(make_mps_instance(), tmp_path / "inst.json")  # 150 req/s in all
    save_plan(Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),)),
              tmp_path / "plan.json")
    return tmp_path


def _no_simulation(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("simulated before the check")
    monkeypatch.setattr("stsched.simulation.simulate", boom)
    monkeypatch.setattr("stsched.simulation.stream.simulate_stream", boom)


def test_stream_records_beyond_memory_are_refused_first(files, capsys, monkeypatch):
    _no_simulation(monkeypatch)
    monkeypatch.setattr(rc, "available_bytes", lambda: 10 * 2 ** 20)  # 10 MiB: 150 req/s x 1000 s x 160 B is more
    argv = ["simulate", str(files / "inst.json"), str(files / "plan.json"), "--duration", "1000", "--shards", "1",
            "--records", str(files / "r.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--records" in err and "1.5e+05 requests in memory" in err and "0.01 GiB available" in err, err
    assert len(err.strip().splitlines()) == 1 and not (files / "r.csv").exists()


@pytest.mark.parametrize("shards", [[], ["--shards", "1"]])
def test_records_beyond_the_free_disk_are_refused_first(files, capsys, monkeypatch, shards):
    _no_simulation(monkeypatch)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(rc.shutil, "disk_usage", lambda p: usage(2 ** 30, 2 ** 30 - 2 ** 20, 2 ** 20))  # 1 MiB
    argv = ["simulate", str(files / "inst.json"), str(files / "plan.json"), "--duration", "1000",
            "--records", str(files / "r.csv"), *shards]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "1.5e+05 requests need at least" in err and "0.00 GiB free" in err, err
    # a character device takes any number of bytes; a short run fits
    monkeypatch.undo()
    assert main(argv[:4] + ["1", "--records", "/dev/null", *shards]) == 0
    assert main(argv[:4] + ["1", "--records", str(files / "r.csv"), *shards]) == 0
    lines = (files / "r.csv").read_text().splitlines()
    assert lines[0].startswith("service,arrival_s") and 100 < len(lines) < 200
