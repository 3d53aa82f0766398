"""Own models under hostile use (session 12): a module whose import fails otherwise than ImportError, a wrong
--input-shape, a --vocab the example input ignores, and a model that fails at one batch size in the worker.  Each
was a traceback (exit 1) or a silently ignored option before; now one line, exit 2, nothing written before the
check, and the points measured before a worker's failure kept for a resume."""

from __future__ import annotations

import sys

import pytest

torch = pytest.importorskip("torch")

from profiler import custom  # noqa: E402
from stsched.cli import main  # noqa: E402
from stsched.data import read_solo_csv  # noqa: E402

HERE = "tests.profiler.test_profiler_custom_hostile"


def make_mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(16, 4))


make_mlp.example_input = torch.zeros(16)


class BatchOne(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(16, 4)

    def forward(self, x):
        if x.shape[0] != 1:
            raise ValueError("this model takes one sample at a time")
        return self.lin(x)


def batch_one() -> torch.nn.Module:
    return BatchOne()


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    monkeypatch.delenv(custom.ENV, raising=False)


def _profile(capsys, out, *models_and_flags: str, batches=("1",)) -> tuple[int, str]:
    code = main(["profile", "--backend", "cpu", "--batches", *batches, "--sizes", "1", "--repeats", "1",
                 "--warmup", "0", "--out", str(out), "-q", "--models", *models_and_flags])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
    return code, err


@pytest.mark.parametrize("source, words", [
    ("raise RuntimeError('import-time failure')\n", ["importing", "RuntimeError: import-time failure"]),
    ("def f(:\n", ["importing", "SyntaxError"]),
])
def test_a_module_whose_import_fails_is_one_line(tmp_path, capsys, monkeypatch, source, words):
    """A module raising at import time (or with a syntax error) was the import's traceback, exit 1."""
    (tmp_path / "badmod_h12.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("badmod_h12", None)
    code, err = _profile(capsys, tmp_path / "out", "badmod_h12:f", "--input-shape", "16")
    assert code == 2 and all(w in err for w in words), err
    assert not (tmp_path / "out").exists()


def test_a_wrong_input_shape_is_refused_before_anything_is_written(tmp_path, capsys):
    """--input-shape 3x224x224 for a 16-input model was the worker's traceback, exit 1, after meta.json was
    written into --out."""
    code, err = _profile(capsys, tmp_path / "out", f"{HERE}:make_mlp", "--input-shape", "3x224x224")
    assert code == 2 and "shape 3x224x224" in err and "--input-shape" in err, err
    assert not (tmp_path / "out").exists()


def test_a_vocab_that_the_example_input_ignores_is_refused(tmp_path, capsys):
    """--vocab 5 with a float example_input was ignored (floats measured, exit 0)."""
    code, err = _profile(capsys, tmp_path / "out", f"{HERE}:make_mlp", "--vocab", "5")
    assert code == 2 and "--vocab 5" in err and "floats" in err, err


def test_a_model_failing_at_one_batch_names_the_point_and_keeps_the_rest(tmp_path, capsys):
    """A model that raises at batch 2 in the worker was 'RuntimeError: worker (size 1) failed in measure' with two
    tracebacks, exit 1; the batch-1 row was kept but nothing said so."""
    out = tmp_path / "out"
    code, err = _profile(capsys, out, f"{HERE}:batch_one", "--input-shape", "16", batches=("1", "2"))
    assert code == 2 and "batch 2" in err and "one sample at a time" in err and "kept" in err, err
    assert list(read_solo_csv(out / "solo.csv")["batch"]) == [1]
    code, err = _profile(capsys, out, f"{HERE}:batch_one", "--input-shape", "16")  # resumes: nothing new to measure
    assert code == 0, err
