"""The ray runner (one local Ray instance of 2 CPUs for the module): a small grid's rows equal the local runner's
(timing columns aside), failures are error rows, and the sharded simulator on Ray merges to the local result."""

from __future__ import annotations

import time

import pytest

ray = pytest.importorskip("ray")

from experiments.common import run_grid  # noqa: E402
from experiments.runners import RUN_ERROR, Runner, init_ray  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    init_ray(None, num_cpus=2)
    yield
    ray.shutdown()


def bound_point(p):
    from stsched.bounds import lp_bound_gpus
    from stsched.scenarios import random_instance

    if p["seed"] == 99:
        raise ValueError("no such seed")
    t0 = time.perf_counter()
    inst = random_instance(int(p["services"]), 2, int(p["seed"]))
    return {"bound": lp_bound_gpus(inst), "rate": sum(s.rate for s in inst.services), "valid": True,
            "wall_s": time.perf_counter() - t0}


def test_ray_rows_equal_local_rows(tmp_path, monkeypatch):
    monkeypatch.setenv("STSCHED_RESULTS", str(tmp_path))
    grid = [{"services": n, "seed": s} for n in (4, 8) for s in (1, 2, 99)]
    local = run_grid("local", grid, ["services", "seed"], bound_point, runner=Runner("local", jobs=2))
    remote = run_grid("ray", grid, ["services", "seed"], bound_point, runner=Runner("ray", jobs=2))
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_s"} for r in rows]  # noqa: E731
    assert strip(remote) == strip(local)
    assert [r[RUN_ERROR] for r in remote] == ["", "", "ValueError: no such seed"] * 2
    assert all(r["valid"] == "True" for r in remote if not r[RUN_ERROR])


def test_sharded_simulation_on_ray_equals_local():
    from stsched.registry import SolveOptions, run_solver
    from stsched.scenarios import random_instance
    from stsched.simulation.stream import StreamOptions, simulate_stream

    inst = random_instance(12, 2, 3).with_gpus(8)
    plan = run_solver("heuristic", inst, SolveOptions(time_limit_s=30, seed=3)).result.plan
    local = simulate_stream(inst, plan, StreamOptions(duration_s=20, seed=4, shards=1))
    remote = simulate_stream(inst, plan, StreamOptions(duration_s=20, seed=4, shards=2, runner="ray"))
    assert remote.shards == 2 and remote.summary.to_dict() == local.summary.to_dict()
