"""Importers: row counts, units, re-import of the raw copies equals the shipped tables, bad input is named."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stsched.data import (
    PARVAGPU_SHIPPED_SCENARIOS,
    data_dir,
    import_gpulet_a100,
    import_glet_util,
    import_igniter,
    import_parvagpu,
    import_profiler,
    list_datasets,
    read_glet_slos_and_mixes,
    read_parvagpu_deployment,
    read_parvagpu_scenarios,
    rebuild_dataset,
    run_import,
)
from stsched.errors import InputError

PROF = data_dir() / "profiles"
GPULET = PROF / "a100-mps" / "raw" / "third_party_0909wlgur_Gpulet" / "data"
GLET = PROF / "glet-2080ti" / "raw" / "casys-kaist_glet" / "resource"
IGN = PROF / "v100-mps" / "raw"
PARVA = PROF / "a100-mig" / "raw"
H200 = PROF / "h200-sm" / "raw"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def a100():
    return import_gpulet_a100(GPULET / "inference.csv", GPULET / "mem_util.csv", GPULET / "interference.csv")


@pytest.fixture(scope="module")
def parva():
    return import_parvagpu(PARVA / "prof_data")


# ----------------------------------------------------------------------------------------------- counts, units
def test_a100_mps_counts_and_units(a100):
    solo, corun = a100.solo, a100.corun
    assert len(solo) == 420 and a100.skipped == 0  # every row has valid_flag 1 in this copy
    assert len(corun) == 2450
    assert solo["model"].nunique() == 10 and set(solo["partition"]) == {20.0, 40.0, 50.0, 60.0, 80.0, 100.0}
    first = solo.iloc[0]  # raw: vgg16,1,20,throughput,220.496,latency,0.0045352,1 ; mem 7.35 % DRAM, 7.07 % L2
    assert (first["model"], first["batch"], first["partition"]) == ("vgg16", 1, 20.0)
    assert first["latency_ms"] == pytest.approx(4.5352)
    assert first["throughput_rps"] == 220.496
    assert first["dram_util"] == pytest.approx(0.0735) and first["l2_util"] == pytest.approx(0.0707)
    assert solo[["l2_util", "dram_util"]].notna().all().all()
    # throughput (samples/s) and latency (ms per batch) agree: 1000 * batch / latency
    assert np.allclose(solo["throughput_rps"], 1000 * solo["batch"] / solo["latency_ms"], rtol=1e-4)
    assert (corun["victim_partition"] + corun["corunner_partition"] == 100).all()
    assert set(corun["victim"]) == {"densenet121", "resnet50"}  # vgg19 victims are held back
    assert "vgg19" in set(corun["corunner"])
    assert corun["corunner_latency_ms"].isna().all()
    assert corun.iloc[0]["victim_latency_ms"] == pytest.approx(7.22)  # raw 0.00722 s


def test_glet_util_tables():
    for gpu, dev in (("2080ti", "rtx2080ti"), ("3080", "rtx3080")):
        res = import_glet_util(GLET / gpu / "UTIL.CSV", dev)
        solo = res.solo
        assert len(solo) == 90 and res.corun is None
        assert solo["latency_ms"].isna().all() and solo["throughput_rps"].isna().all()
        assert (solo["partition"] == 100).all() and (solo["device"] == dev).all()
        assert "ssd-mobilenetv1" in set(solo["model"]) and "ssd" not in set(solo["model"])
        assert solo["l2_util"].between(0, 1).all() and solo["dram_util"].between(0, 1).all()
    first = import_glet_util(GLET / "2080ti" / "UTIL.CSV", "rtx2080ti").solo.iloc[0]
    assert first["l2_util"] == pytest.approx(0.14006191661801928) and first["dram_util"] == pytest.approx(0.3031561936)


def test_igniter_counts_pairs_and_json_layout():
    res = import_igniter(IGN / "derived" / "gpulet_config_solo.csv", IGN / "derived" / "gpulet_config_pairs.csv")
    assert len(res.solo) == 648 and len(res.corun) == 750  # 375 pairs -> 2 rows each
    c = res.corun
    a, b = c.iloc[0::2].reset_index(drop=True), c.iloc[1::2].reset_index(drop=True)
    assert (a["victim"] == b["corunner"]).all() and (a["victim_latency_ms"] == b["corunner_latency_ms"]).all()
    assert (c["victim_partition"] + c["corunner_partition"] == 100).all()
    assert "ssd" not in set(c["victim"]) | set(c["corunner"])  # ssd pairs are held back
    assert res.solo["l2_util"].max() < 1 and res.solo.iloc[1]["l2_util"] == pytest.approx(0.05008361128746062)
    # The raw JSON-lines layout gives the same solo table, except 8 throughputs that gpulet2.config has 32x.
    js = import_igniter(IGN / "i-Gniter" / "Profile" / "tools" / "gpulet2.config").solo
    pd.testing.assert_frame_equal(js.drop(columns="throughput_rps"), res.solo.drop(columns="throughput_rps"))
    diff = js["throughput_rps"] != res.solo["throughput_rps"]
    assert diff.sum() == 8 and np.allclose(js["throughput_rps"][diff] / res.solo["throughput_rps"][diff], 32)
    assert set(res.solo.loc[diff, "partition"]) == {10.0, 100.0} and set(res.solo.loc[diff, "batch"]) == {1}


def test_igniter_json_pairs(tmp_path):
    cfg = tmp_path / "gpulet.config"
    lines = [{"m1": {"latency": {"2": {"40": 1.5}}, "throughput": {"2": {"40": 1300.0}}}},
             {"m2": {"latency": {"2": {"60": 2.5}}}},
             {"interference": {"latency": [["m1", "m2", 2, 2, 40, 1.8, 2.9]]}}]
    cfg.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    res = import_igniter(cfg)
    assert len(res.solo) == 2 and len(res.corun) == 2
    assert res.corun.iloc[0][["victim", "victim_partition", "corunner_partition", "victim_latency_ms"]].tolist() == \
        ["m1", 40.0, 60.0, 1.8]
    assert res.corun.iloc[1][["victim", "victim_latency_ms", "corunner_latency_ms"]].tolist() == ["m2", 2.9, 1.8]


def test_parvagpu_counts_and_units(parva, caplog):
    solo = parva.solo
    assert len(solo) == 1747 and solo["model"].nunique() == 11 and parva.skipped == 728
    assert "bert-large" in set(solo["model"]) and "bert" not in set(solo["model"])
    assert set(solo["procs"]) == {1, 2, 3, 4, 5} and set(solo["partition"]) == {1.0, 2.0, 3.0, 4.0, 7.0}
    first = solo.iloc[0]  # raw bert.csv: 1,1,1,74.408,0.013
    assert first["latency_ms"] == 13.0 and first["throughput_rps"] == 74.408
    # per-process throughput, latency s -> ms: equal to the curators' long table (aggregate = per-proc x procs)
    long = pd.read_csv(PARVA / "derived" / "parvagpu_a100_profiles_long.csv").replace({"model": {"bert": "bert-large"}})
    m = solo.merge(long, left_on=["model", "partition", "batch", "procs"],
                   right_on=["model", "mig_gpcs", "batch", "mps_procs"], validate="1:1")
    assert len(m) == 1747
    assert np.allclose(m["latency_ms_x"], m["latency_ms_y"])
    assert (m["throughput_rps"] == m["per_proc_throughput_rps"]).all()
    assert np.allclose(m["throughput_rps"] * m["procs"], m["aggregate_throughput_rps"])
    with caplog.at_level(logging.WARNING, logger="stsched.data.importers"):
        import_parvagpu([PARVA / "prof_data" / "bert.csv"])
    assert any("skipped 11 row(s)" in r.getMessage() and "bert.csv" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------- shipped tables = re-import
@pytest.mark.parametrize("name", ["a100-mps", "glet-2080ti", "glet-3080", "v100-mps", "a100-mig", "h200-sm"])
def test_reimport_equals_shipped(name, tmp_path):
    assert name in list_datasets()
    summary = rebuild_dataset(name, tmp_path)
    for f in ("solo.csv", "corun.csv"):
        shipped = PROF / name / f
        assert shipped.is_file() == (tmp_path / f).is_file()
        if shipped.is_file():
            assert (tmp_path / f).read_bytes() == shipped.read_bytes(), f"{name}/{f} differs from its re-import"
    assert summary["solo_rows"] > 0


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared not present")
def test_raw_copies_are_byte_exact():
    pairs = [(GPULET, SHARED / "profiles/gpulet/third_party_0909wlgur_Gpulet/data"),
             (GLET, SHARED / "profiles/gpulet/casys-kaist_glet/resource"),
             (PARVA / "prof_data", SHARED / "profiles/parvagpu-a100-mig/raw/prof_data"),
             (IGN / "derived", SHARED / "profiles/igniter-v100-mps/derived"),
             (data_dir() / "traces", SHARED / "traces")]
    for ours, theirs in pairs:
        for f in theirs.rglob("*"):
            if f.is_file():
                assert (ours / f.relative_to(theirs)).read_bytes() == f.read_bytes(), f


# ---------------------------------------------------------------------------------------------- bad input
def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


PARVA_HEADER = "Mig instance,Batch size,Workload Number,Throughput,Latency\n"


def test_missing_column_is_named(tmp_path):
    f = _write(tmp_path / "prof" / "resnet50.csv", "Mig instance,Batch size,Workload Number,Throughput\n1,1,1,5\n")
    with pytest.raises(InputError, match=r"resnet50\.csv.*missing column\(s\) Latency"):
        import_parvagpu(f)


def test_negative_latency_names_file_and_row(tmp_path):
    f = _write(tmp_path / "vgg16.csv", PARVA_HEADER + "1,1,1,5,0.2\n1,2,1,5,-0.2\n")
    with pytest.raises(InputError, match=r"vgg16\.csv.*latency_ms.*> 0.*data row 2"):
        import_parvagpu(f)


def test_half_zero_row_is_an_error_not_a_skip(tmp_path):
    f = _write(tmp_path / "vgg16.csv", PARVA_HEADER + "1,1,1,0,0.2\n1,2,1,0,0\n")
    with pytest.raises(InputError, match=r"throughput_rps.*data row 1"):
        import_parvagpu(f)


def test_nan_latency_is_named(tmp_path):
    f = _write(tmp_path / "inference.csv", "vgg16,1,20,throughput,220.5,latency,0.0045,1\n"
                                           "vgg16,2,20,throughput,220.5,latency,nan,1\n")
    with pytest.raises(InputError, match=r"inference\.csv.*latency_ms.*NaN.*data row 2"):
        import_gpulet_a100(f)


def test_non_numeric_is_named(tmp_path):
    f = _write(tmp_path / "inference.csv", "vgg16,1,20,throughput,fast,latency,0.0045,1\n")
    with pytest.raises(InputError, match=r"inference\.csv.*'throughput' is not numeric in data rows 1"):
        import_gpulet_a100(f)


def test_wrong_column_count_names_file_and_row(tmp_path):
    f = _write(tmp_path / "inference.csv", "vgg16,1,20,throughput,220.5,latency,0.0045,1\n"
                                           "vgg16,2,20,throughput,220.5,latency,0.0045\n")
    with pytest.raises(InputError, match=r"inference\.csv: data row 2: expected 8 columns, found 7"):
        import_gpulet_a100(f)
    g = _write(tmp_path / "UTIL.CSV", "bench,batch,l2_util(%),mem_util(%)\nlenet,1,2.0\n")
    with pytest.raises(InputError, match=r"UTIL\.CSV: data row 1: expected 4 columns, found 3"):
        import_glet_util(g, "rtx3080")


def test_valid_flag_zero_rows_are_skipped_and_logged(tmp_path, caplog):
    f = _write(tmp_path / "inference.csv", "vgg16,1,20,throughput,220.5,latency,0.0045,1\n"
                                           "vgg16,64,20,throughput,0,latency,0,0\n")
    with caplog.at_level(logging.WARNING, logger="stsched.data.importers"):
        res = import_gpulet_a100(f)
    assert len(res.solo) == 1 and res.skipped == 1
    assert any("skipped 1 row(s)" in r.getMessage() and "vgg16 b64" in r.getMessage() for r in caplog.records)
    bad = _write(tmp_path / "bad.csv", "vgg16,1,20,throughput,220.5,latency,0.0045,2\n")
    with pytest.raises(InputError, match="valid_flag' must be 0 or 1"):
        import_gpulet_a100(bad)


def test_missing_file_and_marker_words(tmp_path):
    with pytest.raises(InputError, match="nope.csv: file not found"):
        import_gpulet_a100(tmp_path / "nope.csv")
    f = _write(tmp_path / "inference.csv", "vgg16,1,20,thru,220.5,latency,0.0045,1\n")
    with pytest.raises(InputError, match="column 4 should read 'throughput'"):
        import_gpulet_a100(f)


# ------------------------------------------------------------------------------------------- profiler output
def test_profiler_import_sorts_and_keeps_every_value():
    res = import_profiler([H200 / "sm_corun.csv", H200 / "sm_solo.csv"])  # told apart by header, any order
    solo, corun = res.solo, res.corun
    assert len(solo) == 180 and len(corun) == 80 and res.skipped == 0
    key = ["model", "procs", "partition", "batch"]
    assert solo[key].equals(solo.sort_values(key)[key].reset_index(drop=True))
    assert (solo.iloc[0][["model", "batch", "partition"]].tolist()) == ["bert-base", 1, 16.0]
    raw = pd.read_csv(H200 / "sm_solo.csv")
    merged = raw.merge(solo, on=key, suffixes=("_raw", ""))
    assert len(merged) == 180 and (merged["latency_ms_raw"] == merged["latency_ms"]).all()
    assert corun.iloc[0][["victim_partition", "corunner_partition"]].tolist() == [16.0, 112.0]
    only_solo = import_profiler([H200 / "sm_solo.csv"])
    assert only_solo.corun is None and only_solo.solo.equals(solo)
    # the whole-GPU copies are a profiler output too (mechanism none, partition 100)
    whole = import_profiler([H200 / "gpu_solo.csv", H200 / "gpu_corun.csv"])
    assert set(whole.solo["mechanism"]) == {"none"} and len(whole.corun) == 4


def _profiler_copy(tmp_path: Path, edit_solo=None, edit_corun=None) -> tuple[Path, Path]:
    solo, corun = pd.read_csv(H200 / "sm_solo.csv"), pd.read_csv(H200 / "sm_corun.csv")
    if edit_solo:
        edit_solo(solo)
    if edit_corun:
        edit_corun(corun)
    s, c = tmp_path / "solo.csv", tmp_path / "corun.csv"
    solo.to_csv(s, index=False)
    corun.to_csv(c, index=False)
    return s, c


def test_profiler_import_bad_input_is_named(tmp_path):
    def negative_row_7(d: pd.DataFrame) -> None:
        d.loc[6, "latency_ms"] = -1.0

    s, c = _profiler_copy(tmp_path, negative_row_7)
    with pytest.raises(InputError, match=r"solo\.csv: column 'latency_ms' must be > 0 in data row 7$"):
        import_profiler([s, c])
    def double_row_4(d: pd.DataFrame) -> None:
        d.loc[3, "throughput_rps"] *= 2

    s, c = _profiler_copy(tmp_path, double_row_4)
    with pytest.raises(InputError, match=r"solo\.csv: throughput_rps differs .* in data rows 4$"):
        import_profiler([s, c])
    s, c = _profiler_copy(tmp_path, edit_corun=lambda d: d.__setitem__("device", "h100"))
    with pytest.raises(InputError, match=r"one device, found 2: 'h200' in .*solo\.csv; 'h100' in .*corun\.csv"):
        import_profiler([s, c])
    with pytest.raises(InputError, match=r"two solo tables given"):
        import_profiler([s, s])
    with pytest.raises(InputError, match=r"no solo table given"):
        import_profiler([c])
    with pytest.raises(InputError, match=r"not a profiler table"):
        import_profiler([GPULET / "inference.csv"])
    with pytest.raises(InputError, match=r"takes solo\.csv \[\+ corun\.csv\]; got 3"):
        import_profiler([s, c, c])
    with pytest.raises(InputError, match=r"nope\.csv: file not found"):
        import_profiler([tmp_path / "nope.csv"])


# ------------------------------------------------------------------------------------------------ run_import
def test_run_import_writes_tables(tmp_path):
    out = tmp_path / "out"
    s = run_import("gpulet-a100", [str(GPULET / "interference.csv"), str(GPULET / "inference.csv")], str(out))
    assert s["solo_rows"] == 420 and s["corun_rows"] == 2450  # files recognised by name, any order
    # no temporary files left; import.json records what was imported (imports never mix)
    assert sorted(p.name for p in out.iterdir()) == ["corun.csv", "import.json", "solo.csv"]
    s = run_import("parvagpu", [str(PARVA / "prof_data" / "vgg16.csv")], str(out / "p"))
    assert s["models"] == ["vgg16"] and s["corun_rows"] == 0 and s["skipped_rows"] == 65
    with pytest.raises(InputError, match="unknown import source 'foo'.*known: .*parvagpu"):
        run_import("foo", [], str(out))
    with pytest.raises(InputError, match="takes"):
        run_import("glet-3080", [], str(out))


# ------------------------------------------------------------------------------------------- scenario readers
def test_parvagpu_scenarios():
    rates, slos = PARVA / "SLO" / "SLO_req_rate.csv", PARVA / "SLO" / "SLO_latency.csv"
    scen = read_parvagpu_scenarios(rates, slos)
    assert len(scen) == len(PARVAGPU_SHIPPED_SCENARIOS) == 4
    assert len(scen[0]) == 6 and len(scen[1]) == 11  # N/A = absent
    assert scen[0]["bert-large"] == (19.0, 6434.0) and "densenet169" not in scen[0]
    assert scen[0]["inceptionv3"] == (460.0, 418.5)
    assert read_parvagpu_scenarios(rates, slos, truncate_slo=True)[0]["inceptionv3"] == (460.0, 418.0)
    assert "bert" in read_parvagpu_scenarios(rates, slos, aliases={})[0]


def test_parvagpu_deployments():
    def deploy(k: int) -> Path:
        return PARVA / "deployment" / f"SLO{k}" / f"SLO{k}_ParvaGPU_deploy.csv"
    gpus = {k: read_parvagpu_deployment(deploy(k))["gpu"].nunique() for k in PARVAGPU_SHIPPED_SCENARIOS}
    assert gpus == {1: 2, 2: 3, 4: 7, 6: 16}
    d = read_parvagpu_deployment(deploy(6))
    assert list(d.columns[:6]) == ["gpu", "model", "instance_size", "batch", "procs", "placement"]
    assert d.groupby("gpu")["instance_size"].sum().max() <= 7 and d["procs"].max() == 5


def test_glet_slos_and_mixes():
    g = read_glet_slos_and_mixes(GLET)
    assert g.slo_ms["resnet50"] == 108 and g.slo_ms["lenet1"] == 5 and g.slo_ms["bert"] == 22
    assert g.config_slo_ms["lenet2"] == 50  # the config files disagree with the scripts for lenet2..6
    assert g.scenarios["scen2"].rates(3) == {"densenet161": 30.0, "vgg16": 30.0}
    assert g.scenarios["scen1"].rates(1) == {"googlenet": 100.0, "bert": 100.0, "mnasnet1_0": 50.0,
                                             "mobilenet_v2": 50.0}
    assert len(g.scenarios["scen5"].levels) == 300
    assert g.apps["game"].levels[0] == 100 and g.apps["game"].levels[-1] == 2400 and len(g.apps["game"].models) == 7
    assert g.apps["traffic"].slo_ms == {"ssd-mobilenetv1": 90.0, "googlenet": 112.0, "vgg16": 112.0}
    assert g.mem_mb["vgg16"] == 2920 and g.interference_constants["2080ti"][4] == pytest.approx(0.8953693917277343)
    with pytest.raises(InputError):
        g.scenarios["scen1"].rates(301)
