"""experiments.cg_attribution: the integer master over the columns of a column generation with cuts gives a plan the
checker accepts, never below the bound, and the saved columns give the same bound when read back."""

from __future__ import annotations

import re

import pytest

from experiments.cg_attribution import main
from stsched.io import save_instance
from stsched.scenarios import random_instance


def test_attribution_plan_is_valid_and_not_below_the_bound(tmp_path, capsys):
    path, saved = tmp_path / "i.json", tmp_path / "cg.pkl"
    save_instance(random_instance(8, 4, 1, arrivals="deterministic"), path)
    assert main([str(path), "--cuts", "1", "--cg-time", "20", "--master-time", "20", "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    bound = float(re.search(r"rounded ([0-9.]+)\)", out).group(1))
    plan = int(re.search(r"plan (\d+) GPUs \(checker: valid\)", out).group(1))
    assert bound <= 3 <= plan  # the optimum of this instance is 3 GPUs (scale_eval --integrality)
    assert main([str(path), "--load", str(saved), "--master-time", "20"]) == 0
    assert float(re.search(r"rounded ([0-9.]+)\)", capsys.readouterr().out).group(1)) == bound


def test_attribution_bad_limit_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["x.json", "--cg-time", "-1"])
    assert e.value.code == 2 and "--cg-time" in capsys.readouterr().err


def test_attribution_refuses_a_result_saved_for_another_instance(tmp_path, capsys):
    """--load read any pickle: the columns of another instance were used as this one's."""
    import pickle

    path, other, saved = tmp_path / "i.json", tmp_path / "o.json", tmp_path / "cg.pkl"
    save_instance(random_instance(8, 4, 1, arrivals="deterministic"), path)
    save_instance(random_instance(8, 4, 2, arrivals="deterministic"), other)
    assert main([str(path), "--cuts", "0", "--cg-time", "5", "--master-time", "5", "--save", str(saved)]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main([str(other), "--load", str(saved)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--load" in err and "this instance" in err and len(err.strip().splitlines()) == 1
    old = tmp_path / "old.pkl"  # a bare result (the format before the digest) is refused the same way
    old.write_bytes(pickle.dumps(pickle.loads(saved.read_bytes())["result"]))
    with pytest.raises(SystemExit) as e:
        main([str(path), "--load", str(old)])
    assert e.value.code == 2


def test_attribution_quick_refuses_cuts_and_an_instance(capsys):
    """--quick silently replaced a given --cuts and INSTANCE with its own."""
    for argv in (["--quick", "--cuts", "3"], ["x.json", "--quick"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and "--quick" in capsys.readouterr().err


def test_attribution_no_heuristic_plan_is_one_line(tmp_path, monkeypatch):
    """The heuristic returning no plan was an AttributeError traceback after the column generation."""
    from types import SimpleNamespace

    import experiments.cg_attribution as ca
    from stsched.errors import InputError

    path = tmp_path / "i.json"
    save_instance(random_instance(8, 4, 1, arrivals="deterministic"), path)
    monkeypatch.setattr(ca, "run_solver", lambda *a, **k: SimpleNamespace(plan=None))
    monkeypatch.setattr(ca, "column_generation", lambda *a, **k: pytest.fail("work before the check"))
    with pytest.raises(InputError, match="heuristic found no plan"):
        main([str(path)])


@pytest.mark.parametrize("content", [b'{"not": "a pickle"}', b"", b"\x80\x04garbage"])
def test_attribution_load_of_a_file_that_is_no_pickle_is_one_line(tmp_path, capsys, content):
    """`--load` of a file that is not a pickle (a JSON file, an empty file, a broken pickle) was an UnpicklingError /
    EOFError traceback, exit 1; now the one line of a file saved for something else, exit 2."""
    path, bad = tmp_path / "i.json", tmp_path / "bad.pkl"
    save_instance(random_instance(8, 4, 1, arrivals="deterministic"), path)
    bad.write_bytes(content)
    with pytest.raises(SystemExit) as e:
        main([str(path), "--load", str(bad)])
    assert e.value.code == 2 and "not a result saved by --save" in capsys.readouterr().err
