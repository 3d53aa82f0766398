"""`stsched fit` / `stsched evaluate-model`: files in their source layouts, detected by shape; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stsched.cli import main
from stsched.data.loaders import data_dir
from stsched.latency import load
from stsched.latency.sources import detect_source

RAW_A100 = data_dir() / "profiles" / "a100-mps" / "raw" / "third_party_0909wlgur_Gpulet" / "data"
RAW_V100 = data_dir() / "profiles" / "v100-mps" / "raw" / "derived"


@pytest.fixture(scope="module")
def v100_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("m") / "v100.json"
    assert main(["fit", "--device", "v100", "--out", str(out)]) == 0
    return out


def test_detect_source_by_shape():
    assert detect_source(RAW_A100 / "interference.csv") == "gpulet-a100-interference"
    assert detect_source(RAW_A100 / "inference.csv") == "gpulet-a100-inference"
    assert detect_source(RAW_V100 / "gpulet_config_pairs.csv") == "igniter-pairs"
    assert detect_source(RAW_V100 / "gpulet_config_solo.csv") == "igniter-solo"
    assert detect_source(data_dir() / "profiles" / "a100-mps" / "corun.csv") == "corun-csv"


def test_fit_writes_a_loadable_model(v100_model):
    m = load(v100_model)
    assert m.dataset == "v100-mps" and m.options.form == "stsched-regime" and "stsched-contention" in m.coef


def test_evaluate_model_pairs_json(v100_model, capsys):
    capsys.readouterr()
    assert main(["evaluate-model", str(v100_model), "--data", str(RAW_V100 / "gpulet_config_pairs.csv"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 750 and out["source"] == "igniter-pairs" and out["kind"] == "corun_latency"
    assert 0 < out["mape"] <= out["p90_abs_rel_err"] < 0.2


def test_evaluate_model_headerless_gpulet_interference(tmp_path, capsys):
    model = tmp_path / "a100.json"
    assert main(["fit", "--device", "a100", "--form", "stsched-contention", "--out", str(model)]) == 0
    sample = tmp_path / "new.csv"  # new measurements of the same kind: a slice of the raw file, as measured
    sample.write_text("".join((RAW_A100 / "interference.csv").read_text().splitlines(keepends=True)[:60]))
    capsys.readouterr()
    assert main(["evaluate-model", str(model), "--data", str(sample), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 60 and out["source"] == "gpulet-a100-interference" and out["form"] == "stsched-contention"


@pytest.mark.parametrize("args", [["fit", "--device", "tpu", "--out", "x.json"],
                                  ["fit", "--device", "glet-3080", "--out", "x.json"]])
def test_fit_bad_input_exits_2(args, tmp_path, capsys):
    args = [a if a != "x.json" else str(tmp_path / a) for a in args]
    assert main(args) == 2
    assert "stsched: error:" in capsys.readouterr().err


def test_evaluate_model_bad_input_exits_2(v100_model, tmp_path, capsys):
    junk = tmp_path / "junk.csv"
    junk.write_text("a,b,c\n1,2,3\n")
    assert main(["evaluate-model", str(v100_model), "--data", str(junk)]) == 2
    assert "--source" in capsys.readouterr().err
    assert main(["evaluate-model", str(v100_model), "--data", str(tmp_path / "missing.csv")]) == 2
    bad = tmp_path / "neg.csv"
    text = (RAW_V100 / "gpulet_config_pairs.csv").read_text().splitlines()
    fields = text[1].split(",")
    fields[6] = "-" + fields[6]
    bad.write_text("\n".join([text[0], ",".join(fields)]) + "\n")
    assert main(["evaluate-model", str(v100_model), "--data", str(bad)]) == 2
    assert "row 1" in capsys.readouterr().err
    not_model = tmp_path / "nm.json"
    not_model.write_text("{}")
    assert main(["evaluate-model", str(not_model), "--data", str(RAW_V100 / "gpulet_config_pairs.csv")]) == 2
