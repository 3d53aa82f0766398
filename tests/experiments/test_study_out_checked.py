"""A study's results root is checked before any point runs (session 12, hostile tester): `stsched experiment NAME
--out DIR` (and `python -m experiments.NAME --out DIR`) with DIR unwritable or a file was an OSError traceback,
exit 1, from the first write."""

from __future__ import annotations

import pytest

from stsched.cli import main


@pytest.mark.parametrize("out, words", [("/proc/stsched-hostile-study", "cannot write in /proc"),
                                        ("{file}", "exists and is not a folder")])
def test_an_unwritable_or_file_results_root_is_one_line(tmp_path, capsys, monkeypatch, out, words):
    (tmp_path / "a_file").write_text("x")
    out = out.format(file=tmp_path / "a_file")
    code = main(["experiment", "sim_speed", "--quick", "--out", out])
    err = capsys.readouterr().err
    assert code == 2 and words in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("STSCHED_RESULTS", out)  # the default root, when --out is not given
    code = main(["experiment", "sim_speed", "--quick"])
    err = capsys.readouterr().err
    assert code == 2 and "$STSCHED_RESULTS" in err, err


def test_plot_only_with_fresh_is_refused(tmp_path, capsys):
    """`--plot-only --fresh` plotted the old rows, --fresh ignored (exit 0)."""
    code = main(["experiment", "sim_speed", "--plot-only", "--fresh", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--plot-only" in err and "--fresh" in err, err
