"""An instance's `batches` and `mechanism.sizes` list each value once, ascending: a repeat or a shuffled list is bad
input naming the key, the index and the value (it was accepted, and the heuristic read the last size as the whole
GPU), from JSON and from Python alike."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from stsched.cli import main
from stsched.errors import InputError
from stsched.io import instance_to_dict, save_instance
from tests.conftest import make_mps_instance


@pytest.mark.parametrize("key, values, words", [
    ("batches", [1, 2, 2, 4], ["batches[2] = 2 repeats batches[1] = 2"]),
    ("batches", [4, 1, 2], ["batches[1] = 1 is below batches[0] = 4"]),
    ("sizes", [20.0, 50.0, 50.0, 100.0], ["mechanism.sizes[2] = 50 repeats mechanism.sizes[1] = 50"]),
    ("sizes", [100.0, 50.0], ["mechanism.sizes[1] = 50 is below mechanism.sizes[0] = 100"]),
])
def test_a_repeated_or_shuffled_list_is_bad_input(tmp_path, capsys, key, values, words):
    inst = make_mps_instance()
    save_instance(inst, tmp_path / "inst.json")
    d = instance_to_dict(inst)
    (d["mechanism"] if key == "sizes" else d)[key] = values
    (tmp_path / "bad.json").write_text(json.dumps(d))
    code = main(["-q", "solve", str(tmp_path / "bad.json"), "--solver", "heuristic"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(tmp_path / "bad.json") in err and all(w in err for w in words), err


def test_python_construction_is_checked_too():
    inst = make_mps_instance()
    with pytest.raises(InputError, match=r"batches\[1\] = 1 repeats"):
        replace(inst, batches=(1, 1))
    with pytest.raises(InputError, match=r"mechanism.sizes\[1\] = 20 is below"):
        replace(inst.mechanism, sizes=(50.0, 20.0))
    assert replace(inst, batches=(1, 3, 7)).batches == (1, 3, 7)  # ascending, gaps allowed
