"""Own models in the profiler: a model defined in this file (`tests.profiler.test_profiler_custom:make_mlp`) profiled on CPU through
the CLI in worker processes, its source recorded in meta.json; example_input; bad specs one line exit 2;
torchvision / transformers where installed."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from profiler import custom, zoo  # noqa: E402
from stsched.cli import main  # noqa: E402
from stsched.data import read_solo_csv  # noqa: E402


class TinyMLP(torch.nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(12, width), torch.nn.ReLU(), torch.nn.Linear(width, 3))

    def forward(self, x):
        return self.net(x)


def make_mlp() -> torch.nn.Module:
    return TinyMLP()


def make_embed() -> torch.nn.Module:
    m = torch.nn.Sequential(torch.nn.Embedding(50, 8), torch.nn.Flatten(), torch.nn.Linear(6 * 8, 2))
    m.example_input = torch.tensor([1, 2, 3, 4, 5, 49])  # one sample: 6 token ids below 50
    return m


def not_a_module():
    return 42


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    monkeypatch.delenv(custom.ENV, raising=False)


def test_profile_a_model_of_this_file_on_cpu(tmp_path, capsys):
    out = tmp_path / "prof"
    rc = main(["profile", "--backend", "cpu", "--models", "mlp=tests.profiler.test_profiler_custom:make_mlp", "resnet-tiny",
               "--input-shape", "12", "--batches", "1", "4", "--sizes", "1", "--repeats", "3", "--warmup", "1",
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    solo = read_solo_csv(out / "solo.csv")
    mlp = solo[solo["model"] == "mlp"]
    assert sorted(mlp["batch"]) == [1, 4] and (mlp["latency_ms"] > 0).all()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["models"]["mlp"] == {"source": "python tests.profiler.test_profiler_custom:make_mlp",
                                     "params": sum(p.numel() for p in TinyMLP().parameters()),
                                     "input_shape": [12], "tokens": False}
    assert meta["models"]["resnet-tiny"]["source"].startswith("zoo")


def test_example_input_gives_shape_and_token_inputs():
    name = custom.register("tests.profiler.test_profiler_custom:make_embed")
    assert name == "test_profiler_custom-make_embed".replace("_", "-")
    spec = zoo.resolve(name)
    assert spec.input_shape == (6,) and spec.tokens and spec.vocab == 50
    x = zoo.make_input(name, 5)
    assert x.shape == (5, 6) and x.dtype == torch.int64 and int(x.max()) < 50
    assert zoo.build(name)(x).shape == (5, 2)


@pytest.mark.parametrize("arg, needle", [
    ("nope.nowhere:make", "cannot import"),
    ("tests.profiler.test_profiler_custom:missing", "no callable"),
    ("tests.profiler.test_profiler_custom:not_a_module", "not a torch.nn.Module"),
    ("tests.profiler.test_profiler_custom:make_mlp", "--input-shape"),
    ("resnet18=tests.profiler.test_profiler_custom:make_mlp", "is a zoo model"),
])
def test_bad_specs_are_one_line(arg, needle, tmp_path, capsys):
    rc = main(["profile", "--backend", "cpu", "--models", arg, "--batches", "1", "--sizes", "1",
               "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "p" / "solo.csv").exists()


def test_torchvision_architecture():
    pytest.importorskip("torchvision")
    name = custom.register("tv:resnet18")
    spec = zoo.resolve(name)
    assert name == "tv-resnet18" and spec.input_shape == (3, 224, 224) and spec.params == 11_689_512
    assert "torchvision" in spec.source


def test_transformers_config_class():
    pytest.importorskip("transformers")
    name = custom.register("hf:BertConfig", input_shape=(16,))
    spec = zoo.resolve(name)
    assert name == "hf-bertconfig" and spec.tokens and spec.vocab == 30522 and spec.input_shape == (16,)
    assert zoo.build(name)(zoo.make_input(name, 2)) is not None
