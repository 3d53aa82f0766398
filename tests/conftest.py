"""Shared fixtures: small hand-made instances whose numbers can be checked by hand."""

from __future__ import annotations

import contextlib

import pytest

from stsched.devices import DEVICES, mig_mechanism, mps_mechanism
from stsched.problem import (Instance, Interference, LatencyTable, Margin, ProfileEntry, Service, ThroughputRule)


def linear_table(model: str, sizes, batches, base_ms: float, per_sample_ms: float, l2=0.3, dram=0.4,
                 procs=(1,), throughput=False) -> LatencyTable:
    """latency(b, p) = (base + per_sample * b) * 100 / p, a simple monotone table."""
    entries = []
    for p in sizes:
        for b in batches:
            for k in procs:
                lat = (base_ms + per_sample_ms * b) * 100.0 / p * (1 + 0.5 * (k - 1))
                thr = 1000.0 * b / lat if throughput else None
                entries.append(ProfileEntry(b, float(p), k, lat, thr, l2, dram))
    return LatencyTable(model, tuple(entries))


def make_mps_instance(rates=(100.0, 50.0), slos=(50.0, 80.0), gpus=2, interference=Interference(),
                      margin=Margin(), memory=(1000.0, 2000.0)) -> Instance:
    sizes = (20.0, 40.0, 50.0, 60.0, 80.0, 100.0)
    batches = (1, 2, 4, 8)
    services = tuple(Service(f"s{i}", f"m{i}", r, slo, mem) for i, (r, slo, mem) in enumerate(zip(rates, slos, memory)))
    tables = tuple(linear_table(f"m{i}", sizes, batches, 2.0 + i, 1.0 + 0.5 * i) for i in range(len(rates)))
    return Instance("tiny-mps", services, DEVICES["a100-80gb"], mps_mechanism(sizes, max_partitions=2, max_tenants=3),
                    gpus, batches, tables, margin, interference)


def make_mig_instance(rates=(300.0,), slos=(60.0,), gpus=1) -> Instance:
    sizes = (1, 2, 3, 4, 7)
    batches = (1, 2, 4, 8)
    services = tuple(Service(f"s{i}", f"m{i}", r, slo, 500.0) for i, (r, slo) in enumerate(zip(rates, slos)))
    tables = tuple(linear_table(f"m{i}", [s * 100 / 7 for s in sizes], batches, 2.0, 1.0, procs=(1, 2, 3),
                                throughput=True) for i in range(len(rates)))
    # rename sizes to MIG units
    tables = tuple(LatencyTable(t.model, tuple(ProfileEntry(e.batch, round(e.size * 7 / 100), e.procs, e.latency_ms,
                                                            e.throughput_rps, None, None) for e in t.entries))
                   for t in tables)
    return Instance("tiny-mig", services, DEVICES["a100-80gb"], mig_mechanism(3), gpus, batches, tables,
                    Margin(slo_factor=0.9), Interference(), ThroughputRule.MEASURED)


@pytest.fixture
def mps_instance() -> Instance:
    return make_mps_instance()


@pytest.fixture
def mig_instance() -> Instance:
    return make_mig_instance()


def small_inst_and_plan(d) -> dict[str, str]:
    """`make_mps_instance` and a valid one-GPU plan for it, saved in folder `d` (the hostile CLI tests' files)."""
    from stsched.io import save_instance, save_plan
    from stsched.plan import GpuLayout, Partition, Plan, Tenant

    save_instance(make_mps_instance(), d / "inst.json")
    save_plan(Plan((GpuLayout((Partition(50.0, (Tenant("s0", 4, 100.0), Tenant("s1", 2, 50.0)), 24.0),)),)),
              d / "plan.json")
    return {"dir": str(d), "inst": str(d / "inst.json"), "plan": str(d / "plan.json")}


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """`stsched ARGV` in process: (exit code, stdout + stderr); never a traceback, and bad input (exit 2) is one
    line on stderr."""
    from stsched.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    if code == 2:
        assert len(out.err.strip().splitlines()) == 1, out.err
    return code, text


def counts_csv(minutes=range(480, 500), rows=((5,) * 20, (3,) * 20)) -> str:
    """A count trace's invocations.csv text: one row per function, one column per minute."""
    head = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(map(str, minutes))
    return "\n".join([head, *(f"o,a,f{i},http," + ",".join(map(str, r)) for i, r in enumerate(rows))]) + "\n"


@contextlib.contextmanager
def count_trace(root, monkeypatch, text: str):
    """$STSCHED_DATA at `root`, whose traces/azure-functions-2019/invocations.csv is `text`; the count-trace cache
    cleared on entry and on exit."""
    import stsched.data.loaders  # noqa: F401  its DATA_DIR is read from $STSCHED_DATA at import: not inside this
    from stsched.simulation.traces import load_count_trace

    folder = root / "traces" / "azure-functions-2019"
    folder.mkdir(parents=True)
    (folder / "invocations.csv").write_text(text)
    monkeypatch.setenv("STSCHED_DATA", str(root))
    load_count_trace.cache_clear()
    try:
        yield
    finally:
        load_count_trace.cache_clear()
