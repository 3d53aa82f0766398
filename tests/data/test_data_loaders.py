"""Schema validation, the README's schema tables, loaders, model weights, traces."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from stsched.data import (
    COLUMN_DOCS,
    CORUN_COLUMNS,
    SOLO_COLUMNS,
    DatasetMeta,
    data_dir,
    list_datasets,
    list_traces,
    load_models,
    load_profile,
    model_weights_mb,
    read_solo_csv,
    rebuild_dataset,
    trace_dir,
    validate_corun,
    validate_solo,
)
from stsched.errors import InputError

EXPECTED = {  # name: (solo rows, corun rows or None, models)
    "a100-mps": (420, 2450, 10),
    "glet-2080ti": (90, None, 9),
    "glet-3080": (90, None, 9),
    "v100-mps": (648, 750, 4),
    "a100-mig": (1747, None, 11),
    "h200-sm": (180, 80, 5),
    "h100-sm": (180, 80, 5),
}


def _solo(**over) -> pd.DataFrame:
    row = dict(device="a100-80gb", mechanism="mps", model="resnet50", batch=4, partition=50.0, procs=1,
               latency_ms=5.0, throughput_rps=800.0, l2_util=0.2, dram_util=0.3)
    rows = [dict(row, batch=b) for b in (1, 2, 4, 8, 16, 32, 64)]
    for k, v in over.items():
        idx, col = k.rsplit("__", 1)[0], k.rsplit("__", 1)[1]
        rows[int(idx[1:])][col] = v
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------- schema
def test_readme_schema_tables_match_code():
    text = (data_dir() / "README.md").read_text()
    for table, columns in (("solo", SOLO_COLUMNS), ("corun", CORUN_COLUMNS)):
        section = text.split(f"### {table}.csv", 1)[1].split("\n\n", 2)[1]
        rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in section.splitlines()[2:]]
        assert [r[0].strip("`") for r in rows] == list(columns) == list(COLUMN_DOCS[table])
        for r in rows:
            assert tuple(r[1:4]) == COLUMN_DOCS[table][r[0].strip("`")], r


def test_readme_model_sources_match_code():
    from stsched.data.schema import MODEL_SOURCE_DOCS

    text = (data_dir() / "README.md").read_text()
    section = text.split("### Model sources", 1)[1].split("\n\n", 3)[2]
    rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in section.splitlines()[2:]]
    assert {r[0].strip("`"): (r[1], r[2]) for r in rows} == MODEL_SOURCE_DOCS


def test_validate_accepts_and_types():
    df = validate_solo(_solo())
    assert list(df.columns) == list(SOLO_COLUMNS) and df["batch"].dtype == np.int64 and df["partition"].dtype == float


@pytest.mark.parametrize("over, pattern", [
    ({"r1__latency_ms": -1.0}, r"latency_ms' must be > 0 in data row 2"),
    ({"r0__latency_ms": 0.0}, r"latency_ms' must be > 0 in data row 1"),
    ({"r3__latency_ms": np.nan}, r"latency_ms' is empty or NaN in data row 4"),
    ({"r2__batch": 0}, r"batch' must be > 0 in data row 3"),
    ({"r2__batch": 2.5}, r"batch' is not an integer"),
    ({"r1__l2_util": 1.5}, r"l2_util' must be <= 1"),
    ({"r1__mechanism": "mpx"}, r"mechanism' is not one of"),
    ({"r1__model": "ResNet50"}, r"not lower case"),
    ({"r1__partition": 120.0}, r"over 100 %"),
    ({"r1__throughput_rps": "fast"}, r"throughput_rps' is not numeric in data row 2"),
    ({"r1__batch": 1}, r"repeats an earlier key in data row 2"),
])
def test_validate_solo_errors_name_source_and_rows(over, pattern):
    with pytest.raises(InputError, match=r"^my\.csv: .*" + pattern):
        validate_solo(_solo(**over), "my.csv")


def test_validate_lists_at_most_five_rows():
    df = _solo()
    df["latency_ms"] = -1.0
    with pytest.raises(InputError) as exc:
        validate_solo(df, "x.csv")
    msg = str(exc.value)
    assert "data rows 1, 2, 3, 4, 5 (and 2 more)" in msg and "\n" not in msg


def test_validate_missing_column():
    with pytest.raises(InputError, match=r"^t\.csv: missing column\(s\) latency_ms"):
        validate_solo(_solo().drop(columns="latency_ms"), "t.csv")
    with pytest.raises(InputError, match="missing column"):
        validate_corun(pd.DataFrame({"device": ["a"]}), "c.csv")


def test_validate_corun_rules():
    row = dict(device="v100-16gb", mechanism="mps", victim="alexnet", victim_batch=2, victim_partition=40.0,
               corunner="vgg19", corunner_batch=4, corunner_partition=60.0, victim_latency_ms=2.0,
               corunner_latency_ms=None)
    assert len(validate_corun(pd.DataFrame([row]))) == 1
    with pytest.raises(InputError, match="exceeds 100 %"):
        validate_corun(pd.DataFrame([dict(row, corunner_partition=70.0)]), "c.csv")
    with pytest.raises(InputError, match="victim_latency_ms' is empty or NaN in data row 1"):
        validate_corun(pd.DataFrame([dict(row, victim_latency_ms=None)]), "c.csv")


def test_nan_in_csv_is_named(tmp_path):
    f = tmp_path / "solo.csv"
    df = _solo()
    df.loc[2, "latency_ms"] = np.nan
    df.to_csv(f, index=False)
    with pytest.raises(InputError, match=r"solo\.csv: column 'latency_ms' is empty or NaN in data row 3"):
        read_solo_csv(f)
    f.write_text(",".join(SOLO_COLUMNS) + "\n" + "a,mps,m,1,20,1,2.0,,,,\n")
    with pytest.raises(InputError, match=r"solo\.csv: data row 1: expected 10 columns, found 11"):
        read_solo_csv(f)


# ------------------------------------------------------------------------------------------------ loaders
def test_datasets_and_counts():
    assert list_datasets() == sorted(EXPECTED)
    for name, (n_solo, n_corun, n_models) in EXPECTED.items():
        ps = load_profile(name)
        assert len(ps.solo) == n_solo and ps.solo["model"].nunique() == n_models, name
        assert (ps.corun is None and n_corun is None) or len(ps.corun) == n_corun, name
        assert isinstance(ps.meta, DatasetMeta) and ps.meta.name == name
        assert isinstance(ps.meta.sm_count, int) and isinstance(ps.meta.partition_sizes, tuple)
        assert set(ps.solo["device"]) == {ps.meta.device} and set(ps.solo["mechanism"]) == {ps.meta.mechanism}
        assert ps.meta.has_latency == bool(ps.solo["latency_ms"].notna().all())
        # capacity: 100 % (MPS), 7 slices (MIG), the device's SM count (green contexts, partition = SMs)
        cap = {"mps": 100.0, "mig": 7.0, "sm": float(ps.meta.sm_count)}[ps.meta.mechanism]
        assert ps.meta.partition_capacity == cap, name
        parts = set(ps.solo["partition"])
        if ps.corun is not None:
            parts |= set(ps.corun["victim_partition"]) | set(ps.corun["corunner_partition"])
            both = ps.corun["victim_partition"] + ps.corun["corunner_partition"]
            assert (both <= cap + 1e-9).all(), name
        assert max(parts) <= cap and parts <= set(ps.meta.partition_sizes), name
        assert (ps.path / "raw" / "PROVENANCE.md").is_file()


def _check_green_context_dataset(name: str, device: str, gpu: str):
    """The checks every profile measured by this project with scripts/gpu_check.sh passes (h200-sm, h100-sm)."""
    ps = load_profile(name)
    m = ps.meta
    assert (m.device, m.gpu, m.mechanism, m.sm_count, m.importer) == (device, gpu, "sm", 132, "stsched-profiler")
    assert m.partition_capacity == 132.0 and m.has_latency and m.held_back == "nothing"
    assert m.raw_inputs == ("raw/sm_solo.csv", "raw/sm_corun.csv")
    solo, corun = ps.solo, ps.corun
    assert ps.models == ["bert-base", "mobilenetv2", "resnet18", "resnet50", "vgg16"]
    assert sorted(set(solo["partition"])) == [16.0, 32.0, 48.0, 64.0, 96.0, 132.0]
    assert sorted(set(solo["batch"])) == [1, 2, 4, 8, 16, 32] and set(solo["procs"]) == {1}
    assert len(solo) == 5 * 6 * 6  # the full grid, nothing missing
    assert solo[["l2_util", "dram_util"]].isna().all().all()  # not measured (Nsight Compute)
    assert np.allclose(solo["throughput_rps"], 1000 * solo["batch"] / solo["latency_ms"], rtol=1e-12)
    layouts = set(zip(corun["victim_partition"], corun["corunner_partition"]))
    assert layouts == {(64.0, 64.0), (32.0, 96.0), (96.0, 32.0), (16.0, 112.0), (112.0, 16.0)}
    assert set(corun["victim_batch"]) == set(corun["corunner_batch"]) == {8}
    assert set(corun["victim"]) == set(corun["corunner"]) == {"bert-base", "mobilenetv2", "resnet50", "vgg16"}
    assert corun["corunner_latency_ms"].notna().all()
    return ps


def _spot(solo, model="resnet50", batch=8, sms=64.0) -> list[float]:
    row = solo[(solo["model"] == model) & (solo["batch"] == batch) & (solo["partition"] == sms)]
    return row["latency_ms"].tolist()


def test_h200_sm_dataset():
    ps = _check_green_context_dataset("h200-sm", "h200", "NVIDIA H200")
    # a spot value, straight from raw/sm_solo.csv: resnet50 batch 8 on 64 SMs
    assert _spot(ps.solo) == [2.478543996810913]


def test_h100_sm_dataset(tmp_path):
    # the device column is the profiler's name of the GPU as torch reports it, kept as measured
    ps = _check_green_context_dataset("h100-sm", "h100-80gb-hbm3", "NVIDIA H100 80GB HBM3")
    assert ps.meta.source_commit == "54527916418e28d94cffbc48bef866b959ba26bd" and ps.meta.memory_mb == 81079.0
    # spot values, straight from raw/sm_solo.csv and raw/sm_corun.csv
    assert _spot(ps.solo) == [2.5451838970184326]
    c = ps.corun
    row = c[(c["victim"] == "bert-base") & (c["victim_partition"] == 32) & (c["corunner"] == "resnet50")]
    assert row["victim_latency_ms"].tolist() == [23.06929588317871]
    # the shipped tables are the importer's output of the raw copies, byte for byte
    rebuild_dataset("h100-sm", tmp_path)
    for f in ("solo.csv", "corun.csv"):
        assert (tmp_path / f).read_bytes() == (ps.path / f).read_bytes(), f


@pytest.mark.parametrize("name,n_files", [("h200-sm", 14), ("h100-sm", 11)])
def test_measured_raw_files_match_provenance_checksums(name, n_files):
    raw = load_profile(name).path / "raw"
    table = re.findall(r"^\| `([^`]+)` \| (\d+) \| `([0-9a-f]{64})` \|", (raw / "PROVENANCE.md").read_text(), re.M)
    listed = {fname for fname, _, _ in table}
    on_disk = {str(p.relative_to(raw)) for p in raw.rglob("*") if p.is_file() and p.name != "PROVENANCE.md"}
    assert listed == on_disk and len(listed) == n_files
    for fname, size, digest in table:
        data = (raw / fname).read_bytes()
        assert len(data) == int(size) and hashlib.sha256(data).hexdigest() == digest, fname
    meta = json.loads((raw / "sm_meta.json").read_text())
    assert meta["size_readback"] == {k: float(k) for k in meta["size_readback"]}  # every size obtained exactly


def test_load_returns_copies():
    a = load_profile("a100-mps")
    a.solo.loc[0, "latency_ms"] = -1
    assert load_profile("a100-mps").solo.loc[0, "latency_ms"] > 0


def test_unknown_dataset_lists_known():
    with pytest.raises(InputError, match=r"unknown data set 'h100'.*known: a100-mig, a100-mps"):
        load_profile("h100")


def test_env_override_and_bad_meta(tmp_path, monkeypatch):
    root = tmp_path / "d"
    shutil.copytree(data_dir() / "profiles" / "glet-3080", root / "profiles" / "glet-3080",
                    ignore=shutil.ignore_patterns("raw"))
    monkeypatch.setenv("STSCHED_DATA", str(root))
    assert list_datasets() == ["glet-3080"] and len(load_profile("glet-3080").solo) == 90
    meta = json.loads((root / "profiles/glet-3080/meta.json").read_text())
    meta["sm_count"] = "many"
    (root / "profiles/glet-3080/meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"meta\.json: field 'sm_count' should be int"):
        DatasetMeta.from_json(root / "profiles/glet-3080/meta.json")


def test_model_weights_cover_every_model():
    names: set[str] = set()
    for name in list_datasets():
        ps = load_profile(name)
        names |= set(ps.solo["model"])
        if ps.corun is not None:
            names |= set(ps.corun["victim"]) | set(ps.corun["corunner"])
    models = load_models()
    assert names <= set(models.index)
    assert model_weights_mb("vgg16") == pytest.approx(138.357544 * 4e6 / 2**20, rel=1e-6)
    assert model_weights_mb("ResNet50") == pytest.approx(97.49, abs=0.01)
    assert model_weights_mb("bert-large") > 3 * model_weights_mb("bert")
    assert models.loc["vgg16", "gpulet_mem_mb"] == 2920
    with pytest.raises(InputError, match="unknown model 'gpt5'.*known: alexnet"):
        model_weights_mb("gpt5")


def test_traces():
    assert list_traces() == ["azure-functions-2019", "azure-functions-2021", "azure-llm-inference-2023"]
    for t in list_traces():
        assert (trace_dir(t) / "PROVENANCE.md").is_file()
        assert any(p.name.startswith("LICENSE") for p in trace_dir(t).iterdir())
    with pytest.raises(InputError, match="unknown trace 'x'.*azure-functions-2019"):
        trace_dir("x")


def test_data_folder_is_lean():
    big = [p for p in data_dir().rglob("*") if p.is_file() and p.stat().st_size > 4 * 2**20]
    assert not big
    assert sum(p.stat().st_size for p in data_dir().rglob("*") if p.is_file()) < 8 * 2**20


def test_readme_mentions_licence_and_held_back():
    text = (data_dir() / "README.md").read_text()
    flat = " ".join(text.split())
    assert "carry **no licence**" in flat and "research and comparison only" in flat
    for phrase in ("vgg19", "ssd", "scenarios 3 and 5"):
        assert phrase in text
    assert re.search(r"\| `a100-mig` .* \| 1747 \|", text)
    assert re.search(r"\| `h200-sm` .* \| 180 \| 80 \| 5 \| MIT", text)
    assert re.search(r"\| `h100-sm` .* \| 180 \| 80 \| 5 \| MIT", text)
    assert "Nobody on this project measured these numbers" not in flat
