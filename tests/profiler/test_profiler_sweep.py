"""A real CPU sweep (2 tiny models x 2 batches x 2 thread counts + one co-run pair), its schema, resume, CLI."""

from __future__ import annotations

import argparse
import json
import os

import pandas as pd
import pytest

from stsched.errors import InputError

pytest.importorskip("torch")

from profiler.measure import TimingOptions  # noqa: E402
from profiler.partitions import get_backend  # noqa: E402
from profiler.sweep import SweepSpec, sweep  # noqa: E402
from stsched.data import read_corun_csv, read_solo_csv  # noqa: E402

THREADS = (1, 2) if len(os.sched_getaffinity(0)) >= 2 else (1,)
SPEC = SweepSpec(models=("resnet-tiny", "vgg-tiny"), batches=(1, 4), sizes=tuple(float(t) for t in THREADS),
                 timing=TimingOptions(warmup=1, repeats=3),
                 corun_sizes=((1.0, 1.0),) if len(THREADS) == 2 else (), corun_batches=(2,), corun_window_s=0.3,
                 progress=False)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpu-profile")
    result = sweep(get_backend("cpu"), SPEC, out)
    return out, result


def test_solo_rows_follow_the_schema_and_are_measured(swept):
    out, result = swept
    solo = read_solo_csv(out / "solo.csv")
    assert len(solo) == 2 * 2 * len(THREADS) == result.measured_solo
    assert set(solo["mechanism"]) == {"cpu"} and solo["device"].str.startswith("cpu-").all()
    assert set(solo["partition"]) == set(float(t) for t in THREADS) and set(solo["procs"]) == {1}
    assert (solo["latency_ms"] > 0).all()
    assert solo["throughput_rps"].to_numpy() == pytest.approx(1000 * solo["batch"] / solo["latency_ms"])
    assert solo["l2_util"].isna().all() and solo["dram_util"].isna().all()
    samples = json.loads((out / "samples.json").read_text())
    for row in solo.itertuples():
        key = f"solo|{row.device}|{row.mechanism}|{row.model}|{row.batch}|{row.partition}|{row.procs}"
        s = samples[key]
        assert len(s) == SPEC.timing.repeats
        assert row.latency_ms == pytest.approx(pd.Series(s).median())


def test_measured_noise_of_the_sweep(swept):
    """The simulator's measured noise is the median CV of the solo rows' repeats in samples.json."""
    from stsched.simulation.noise import measured_noise

    out, _ = swept
    solo = read_solo_csv(out / "solo.csv")
    samples = json.loads((out / "samples.json").read_text())
    cvs = [pd.Series(v).std() / pd.Series(v).mean() for k, v in samples.items() if k.startswith("solo|")]
    noise = measured_noise(out)
    assert noise.rows == len(solo) == len(cvs)
    assert noise.cv == pytest.approx(pd.Series(cvs).median()) and 0 <= noise.cv <= noise.p90_cv


def test_corun_rows_pair_up(swept):
    out, result = swept
    if not SPEC.corun_sizes:
        pytest.skip("one core: no co-run pair fits")
    corun = read_corun_csv(out / "corun.csv")
    # 2 models x 1 batch on each side = 4 ordered pairs, measured as 3 runs (the mirror of a mixed pair is free)
    assert len(corun) == 4 and result.measured_corun == 3
    assert (corun["victim_latency_ms"] > 0).all() and (corun["corunner_latency_ms"] > 0).all()
    mixed = corun[corun["victim"] != corun["corunner"]].set_index("victim")
    assert mixed.loc["vgg-tiny", "victim_latency_ms"] == mixed.loc["resnet-tiny", "corunner_latency_ms"]


def test_meta_records_the_machine(swept):
    out, _ = swept
    meta = json.loads((out / "meta.json").read_text())
    for key in ("device", "mechanism", "sm_count", "torch", "created", "timing", "backend", "workers"):
        assert key in meta
    assert meta["timing"]["statistic"] == "median" and meta["timing"]["repeats"] == 3
    assert meta["partition_sizes"] == sorted(float(t) for t in THREADS)
    assert meta["backend"]["timer"] == "perf_counter"
    assert {w["threads"] for w in meta["workers"].values()} == set(THREADS)


def test_resume_measures_only_what_is_missing(swept, monkeypatch):
    out, _ = swept
    backend = get_backend("cpu")
    monkeypatch.setattr(backend, "open", lambda sizes: pytest.fail("a complete sweep must not open partitions"))
    again = sweep(backend, SPEC, out)
    assert again.measured_solo == again.measured_corun == 0
    monkeypatch.undo()
    solo = read_solo_csv(out / "solo.csv")
    kept = solo.iloc[:-1]
    from stsched.data import write_table

    write_table(kept, out / "solo.csv")
    resumed = sweep(get_backend("cpu"), SPEC, out)
    assert resumed.measured_solo == 1
    new = read_solo_csv(out / "solo.csv")
    pd.testing.assert_frame_equal(new.iloc[:-1], kept)
    assert tuple(new.iloc[-1][["model", "batch", "partition"]]) == tuple(solo.iloc[-1][["model", "batch",
                                                                                       "partition"]])


def test_profile_is_fittable(swept):
    from stsched.latency import fit, predict

    out, _ = swept
    model = fit((read_solo_csv(out / "solo.csv"), None), dataset="cpu-test")
    assert model.models == ["resnet-tiny", "vgg-tiny"]
    pred = predict(model, ["resnet-tiny", "vgg-tiny"], [1, 4], [1.0, 1.0])
    assert (pred > 0).all()


def test_a_folder_of_another_device_is_refused(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"device": "h100-80gb-hbm3", "mechanism": "sm"}))
    with pytest.raises(InputError, match="h100"):
        sweep(get_backend("cpu"), SPEC, tmp_path)
    with pytest.raises(InputError, match="unknown model"):
        sweep(get_backend("cpu"), SweepSpec(models=("nope",), batches=(1,), sizes=(1.0,)), tmp_path)


def _cli(argv):
    from stsched.commands import profile

    parser = argparse.ArgumentParser()
    profile.add(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


def test_cli_profile_resumes_and_lists_backends(swept, capsys):
    out, _ = swept
    argv = ["profile", "--backend", "cpu", "--models", "resnet-tiny", "vgg-tiny", "--batches", "1", "4",
            "--sizes", *[str(t) for t in THREADS], "--out", str(out), "--repeats", "3", "--warmup", "1",
            "--corun-window", "0.3"]
    assert _cli(argv) == 0
    assert "0 solo and 0 co-run measurements" in capsys.readouterr().out
    assert _cli(["backends"]) == 0
    assert "cpu  available" in capsys.readouterr().out
    with pytest.raises(InputError, match="--corun"):
        _cli(argv + ["--corun", "1"])
    # a resume with other measurement arguments would mix rows timed two ways: refused, the difference named
    with pytest.raises(InputError, match=r"timing.repeats 3 -> 5"):
        _cli(argv + ["--repeats", "5"])
